package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// rollbackVersionOptions are rollback's options plus the version asked for.
type rollbackVersionOptions struct {
	*rollbackOptions
	ToVersion string
}

const rollbackVersionHelp = `

--to-version V installs another version of the app instead of restoring a
backup (the seed's "Version-Specific Rollback"):

  1. preflight while the service runs: the installed version (<install>/package.json,
     else 'npm ls -g'), the newest config checkpoint recorded for V, a
     checkpoint of the current config, the version.* command templates
  2. stop the service
  3. version.export_command, when set (with version.import_command: the v1 path)
  4. version.install_command with {version}=V (default: npm install --prefix {install_dir}
     --save-exact claude-flow@{version}, the app in <install>/node_modules)
  5. version.import_command, when set
  6. restore the config checkpoint recorded for V, if there is one
  7. version.migrate_command with {from} and {to}, when set
  8. start the service and wait until it is healthy

A failing export puts nothing back but the running service. A failing install,
import, config or migrate reinstalls the previous version, puts the previous
config back and starts the service: exit 4, naming what failed and what was put
back. Installed but not healthy: exit 5, with the command that goes back. Asking
for the installed version installs nothing and checks the service's health.`

// withToVersion adds --to-version to the rollback command: set, it runs the
// version procedure instead of a backup restore.
func withToVersion(f *Factory, cmd *cobra.Command, opts *rollbackOptions) *cobra.Command {
	vo := &rollbackVersionOptions{rollbackOptions: opts}
	cmd.Flags().StringVar(&vo.ToVersion, "to-version", "", "install this app version with version.install_command instead of restoring a backup")
	cmd.Use = "rollback --to ID|latest | --to-version V"
	if i := strings.Index(cmd.Long, "\n\nEXIT STATUS"); i >= 0 {
		cmd.Long = cmd.Long[:i] + rollbackVersionHelp + cmd.Long[i:]
	}
	cmd.Long += `
  with --to-version: 4 = the previous version and config were put back and the
  service started (the message says so, or what could not be put back), or the
  run was interrupted (Ctrl-C, SIGTERM) after the stop: nothing is put back, and
  the same command run again takes over;
  5 = installed but not healthy, 'cfrollback rollback --to-version PREVIOUS' goes back`
	cmd.Example += `
  cfrollback rollback --to-version 2.0.0-alpha.82 --dry-run
  cfrollback rollback --to-version 2.0.0-alpha.82 --yes --json`
	backupRun := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if !c.Flags().Changed("to-version") {
			if opts.To == "" {
				return usageErrorf("say which backup: --to ID (see 'cfrollback backup list') or --to latest; or which app version: --to-version V")
			}
			return backupRun(c, args)
		}
		if opts.To != "" {
			return usageErrorf("--to and --to-version cannot be used together: --to restores a backup of the install dir, --to-version installs an app version; pick one")
		}
		if opts.Before != "" || opts.AppVersion != "" {
			return usageErrorf("--before and --app-version choose a backup for --to; they do not apply to --to-version")
		}
		if err := runbook.ValidVersion(vo.ToVersion); err != nil {
			return usageErrorf("--to-version: %v", err)
		}
		cfg, err := f.loadConfig()
		if err != nil {
			return err
		}
		opts.Config, opts.JSON, opts.Args = cfg, f.JSON, os.Args[1:]
		return runRollbackVersion(c.Context(), vo)
	}
	return cmd
}

