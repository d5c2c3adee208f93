package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/ui"
)

func newAgentsStatusCmd(opts *agentsOptions, load func() error) *cobra.Command {
	var healthCheck bool
	cmd := &cobra.Command{
		Use:   "status [--health-check]",
		Short: "Parse and check every agent definition; with --health-check, runtime counts",
		Long: `Parse every Markdown definition's front matter and check it (name and
description required, priority low|medium|high|critical or a number, names
unique). With --health-check, also count the app's agents by status from table
agents of <install>/.hive-mind/hive.db (opened read-only) when it exists.` +
			exitStatusHelp("0  every definition is valid", "1  a definition is invalid, there are none, or hive.db cannot be read"),
		Example: `  cfrollback agents status
  cfrollback agents status --health-check --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := load(); err != nil {
				return err
			}
			return runAgentsStatus(cmd.Context(), opts, healthCheck)
		},
	}
	cmd.Flags().BoolVar(&healthCheck, "health-check", false, "also read runtime agent counts from .hive-mind/hive.db")
	return cmd
}

func runAgentsStatus(ctx context.Context, opts *agentsOptions, healthCheck bool) error {
	res, err := appconfig.CheckAgents(ctx, opts.Config.AgentsPath(), opts.Config.InstallDir, healthCheck)
	if err != nil {
		return err
	}
	if opts.JSON {
		if err := ui.JSON(opts.IO.Out, res); err != nil {
			return err
		}
	} else {
		printAgentsStatus(opts.IO, res)
	}
	if !res.OK {
		return exitError{ExitFailed}
	}
	return nil
}

func printAgentsStatus(io *ui.IO, res appconfig.SetReport) {
	p := io.OutPalette()
	tb := ui.NewTable("NAME", "TYPE", "PRIORITY", "CAPABILITIES", "FILE", "STATUS")
	for _, s := range res.Agents {
		name, typ, prio, caps := "-", "-", "-", 0
		if a := s.Agent; a != nil {
			name, typ, caps = orDash(a.Name), orDash(a.Type), len(a.Capabilities)
			if a.Priority != nil {
				prio = fmt.Sprint(a.Priority)
			}
		}
		status := "ok"
		switch {
		case !s.OK():
			status = "INVALID: " + strings.Join(s.Errors, "; ")
		case s.Agent == nil:
			status = "not a definition"
		case len(s.Warnings) > 0:
			status = "ok (" + strings.Join(s.Warnings, "; ") + ")"
		}
		tb.Row(name, typ, prio, strconv.Itoa(caps), s.File, status)
	}
	_ = tb.Render(io.Out)
	if h := res.Hive; h != nil {
		switch {
		case !h.Present:
			fmt.Fprintf(io.Out, "runtime: %s does not exist (no hive-mind state)\n", h.Path)
		case h.Error != "":
			fmt.Fprintf(io.Out, "runtime: %s %s\n", p.Red("cannot read"), h.Error)
		default:
			keys := make([]string, 0, len(h.ByStatus))
			for k := range h.ByStatus {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = fmt.Sprintf("%s %d", k, h.ByStatus[k])
			}
			fmt.Fprintf(io.Out, "runtime agents (%s): %s\n", h.Path, orDash(strings.Join(parts, ", ")))
		}
	}
	switch {
	case len(res.Agents) == 0:
		fmt.Fprintf(io.Out, "%s no agent definitions in %s; 'cfrollback agents reset --template executive-assistant' installs a set\n", p.Red("FAIL:"), res.Dir)
	case res.OK:
		fmt.Fprintf(io.Out, "%s %d agent definitions valid\n", p.Green("OK:"), res.Valid)
	default:
		fmt.Fprintf(io.Out, "%s problems found in %s\n", p.Red("FAIL:"), res.Dir)
	}
}
