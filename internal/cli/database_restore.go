package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type databaseRestoreOptions struct {
	IO          *ui.IO
	JSON        bool
	Config      settings.Config
	DB          string
	File        string
	Latest      bool
	StopService bool
	// ForceSchema restores a file whose schema lacks or changes part of the live one.
	ForceSchema bool
	DryRun      bool
	Args        []string
	// NewService builds the service manager; tests replace it.
	NewService func(ctx context.Context, cfg settings.Config) (service.Manager, error)
}

func newDatabaseRestoreCmd(f *Factory) *cobra.Command {
	opts := &databaseRestoreOptions{IO: f.IO, NewService: newServiceManager}
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Put a database backup back, keeping the current file; refuses while it is open",
		Long: `Replace one database (--db, default memory) with a backup: --file FILE, or --latest,
the newest <name>-backup-*.db in database.backup_dir or <install>/backups (the seed's
own backups) that passes integrity_check.

It refuses, naming the pid and command, while any process has the database or its
-wal/-shm open; --stop-service stops the service first, restores, starts it and waits
until it is healthy.

Before anything else (before the lock, a stop or a write), the backup's schema (tables
with their columns, indexes) is compared with the live database's. A backup that lacks
a table, column or index the live database has, or declares one otherwise (a column's
type, an index's columns), is refused (exit 3) with the differences listed:
--force-schema restores it anyway. A backup that only adds tables, columns or indexes
is restored with a warning. A live database that does not exist, is empty or has no
tables has nothing to compare. (docs/DATABASES.md, "Schema check".)

In order:
  1. the backup's .sha256 sidecar (if any) must match; a copy of the backup is made
     next to the database and must pass integrity_check
  2. the current database, with the commits in its -wal, is kept as
     <dir>/<name>-failed-YYYYmmdd-HHMMSS.db (its quick_check result is reported)
  3. the old -wal/-journal are set aside next to that copy and -shm removed, so a
     stale -wal can never be replayed into the restored file
  4. the checked copy is fsynced and renamed over the database
Until step 4 the database is untouched.

It is a runbook procedure: it takes the lock, journals its intent and every step
(stop, restore, start, health) and its outcome ('cfrollback history', 'cfrollback
report RUN_ID'). A restore killed with the service stopped is seen by the next database
restore or repair, which starts the service again when that is safe. --dry-run checks
the backup and who has the database open, prints the plan and changes nothing.` +
			exitStatusHelp(
				"0  restored (and, with --stop-service, the service is healthy)",
				"1  failed (unexpected error; read the message)",
				"2  bad usage or invalid settings",
				"3  nothing was changed (also a --dry-run whose restore would fail): the database is open in a process (pid named; stop it or use",
				"   --stop-service), no usable backup, the backup failed its checks, or its schema",
				"   does not match the live database's (differences listed; --force-schema)",
				"4  failed after the service was stopped; the message says whether the database was replaced",
				"5  restored, but the service did not become healthy; the replaced file is kept",
				"6  another cfrollback run holds the lock"),
		Example: `  cfrollback database restore --db memory --latest --stop-service
  cfrollback database restore --db hive --file /var/backups/claude-flow/db/hive-backup-20250104-140000.db
  cfrollback database restore --latest --stop-service --dry-run
  cfrollback database restore --latest --stop-service --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON, opts.Args = cfg, f.JSON, os.Args[1:]
			return runDatabaseRestore(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.DB, "db", "memory", "database name from the setting databases")
	_ = cmd.RegisterFlagCompletionFunc("db", completeDatabases(f, false))
	cmd.Flags().StringVar(&opts.File, "file", "", "restore this backup file")
	cmd.Flags().BoolVar(&opts.Latest, "latest", false, "restore the newest backup that passes integrity_check")
	cmd.Flags().BoolVar(&opts.StopService, "stop-service", false, "stop the service, restore, start it and wait until healthy")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "check the backup, print the plan and change nothing (exit 3 if the restore would fail)")
	cmd.Flags().BoolVar(&opts.ForceSchema, "force-schema", false, "restore even if the backup's schema lacks or changes tables, columns or indexes of the live database")
	return cmd
}

func runDatabaseRestore(ctx context.Context, opts *databaseRestoreOptions) error {
	if opts.DB == "all" {
		return usageErrorf("restore one database at a time: --db NAME")
	}
	if opts.File != "" && opts.Latest {
		return usageErrorf("--file and --latest exclude each other: name one backup, or take the newest good one")
	}
	if opts.File == "" && !opts.Latest {
		return usageErrorf("say which backup to restore: --file FILE or --latest")
	}
	dbs, err := selectDatabases(opts.Config, opts.DB)
	if err != nil {
		return err
	}
	res, err := runbook.DatabaseRestore(ctx, runbook.DBRestoreOptions{
		Config: opts.Config, DB: dbs[0], File: opts.File, Latest: opts.Latest, StopService: opts.StopService,
		ForceSchema: opts.ForceSchema, DryRun: opts.DryRun, Args: opts.Args, KillAt: os.Getenv("CFROLLBACK_TEST_KILL_AT"),
	}, runbook.DBDeps{
		NewService: func(ctx context.Context) (service.Manager, error) { return opts.NewService(ctx, opts.Config) },
		Events:     dbProgressPrinter(opts.IO, opts.JSON),
		Notifier:   newRunNotifier(opts.IO, opts.Config),
	})
	if err != nil && len(res.Steps) == 0 {
		return dbHinted(err) // refused before any step: nothing to show but the error
	}
	if perr := printRestore(opts.IO, opts.JSON, res); perr != nil {
		return perr
	}
	return dbHinted(err)
}

// dbHinted gives a *runbook.ChangedError's hint to the error printer.
func dbHinted(err error) error {
	var ce *runbook.ChangedError
	if errors.As(err, &ce) && ce.Hint != "" {
		return withHint(err, ce.Hint)
	}
	return err
}

// dbProgressPrinter is progressPrinter, the one printer of a procedure's events, which also
// shows the database procedures' skipped backups: as a warning "SKIPPING backup ...", as the
// emergency's preflight says it ({"warning": ...} under --json).
func dbProgressPrinter(io *ui.IO, asJSON bool) func(runbook.Event) {
	show := progressPrinter(io, asJSON)
	return func(e runbook.Event) {
		if e.Kind == "skip" {
			e = runbook.Event{Kind: "warn", Message: "SKIPPING " + e.Message}
		}
		show(e)
	}
}

func printRestore(io *ui.IO, asJSON bool, res *runbook.DBRestoreResult) error {
	if asJSON {
		return ui.JSON(io.Out, res)
	}
	p := io.ErrPalette()
	switch res.Outcome {
	case "ok":
		fmt.Fprintf(io.ErrOut, "%s\n", p.Green("database restored"))
	case "planned":
		fmt.Fprintf(io.ErrOut, "%s\n", p.Bold("DRY RUN: nothing was changed"))
	}
	w := io.Out
	if res.Outcome == "planned" {
		fmt.Fprintf(w, "would restore: %s\nfrom:          %s\n\nplan:\n", res.Target, res.Backup)
		for i, s := range res.Plan {
			fmt.Fprintf(w, "  %d. %s\n", i+1, s)
		}
	} else if restoredIn(res.Steps) {
		fmt.Fprintf(w, "restored: %s\n", res.Target)
		fmt.Fprintf(w, "from:     %s\n", res.Backup)
	}
	if res.Failed != nil && restoredIn(res.Steps) {
		fmt.Fprintf(w, "kept:     %s (the replaced database, quick_check %s)\n", res.Failed.Path, res.Failed.Integrity)
	}
	for _, s := range res.SetAside {
		fmt.Fprintf(w, "set aside: %s\n", s)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "skipped:  %s (%s)\n", s.Path, s.Reason)
	}
	if res.Recovered != nil {
		fmt.Fprintf(w, "recovered: run %s: %s\n", res.Recovered.RunID, res.Recovered.Detail)
	}
	if res.RunID != "" {
		fmt.Fprintf(w, "run:      %s (cfrollback history; cfrollback report %s)\n", res.RunID, res.RunID)
	}
	return nil
}

// restoredIn reports whether the run's restore step was done: the database was replaced.
func restoredIn(steps []runbook.StepResult) bool {
	for _, s := range steps {
		if s.Name == "restore" && s.Status == "done" {
			return true
		}
	}
	return false
}
