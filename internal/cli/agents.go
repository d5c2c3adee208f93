package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type agentsOptions struct {
	IO     *ui.IO
	JSON   bool
	Config settings.Config
	Now    func() time.Time
	// DryRun (import, reset): validate and list what would change; write nothing.
	DryRun bool
}

func agentsBackupDir(cfg settings.Config) string { return filepath.Join(cfg.Backup.Dir, "agents") }

func newAgentsCmd(f *Factory) *cobra.Command {
	opts := &agentsOptions{IO: f.IO, Now: time.Now}
	load := func() error {
		cfg, err := f.loadConfig()
		opts.Config, opts.JSON = cfg, f.JSON
		return err
	}
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "Export, import, reset and check the app's agent definitions",
		Long: `Work on the app's agent definitions (setting agents_dir; default
<install>/.claude/agents): Markdown files whose YAML front matter names the
agent (name, type, description, capabilities, priority, hooks).

import and reset replace the whole directory in one atomic step (the new set is
written beside it and exchanged with renameat2 RENAME_EXCHANGE), so a
half-imported set is impossible; the current set is checkpointed first into
<backup.dir>/agents and the command that undoes the change is printed.` +
			exitStatusHelp("0  done", "1  failed, or a definition is invalid (nothing was changed)",
				"2  bad usage or invalid settings", "6  another cfrollback run holds the lock"),
		Example: `  cfrollback agents export --output agents-backup-$(date +%Y%m%d-%H%M%S).json
  cfrollback agents import --file agents-backup-20250104-140000.json
  cfrollback agents reset --template executive-assistant
  cfrollback agents status --health-check`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newAgentsExportCmd(opts, load), newAgentsImportCmd(opts, load), newAgentsResetCmd(opts, load),
		newAgentsStatusCmd(opts, load))
	return cmd
}

func newAgentsExportCmd(opts *agentsOptions, load func() error) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [--output FILE]",
		Short: "Write every agent definition, with its sha256, into one JSON bundle",
		Long: `Write every file of the agents dir, with its mode and sha256, into one JSON
bundle (default <backup.dir>/agents/agents-backup-YYYYmmdd-HHMMSS.json; an
existing file is never overwritten).` + exitStatusHelp("0  written", "1  the dir cannot be read or the bundle not written"),
		Example: `  cfrollback agents export
  cfrollback agents export --output agents-backup-$(date +%Y%m%d-%H%M%S).json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := load(); err != nil {
				return err
			}
			name, b, err := opts.export("agents export", output, "agents-backup-")
			if err != nil {
				return err
			}
			if opts.JSON {
				return ui.JSON(opts.IO.Out, map[string]any{"path": name, "files": len(b.Files), "source": b.Source, "app_version": b.AppVersion})
			}
			fmt.Fprintln(opts.IO.Out, name)
			fmt.Fprintf(opts.IO.ErrOut, "exported %d files from %s\n", len(b.Files), b.Source)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the bundle to this file")
	return cmd
}

// export writes the current agents dir as a bundle.
func (o *agentsOptions) export(reason, output, prefix string) (string, appconfig.Bundle, error) {
	dir := o.Config.AgentsPath()
	files, err := appconfig.ReadDir(dir)
	if err != nil {
		return "", appconfig.Bundle{}, fmt.Errorf("read agents dir: %w", err)
	}
	b := appconfig.NewBundle(dir, files, appconfig.AppVersion(o.Config.InstallDir), reason, o.Now())
	if output == "" {
		// <backup.dir>/agents: a deploy user may own it, other users must not write it
		// (the checkpoints' rule, fsutil.CheckSharedDir)
		if err := fsutil.MkdirShared(agentsBackupDir(o.Config), 0o700); err != nil {
			return "", b, fmt.Errorf("write agents bundle: %w", fsutil.WithKey(err, "backup.dir"))
		}
		output = filepath.Join(agentsBackupDir(o.Config), appconfig.CheckpointName(prefix, b.Time))
	}
	name, err := appconfig.WriteBundle(output, b)
	if err != nil {
		return "", b, fmt.Errorf("write agents bundle: %w", err)
	}
	return name, b, nil
}

func newAgentsImportCmd(opts *agentsOptions, load func() error) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "import --file FILE",
		Short: "Replace the whole agent set with a bundle, validated first, atomically",
		Long: `Replace the agents dir with the files of a bundle made by 'agents export'. Every
