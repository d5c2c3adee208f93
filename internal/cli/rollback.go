package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type rollbackOptions struct {
	IO         *ui.IO
	JSON       bool
	Config     settings.Config
	To         string
	Before     string
	AppVersion string
	Yes        bool
	DryRun     bool
	Args       []string
	// InTTY says whether a person can answer the question; tests set it.
	InTTY      func() bool
	NewService func(ctx context.Context, cfg settings.Config) (service.Manager, error)
}

func newRollbackCmd(f *Factory) *cobra.Command {
	opts := &rollbackOptions{IO: f.IO, NewService: newServiceManager, InTTY: func() bool { return stdinIsTerminal(f.IO) }}
	cmd := &cobra.Command{
		Use:   "rollback --to ID|latest",
		Short: "Roll back to a chosen backup (same procedure as emergency), after a confirmation",
		Long: `Roll the service back to the backup you choose, with exactly the procedure of
'cfrollback emergency' (lock, preflight while the service runs, stop, carry
over live data, atomic swap, keep the failed install, start, wait for health).

--to names a backup by ID (20250104-140000, see 'cfrollback backup list') or
file name, or says latest: the newest backup taken before --before, of
--app-version, not marked bad and not failed at its last verify.

The plan is shown first. On a terminal it asks "proceed? [y/N]"; without one
(a script, cron) it needs --yes. --dry-run verifies the backup and prints the
plan without asking or changing anything.` +
			exitStatusHelp(
				"0  rolled back and healthy (or, with --dry-run, the plan would work)",
				"1  declined at the prompt, or failed",
				"2  bad usage, invalid settings, or no --yes without a terminal",
				"3  preflight failed or no backup matches: nothing changed, service never stopped",
				"4  failed after the service was stopped; run 'cfrollback emergency' to resume",
				"5  restored but not healthy; 'cfrollback undo RUN_ID' puts the failed install back",
				"6  another cfrollback run holds the lock"),
		Example: `  cfrollback rollback --to 20250104-140000
  cfrollback rollback --to latest --app-version 2.4.0 --dry-run
  cfrollback rollback --to latest --before "2025-01-04 14:00" --yes --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.To == "" {
				return usageErrorf("say which backup: --to ID (see 'cfrollback backup list') or --to latest")
			}
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON, opts.Args = cfg, f.JSON, os.Args[1:]
			return runRollback(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.To, "to", "", "the backup: an ID, a file name, or latest")
	_ = cmd.RegisterFlagCompletionFunc("to", completeBackupIDs(f, true))
	cmd.Flags().StringVar(&opts.Before, "before", "", "with --to latest: only backups taken before this time (RFC 3339, '2025-01-04 14:00' or 20250104-140000)")
	cmd.Flags().StringVar(&opts.AppVersion, "app-version", "", "only a backup of this app version (from its manifest)")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask; needed without a terminal")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "verify the chosen backup and print the plan; change nothing")
	return withToVersion(f, cmd, opts)
}

func stdinIsTerminal(io *ui.IO) bool {
	f, ok := io.In.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// preflightError makes a choice that failed exit 3: nothing was changed.
func preflightError(err error, hint string) error {
	return &runbook.StepError{Step: "choose backup", Err: err, Hint: hint}
}

func runRollback(ctx context.Context, opts *rollbackOptions) error {
	cfg := opts.Config
	choice := backup.Choice{To: opts.To, AppVersion: opts.AppVersion}
	if opts.Before != "" {
		t, err := backup.ParseTime(opts.Before)
		if err != nil {
			return usageErrorf("--before: %v", err)
		}
		choice.Before = t
	}
	if !opts.DryRun && !opts.Yes && !opts.InTTY() {
		return usageErrorf("rollback asks for confirmation and there is no terminal to ask on; pass --yes to proceed without asking (or --dry-run to see the plan)")
	}
	cands, err := discoverBackups(opts.IO, cfg)
	if err != nil {
		return preflightError(err, "nothing was changed; check backup.dir")
	}
	st, err := backupStore(cfg).Load()
	if err != nil {
		warnPrinter(opts.IO)(fmt.Sprintf("%v; marks and verify results are not taken into account", err))
		st = &backup.State{}
	}
	c, passed, err := backup.Choose(cands, st, choice)
	if err != nil {
		return preflightError(err, "nothing was changed and the service was not stopped")
	}
	if !opts.JSON || !opts.DryRun {
		printRollbackPlan(opts.IO, cfg, c, st, passed)
	}
	if !opts.DryRun && !opts.Yes {
		fmt.Fprint(opts.IO.ErrOut, "proceed? [y/N] ")
		answer, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(opts.IO.ErrOut, "not rolled back; nothing was changed")
			return exitError{ExitFailed}
		}
	}
	if !opts.DryRun {
		// The run records its outcome as a mark; unlike emergency (which
		// creates nothing it was not told to), rollback is one of the
		// backup commands and may create backup.state's dir.
		// Root writes there: a dir other users can write is refused (fsutil.MkdirTrusted).
		if err := fsutil.MkdirTrusted(filepath.Dir(cfg.Backup.State), 0o700); err != nil {
			err = fsutil.WithKey(err, "backup.state")
			warnPrinter(opts.IO)(fmt.Sprintf("the outcome cannot be recorded as a mark: %v", err))
		}
	}
	m, err := opts.NewService(ctx, cfg)
	if err != nil {
		return err
	}
	deps, n := runDeps(opts.IO, opts.JSON, cfg, m)
	res, err := runbook.Emergency(ctx, runbook.Options{
		Config: cfg, Command: "rollback", BackupPath: c.Path, DryRun: opts.DryRun,
		Args: opts.Args, KillAt: os.Getenv("CFROLLBACK_TEST_KILL_AT"),
	}, deps)
	err = reportRun(opts.IO, opts.JSON, res, err)
	n.Finished(ctx, res) // the outcome went out at the outcome (runDeps); this sends it only for a run that recorded none
	return err
}

// printRollbackPlan goes to stderr: stdout carries the result (or JSON).
func printRollbackPlan(io *ui.IO, cfg settings.Config, c backup.Candidate, st *backup.State, passed []string) {
	w := io.ErrOut
	p := io.ErrPalette()
	fmt.Fprintf(w, "%s\n", p.Bold("rollback plan"))
	fmt.Fprintf(w, "  backup:      %s (%s, taken %s, %s)\n", backup.ID(c.Name), c.Path, c.Time.Local().Format("2006-01-02 15:04:05"), ui.Ago(c.Time, time.Now()))
	if m, err := c.ManifestHeader(); err == nil {
		if m.AppVersion != "" {
			fmt.Fprintf(w, "  app version: %s\n", m.AppVersion)
		}
		if m.Label != "" {
			fmt.Fprintf(w, "  label:       %s\n", m.Label)
		}
	}
	s := st.Get(c.Name)
	switch {
	case s.Verify == nil:
		fmt.Fprintf(w, "  verified:    never (the preflight reads it to the end before anything stops)\n")
	case s.Verify.OK:
		fmt.Fprintf(w, "  verified:    ok %s\n", ui.Ago(s.Verify.Time, time.Now()))
	default:
		fmt.Fprintf(w, "  verified:    %s %s: %s\n", p.Red("FAILED"), ui.Ago(s.Verify.Time, time.Now()), s.Verify.Error)
	}
	if s.Mark != nil {
		fmt.Fprintf(w, "  mark:        %s (%s)\n", s.Mark.Value, s.Mark.Reason)
	}
	for _, x := range passed {
		fmt.Fprintf(w, "  passed over: %s\n", x)
	}
	keeping := "(keeping " + strings.Join(cfg.Restore.Preserve, ", ") + ")"
	if len(cfg.Restore.Preserve) == 0 {
		keeping = "(restore.preserve is empty: no live data carried over)"
	}
	fmt.Fprintf(w, "  then:        stop %s, restore %s from it %s, swap atomically,\n", serviceLabel(cfg), cfg.InstallDir, keeping)
	fmt.Fprintf(w, "               keep the current install as %s, start, wait until healthy\n", cfg.FailedDir(time.Now()))
}

func serviceLabel(cfg settings.Config) string {
	switch cfg.Service.Manager {
	case "pm2":
		return "pm2 app " + cfg.Service.PM2Name
	case "command":
		return "the service"
	}
	return cfg.Service.Unit
}