func runRollbackVersion(ctx context.Context, opts *rollbackVersionOptions) error {
	if !opts.DryRun && !opts.Yes && !opts.InTTY() {
		return usageErrorf("rollback asks for confirmation and there is no terminal to ask on; pass --yes to proceed without asking (or --dry-run to see the plan)")
	}
	m, err := opts.NewService(ctx, opts.Config)
	if err != nil {
		return err
	}
	deps, n := runDeps(opts.IO, opts.JSON, opts.Config, m) // rollback_started before the stop
	run := func(dry bool) (*runbook.VersionResult, error) {
		return runbook.RollbackVersion(ctx, runbook.VersionOptions{
			Options: runbook.Options{Config: opts.Config, DryRun: dry, Args: opts.Args, KillAt: os.Getenv("CFROLLBACK_TEST_KILL_AT")},
			To:      opts.ToVersion,
		}, deps)
	}
	if !opts.DryRun && !opts.Yes {
		// The plan shown before the question is a dry run: the same code
		// path, so what is asked about is what would run.
		plan, err := runbook.RollbackVersion(ctx, runbook.VersionOptions{
			Options: runbook.Options{Config: opts.Config, DryRun: true}, To: opts.ToVersion,
		}, runbook.Deps{Service: m, Events: progressPrinter(opts.IO, true)})
		if err != nil {
			return reportVersion(opts.IO, opts.JSON, plan, err)
		}
		printVersionPlan(opts.IO, plan)
		fmt.Fprint(opts.IO.ErrOut, "proceed? [y/N] ")
		answer, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(opts.IO.ErrOut, "not rolled back; nothing was changed")
			return exitError{ExitFailed}
		}
	}
	res, err := run(opts.DryRun)
	err = reportVersion(opts.IO, opts.JSON, res, err)
	if res != nil {
		n.Finished(ctx, res.Result)
	}
	return err
}

// printVersionPlan goes to stderr: stdout carries the result (or JSON).
func printVersionPlan(io *ui.IO, res *runbook.VersionResult) {
	w := io.ErrOut
	fmt.Fprintf(w, "%s\n", io.ErrPalette().Bold("rollback plan"))
	fmt.Fprintf(w, "  version:     %s (%s) -> %s\n", res.FromVersion, res.FromSource, res.ToVersion)
	for i, s := range res.Plan {
		fmt.Fprintf(w, "  %d. %s\n", i+1, s)
	}
}

// reportVersion prints the result: JSON on stdout, or a summary for a person.
func reportVersion(io *ui.IO, asJSON bool, res *runbook.VersionResult, err error) error {
	if done, ret := printedAsJSON(io, asJSON, res, err); done {
		return ret
	}
	p := io.OutPalette()
	w := io.Out
	fmt.Fprintf(w, "\n%s  (run %s)\n", runHeadline(p, res.Outcome, "VERSION ROLLBACK SUCCESSFUL", "INSTALLED BUT NOT HEALTHY", "VERSION ROLLBACK FAILED"), res.RunID)
	fmt.Fprintf(w, "  version:      %s -> %s", orDash(res.FromVersion), res.ToVersion)
	if res.InstalledVersion != "" {
		fmt.Fprintf(w, " (installed: %s)", res.InstalledVersion)
	}
	fmt.Fprintf(w, "\n  service:      %s\n", res.Service)
	if res.AppConfig != "" {
		fmt.Fprintf(w, "  app config:   %s\n", res.AppConfig)
	}
	if res.RestoredCheckpoint != "" {
		fmt.Fprintf(w, "  config for %s: %s\n", res.ToVersion, res.RestoredCheckpoint)
	}
	if res.ConfigCheckpoint != "" && !res.DryRun {
		fmt.Fprintf(w, "  saved config: %s\n", res.ConfigCheckpoint)
	}
	if pb := res.PutBack; pb != nil {
		cfgNote := pb.Config
		if cfgNote == "" {
			cfgNote = "not changed"
		}
		fmt.Fprintf(w, "  put back:     claude-flow %s reinstalled=%v, config %s, service started=%v\n", pb.Version, pb.Installed, cfgNote, pb.Started)
		for _, x := range pb.Problems {
			fmt.Fprintf(w, "  %s %s\n", p.Red("PROBLEM:"), x)
		}
	}
	printRunTail(w, p, runTail{res.DowntimeMS, res.DurationMS, res.Plan, res.Health, res.Journal, res.HumanLog, res.Next})
	return err
}