file is checked against its sha256 and every definition parsed (required fields,
unique names) before anything changes; then the current set is checkpointed and
the new one swapped in atomically. A bare file name not found in the current
directory is looked up in <backup.dir>/agents.` +
			exitStatusHelp("0  imported", "1  the bundle or a definition is invalid: nothing was changed",
				"2  no --file", "6  another cfrollback run holds the lock"),
		Example: `  cfrollback agents import --file agents-backup-20250104-140000.json --dry-run
  cfrollback agents import --file agents-backup-20250104-140000.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErrorf("say which bundle: --file FILE (made by 'cfrollback agents export')")
			}
			if err := load(); err != nil {
				return err
			}
			if !fileExists(file) && !strings.ContainsRune(file, '/') {
				if alt := filepath.Join(agentsBackupDir(opts.Config), file); fileExists(alt) {
					file = alt
				}
			}
			b, err := appconfig.ReadBundle(file)
			if err != nil {
				return fmt.Errorf("%w; nothing was changed", err)
			}
			return opts.replace("agents import", map[string]any{"from": file}, b.Files)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "bundle to import")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "validate and list the files that would change; write nothing")
	return cmd
}

func newAgentsResetCmd(opts *agentsOptions, load func() error) *cobra.Command {
	var template string
	cmd := &cobra.Command{
		Use:   "reset --template NAME",
		Short: "Replace the agent set with a built-in template, checkpoint first",
		Long: `Replace the agents dir with a set of definitions built into cfrollback. Built in:
` + strings.Join(appconfig.Templates(), ", ") + `. The current set is checkpointed first.` +
			exitStatusHelp("0  reset", "1  failed: nothing was changed", "2  no or unknown --template",
				"6  another cfrollback run holds the lock"),
		Example: `  cfrollback agents reset --template executive-assistant --dry-run
  cfrollback agents reset --template executive-assistant`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			files, err := appconfig.Template(template)
			if err != nil {
				return usageErrorf("%v", err)
			}
			if err := load(); err != nil {
				return err
			}
			return opts.replace("agents reset", map[string]any{"template": template}, files)
		},
	}
	cmd.Flags().StringVar(&template, "template", "", "built-in set: "+strings.Join(appconfig.Templates(), ", "))
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "list the files that would change; write nothing")
	return cmd
}

type agentsChangeResult struct {
	RunID      string `json:"run_id"`
	Dir        string `json:"dir"`
	Files      int    `json:"files"`
	Agents     int    `json:"agents"`
	Checkpoint string `json:"checkpoint,omitempty"`
	Undo       string `json:"undo,omitempty"`
}

