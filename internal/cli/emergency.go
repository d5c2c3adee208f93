package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type emergencyOptions struct {
	IO     *ui.IO
	JSON   bool
	Config settings.Config
	Backup string
	DryRun bool
	// WithData also rolls the preserved databases back to the backup's own copies.
	WithData bool
	Timeout  time.Duration
	Args     []string
	// NewService builds the service manager; tests replace it.
	NewService func(ctx context.Context, cfg settings.Config) (service.Manager, error)
}

func newEmergencyCmd(f *Factory) *cobra.Command {
	opts := &emergencyOptions{IO: f.IO, NewService: newServiceManager}
	cmd := &cobra.Command{
		Use:   "emergency",
		Short: "P0 rollback: restore the newest good backup now, keep the failed install",
		Long: `Roll the service back to the newest backup that verifies, the safe way:

  1. lock (one run at a time) and journal the intent
  2. finish or undo a run that was interrupted (killed, power loss)
  3. preflight while the service still runs: pick the newest backup that reads
     to the end and whose every entry is safe, check free space, and extract it
     into a sibling staging dir (or, when the warm standby's seal proves it
     holds exactly that backup unchanged, rename the standby there instead;
     'cfrollback standby'). A bad backup is skipped loudly. Any failure
     here: exit 3, nothing changed, the service never stopped.
  4. stop the service
  5. copy preserved paths (restore.preserve: live data such as .swarm/) from
     the stopped install into the staged tree, then quick_check each preserved
     database there: a corrupt one is replaced by the newest good database
     backup (the corrupt file kept). --with-data restores the backup's own
     databases instead of the live ones (the live ones stay in the failed dir)
  6. swap the staged tree and the install dir in one atomic rename
  7. keep the failed install as <install>-failed-YYYYmmdd-HHMMSS
  8. start the service and wait until it is healthy

It never prompts. Every step is journaled (cfrollback history).` +
			exitStatusHelp(
				"0  rolled back and healthy",
				"1  failed otherwise, before or outside a step (the message says what)",
				"2  bad usage or invalid settings",
				"3  preflight failed: nothing changed, service never stopped (also --dry-run)",
				"4  failed after the service was stopped; run it again to resume",
				"5  restored but not healthy; 'cfrollback undo RUN_ID' puts the failed install back",
				"6  another cfrollback run holds the lock"),
		Example: `  cfrollback emergency
  cfrollback emergency --dry-run
  cfrollback emergency --backup /var/backups/claude-flow/backup-20250104-140000.tar.gz
  cfrollback emergency --json > /tmp/rollback.json; echo "exit $?"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON, opts.Args = cfg, f.JSON, os.Args[1:]
			return runEmergency(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Backup, "backup", "", "restore this backup file (path, or a name in backup.dir) instead of the newest good one")
	_ = cmd.RegisterFlagCompletionFunc("backup", completeBackupFiles(f))
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "verify the backup and print the plan; change nothing (exit 3 if preflight would fail)")
	cmd.Flags().BoolVar(&opts.WithData, "with-data", false, "also roll the databases under restore.preserve back to the backup's own copies (the live ones stay in the failed install)")
	durationVar(cmd.Flags(), &opts.Timeout, "timeout", 0, "give up on the whole run after this long (0 = no limit beyond the step timeouts)")
	return cmd
}

func newServiceManager(ctx context.Context, cfg settings.Config) (service.Manager, error) {
	return newServiceManagerOn(ctx, cfg, nil)
}

// newServiceManagerOn is newServiceManager whose systemd manager uses bus, one kept D-Bus
// connection (nil: a connection per call, right for short-lived commands).
func newServiceManagerOn(ctx context.Context, cfg settings.Config, bus *service.Bus) (service.Manager, error) {
	sc := runbook.ServiceConfig(cfg)
	sc.Bus = bus
	m, err := service.New(ctx, sc)
	if err != nil {
		return nil, &runbook.StepError{Step: "preflight", Err: err,
			Hint: "nothing was changed. Set service.manager (auto, systemd, pm2, command) and service.unit / service.pm2_name; 'cfrollback settings' shows them"}
	}
	return m, nil
}

func runEmergency(ctx context.Context, opts *emergencyOptions) error {
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	m, err := opts.NewService(ctx, opts.Config)
	if err != nil {
		return err
	}
	deps, n := runDeps(opts.IO, opts.JSON, opts.Config, m)
	res, err := runbook.Emergency(ctx, runbook.Options{
		Config: opts.Config, Command: "emergency", BackupPath: opts.Backup, DryRun: opts.DryRun, WithData: opts.WithData,
		Args: opts.Args, KillAt: os.Getenv("CFROLLBACK_TEST_KILL_AT"),
	}, deps)
	if opts.DryRun && errors.Is(err, runbook.ErrPreflight) {
		// not the generic hint, which suggests the dry run just made
		err = withHint(err, "this was the dry run: nothing was changed; 'cfrollback backup list' shows the backups, 'cfrollback settings' where backup.dir points")
	}
	err = reportRun(opts.IO, opts.JSON, res, err)
	n.Finished(ctx, res) // the outcome went out at the outcome (runDeps); this sends it only for a run that recorded none
	return err
}

// progressPrinter shows steps on stderr as they happen (quiet in JSON mode
// except warnings, which a script's log should still carry: as JSON lines, io.Warnf).
func progressPrinter(io *ui.IO, asJSON bool) func(runbook.Event) {
	p := io.ErrPalette()
	return func(e runbook.Event) {
		switch e.Kind {
		case "warn":
			io.Warnf("%s", e.Message)
		case "progress":
			if io.ErrTTY && !asJSON {
				fmt.Fprintf(io.ErrOut, "    %s\n", p.Faint(e.Message))
			}
		case "info":
			if !asJSON {
				fmt.Fprintf(io.ErrOut, "    %s\n", p.Faint(e.Message))
			}
		case "step_start":
			if !asJSON {
				fmt.Fprintf(io.ErrOut, "==> %s\n", p.Bold(e.Step))
			}
		case "step_done":
			if !asJSON {
				fmt.Fprintf(io.ErrOut, "    %s %s %s\n", p.Green("ok"), p.Faint(ui.Duration(e.Duration)), e.Message)
			}
		case "step_failed":
			if !asJSON {
				fmt.Fprintf(io.ErrOut, "    %s %s %s\n", p.Red("FAILED"), p.Faint(ui.Duration(e.Duration)), e.Message)
			}
		}
	}
}

// reportRun prints a run's result: JSON on stdout, or a summary for a person.
// The error still decides the exit code.
func reportRun(io *ui.IO, asJSON bool, res *runbook.Result, err error) error {
	if done, ret := printedAsJSON(io, asJSON, res, err); done {
		return ret
	}
	p := io.OutPalette()
	w := io.Out
	fmt.Fprintf(w, "\n%s  (run %s)\n", runHeadline(p, res.Outcome, "ROLLBACK SUCCESSFUL", "RESTORED BUT NOT HEALTHY", "ROLLBACK FAILED"), res.RunID)
	if res.Command == "undo" {
		fmt.Fprintf(w, "  service:      %s\n  put back:     %s\n  kept aside:   %s\n", res.Service, res.FailedDir, res.KeptDir)
	} else {
		if res.Backup != nil {
			fmt.Fprintf(w, "  backup:       %s\n", res.Backup.Path)
		}
		fmt.Fprintf(w, "  service:      %s\n  install dir:  %s\n", res.Service, res.InstallDir)
		if res.Outcome != "planned" && res.FailedDir != "" && res.Outcome != "preflight_failed" {
			fmt.Fprintf(w, "  failed state: %s\n", res.FailedDir)
		}
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "  %s %s: %s\n", p.Yellow("skipped:"), s.Path, s.Reason)
	}
	for _, d := range res.DataChecks {
		line := fmt.Sprintf("  database:     %s %s (%s)", d.Name, d.Status, d.Source)
		switch d.Status {
		case "replaced":
			line = fmt.Sprintf("  database:     %s was corrupt: replaced by %s; writes after %s are only in the kept copies",
				d.Name, d.DBBackup, d.DBBackupTime.Local().Format("2006-01-02 15:04:05"))
			line = p.Yellow(line)
		case "corrupt_kept":
			line = p.Red(line + ": corrupt and no database backup could replace it")
		}
		fmt.Fprintln(w, line)
	}
	printStandbyUse(w, p, res.Standby, res.DryRun)
	if res.Recovered != nil {
		fmt.Fprintf(w, "  recovered:    run %s %s (%s)\n", res.Recovered.RunID, res.Recovered.Action, res.Recovered.Detail)
	}
	printRunTail(w, p, runTail{res.DowntimeMS, res.DurationMS, res.Plan, res.Health, res.Journal, res.HumanLog, res.Next})
	return err
}