// replace validates files as a set and swaps them in, journaled and locked.
func (o *agentsOptions) replace(command string, intent map[string]any, files []appconfig.BundleFile) error {
	agents, err := appconfig.ValidateSet(files)
	if err != nil {
		return err
	}
	dir := o.Config.AgentsPath()
	res := agentsChangeResult{Dir: dir, Files: len(files), Agents: agents}
	if o.DryRun {
		return o.planReplace(res, files)
	}
	intent["dir"], intent["files"] = dir, len(files)
	runID, err := appconfig.Journaled(o.Config.Lock, o.Config.Journal, command, intent, func() (map[string]any, error) {
		if _, err := os.Stat(dir); err == nil {
			name, _, err := o.export("before "+command, "", "agents-checkpoint-")
			if err != nil {
				return nil, fmt.Errorf("checkpoint the current set (nothing was changed): %w", err)
			}
			res.Checkpoint = name
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		err := appconfig.ReplaceDir(dir, files, o.Now())
		return map[string]any{"checkpoint": res.Checkpoint, "agents": agents}, err
	})
	res.RunID = runID
	if err != nil {
		return err
	}
	if res.Checkpoint != "" {
		res.Undo = "cfrollback agents import --file " + res.Checkpoint
	}
	if o.JSON {
		return ui.JSON(o.IO.Out, res)
	}
	fmt.Fprintf(o.IO.Out, "%s now holds %d files, %d agent definitions (run %s)\n", dir, res.Files, res.Agents, runID)
	if res.Undo != "" {
		fmt.Fprintf(o.IO.ErrOut, "checkpoint %s; undo with: %s\n", res.Checkpoint, res.Undo)
	}
	return nil
}

// agentsPlan is what --dry-run prints: the files the new set adds, changes (content
// or mode) and removes against the current dir.
type agentsPlan struct {
	agentsChangeResult
	DryRun bool `json:"dry_run"`
	appconfig.ReplacePlan
}

func (o *agentsOptions) planReplace(res agentsChangeResult, files []appconfig.BundleFile) error {
	p, err := appconfig.PlanReplace(res.Dir, files)
	if err != nil {
		return err
	}
	plan := agentsPlan{agentsChangeResult: res, DryRun: true, ReplacePlan: p}
	if o.JSON {
		return ui.JSON(o.IO.Out, plan)
	}
	for _, l := range []struct {
		sign  string
		paths []string
	}{{"+", plan.Added}, {"~", plan.Changed}, {"-", plan.Removed}} {
		for _, p := range l.paths {
			fmt.Fprintf(o.IO.Out, "%s %s\n", l.sign, p)
		}
	}
	fmt.Fprintf(o.IO.ErrOut, "dry run: %s would hold %d files, %d agent definitions (%d added, %d changed, %d removed, %d unchanged; the current set checkpointed first); nothing was changed\n",
		res.Dir, res.Files, res.Agents, len(plan.Added), len(plan.Changed), len(plan.Removed), plan.Same)
	return nil
}

type agentsStatusResult struct {
	Dir    string                  `json:"dir"`
	OK     bool                    `json:"ok"`
	Agents []appconfig.AgentStatus `json:"agents"`
	Hive   *hiveStatus             `json:"hive,omitempty"`
}

type hiveStatus struct {
	Path     string         `json:"path"`
	Present  bool           `json:"present"`
	ByStatus map[string]int `json:"by_status,omitempty"`
	Error    string         `json:"error,omitempty"`
}

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
	dir := opts.Config.AgentsPath()
	res := agentsStatusResult{Dir: dir, Agents: []appconfig.AgentStatus{}}
	sts, valid, ok, err := appconfig.SetStatus(dir)
	if err != nil {
		return err
	}
	res.Agents, res.OK = sts, ok
	if healthCheck {
		h := &hiveStatus{Path: filepath.Join(opts.Config.InstallDir, ".hive-mind", "hive.db")}
		if _, err := os.Stat(h.Path); err == nil {
			h.Present = true
			if h.ByStatus, err = appconfig.HiveCounts(ctx, h.Path); err != nil {
				h.Error, res.OK = err.Error(), false
			}
		}
		res.Hive = h
	}
	if opts.JSON {
		if err := ui.JSON(opts.IO.Out, res); err != nil {
			return err
		}
	} else {
		printAgentsStatus(opts.IO, res, valid)
	}
	if !res.OK {
		return exitError{ExitFailed}
	}
	return nil
}

func printAgentsStatus(io *ui.IO, res agentsStatusResult, valid int) {
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
		fmt.Fprintf(io.Out, "%s %d agent definitions valid\n", p.Green("OK:"), valid)
	default:
		fmt.Fprintf(io.Out, "%s problems found in %s\n", p.Red("FAIL:"), res.Dir)
	}
}
