package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/config"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type databaseRestoreOptions struct {
	IO          *ui.IO
	JSON        bool
	Config      config.Config
	DB          string
	File        string
	Latest      bool
	StopService bool
	// ForceSchema restores a file whose schema lacks or changes part of the live one.
	ForceSchema bool
	// NewService builds the service manager; tests replace it.
	NewService func(ctx context.Context, cfg config.Config) (service.Manager, error)
}

type databaseRestoreResult struct {
	Name string `json:"name"`
	sqlitedb.RestoreResult
	// Skipped are newer candidates --latest passed over, with why.
	Skipped []dbSkipped `json:"skipped_backups,omitempty"`
	// Schema is how the backup's schema compares with the live database's.
	Schema         *sqlitedb.SchemaComparison `json:"schema,omitempty"`
	ServiceStopped bool                       `json:"service_stopped"`
	Healthy        *bool                      `json:"healthy,omitempty"`
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
Until step 4 the database is untouched.` +
			exitStatusHelp(
				"0  restored (and, with --stop-service, the service is healthy)",
				"1  failed (unexpected error; read the message)",
				"2  bad usage or invalid settings",
				"3  nothing was changed: the database is open in a process (pid named; stop it or use",
				"   --stop-service), no usable backup, the backup failed its checks, or its schema",
				"   does not match the live database's (differences listed; --force-schema)",
				"4  failed after the service was stopped; the message says whether the database was replaced",
				"5  restored, but the service did not become healthy; the replaced file is kept",
				"6  another cfrollback run holds the lock"),
		Example: `  cfrollback database restore --db memory --latest --stop-service
  cfrollback database restore --db hive --file /var/backups/claude-flow/db/hive-backup-20250104-140000.db
  cfrollback database restore --latest --stop-service --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON = cfg, f.JSON
			return runDatabaseRestore(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.DB, "db", "memory", "database name from the setting databases")
	_ = cmd.RegisterFlagCompletionFunc("db", completeDatabases(f, false))
	cmd.Flags().StringVar(&opts.File, "file", "", "restore this backup file")
	cmd.Flags().BoolVar(&opts.Latest, "latest", false, "restore the newest backup that passes integrity_check")
	cmd.Flags().BoolVar(&opts.StopService, "stop-service", false, "stop the service, restore, start it and wait until healthy")
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
	d := dbs[0]
	target := opts.Config.DatabasePath(d)
	res := databaseRestoreResult{Name: d.Name}
	p := opts.IO.ErrPalette()
	say := func(format string, a ...any) {
		if !opts.JSON {
			fmt.Fprintf(opts.IO.ErrOut, "==> "+format+"\n", a...)
		}
	}

	// The backup is chosen and its schema compared before the lock, a stop or a write:
	// both only read, and a refusal must leave everything as it was.
	backupFile, err := chooseDBBackup(ctx, opts, d, &res)
	if err != nil {
		return &runbook.StepError{Step: "preflight", Err: err,
			Hint: "nothing was changed; name a backup with --file FILE, or make one with 'cfrollback database backup'"}
	}
	if err := checkRestoreSchema(ctx, opts, d, backupFile, target, &res); err != nil {
		return err
	}

	host, _ := os.Hostname()
	if err := fsutil.MkdirTrusted(filepath.Dir(opts.Config.Lock), 0o755); err != nil {
		return fmt.Errorf("the lock's directory: %w", fsutil.WithKey(err, "lock"))
	}
	lk, err := lock.Acquire(opts.Config.Lock, lock.Holder{PID: os.Getpid(), Host: host, Command: "cfrollback database restore --db " + d.Name})
	if err != nil {
		return err
	}
	defer lk.Release()

	say("restoring %s (%s) from %s", d.Name, target, backupFile)

	var m service.Manager
	if opts.StopService {
		if m, err = opts.NewService(ctx, opts.Config); err != nil {
			return err
		}
		say("stopping %s", m.Name())
		if err := m.Stop(ctx); err != nil {
			return &runbook.StepError{Step: "stop", AfterStop: true, Err: err,
				Hint: "the database was not touched; check the service ('cfrollback health-check') and start it if needed"}
		}
		res.ServiceStopped = true
	}
	rr, rerr := sqlitedb.Restore(ctx, backupFile, target, sqlitedb.RestoreOptions{
		BusyTimeout: opts.Config.Database.BusyTimeout,
		Progress:    func(s string) { say("%s", s) },
	})
	res.RestoreResult = rr
	if rerr != nil {
		return restoreFailed(ctx, opts, m, rerr, res)
	}
	if rr.Failed != nil {
		say("the replaced database is kept at %s (quick_check: %s)", rr.Failed.Path, rr.Failed.Integrity)
	}
	if m != nil {
		say("starting %s", m.Name())
		if err := m.Start(ctx); err != nil {
			_ = printRestore(opts.IO, opts.JSON, res)
			return &runbook.StepError{Step: "start", AfterStop: true, Err: fmt.Errorf("%w: %w", runbook.ErrUnhealthy, err),
				Hint: undoHint(d, rr)}
		}
		h := opts.Config.Health
		_, err := health.WaitHealthy(ctx, health.WaitOptions{Interval: h.Interval, Consecutive: h.Consecutive, Timeout: h.WaitTimeout},
			runbook.CriticalProbes(m, h, nil)...)
		ok := err == nil
		res.Healthy = &ok
		if !ok {
			_ = printRestore(opts.IO, opts.JSON, res)
			return &runbook.StepError{Step: "health", AfterStop: true, Err: fmt.Errorf("%w: %w", runbook.ErrUnhealthy, err), Hint: undoHint(d, rr)}
		}
		say("%s is healthy", m.Name())
	}
	if !opts.JSON {
		fmt.Fprintf(opts.IO.ErrOut, "%s\n", p.Green("database restored"))
	}
	return printRestore(opts.IO, opts.JSON, res)
}

// checkRestoreSchema compares the backup's schema with the live database's. What the backup
// lacks or declares otherwise refuses the restore (a preflight error: exit 3) unless
// --force-schema; what it only adds is a warning. Warnings go to stderr in every mode (as
// SKIPPING does) and into the JSON result.
func checkRestoreSchema(ctx context.Context, opts *databaseRestoreOptions, d config.DatabaseRef, backupFile, target string, res *databaseRestoreResult) error {
	cmp, err := sqlitedb.CompareSchema(ctx, backupFile, target, opts.Config.Database.BusyTimeout)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &runbook.StepError{Step: "preflight", Err: err,
			Hint: "nothing was changed; pick another backup with --file, or --latest to take the newest good one"}
	}
	res.Schema = &cmp
	p := opts.IO.ErrPalette()
	if !cmp.Compared {
		if !opts.JSON {
			fmt.Fprintf(opts.IO.ErrOut, "==> schema not compared: %s\n", cmp.Note)
		}
		return nil
	}
	conflicts, additions := cmp.Conflicts(), cmp.Additions()
	if len(conflicts) > 0 && !opts.ForceSchema {
		return &runbook.StepError{Step: "preflight",
			Err: &sqlitedb.SchemaMismatchError{Live: target, File: backupFile, Conflicts: conflicts, Additions: additions},
			Hint: fmt.Sprintf("nothing was changed; pick the backup made for this schema (--file), or, if the app will run on the backup's schema "+
				"(the code was rolled back with it), restore it anyway: cfrollback database restore --db %s --file %s --force-schema", d.Name, backupFile)}
	}
	if len(conflicts) > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "%s --force-schema: restoring a backup whose schema does not match the live database's (%d difference(s)):%s\n",
			p.Yellow("WARNING"), len(conflicts), sqlitedb.FormatSchemaChanges(conflicts, sqlitedb.MaxSchemaLines))
	}
	if len(additions) > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "%s the backup's schema adds to the live database's (%d addition(s); allowed: a newer schema is a superset):%s\n",
			p.Yellow("WARNING"), len(additions), sqlitedb.FormatSchemaChanges(additions, sqlitedb.MaxSchemaLines))
	}
	return nil
}

func undoHint(d config.DatabaseRef, rr sqlitedb.RestoreResult) string {
	if rr.Failed == nil {
		return "the database was restored; check the service's logs"
	}
	return fmt.Sprintf("the database was restored and the replaced one is kept; to put it back: cfrollback database restore --db %s --file %s --stop-service", d.Name, rr.Failed.Path)
}

// restoreFailed starts a stopped service again (the database was not replaced: Restore
// changes the target only in its last rename) and maps the error to its exit code.
func restoreFailed(ctx context.Context, opts *databaseRestoreOptions, m service.Manager, rerr error, res databaseRestoreResult) error {
	var iu *sqlitedb.InUseError
	hint := "nothing was changed; fix the cause above and run it again"
	if errors.As(rerr, &iu) {
		hint = "nothing was changed; stop those processes, or run again with --stop-service (stop the service, restore, start it, wait until healthy)"
	} else if errors.Is(rerr, sqlitedb.ErrCorrupt) {
		hint = "nothing was changed; pick another backup with --file, or --latest to take the newest good one"
	}
	if m == nil {
		return &runbook.StepError{Step: "preflight", Err: rerr, Hint: hint}
	}
	serr := m.Start(ctx)
	if serr != nil {
		return &runbook.StepError{Step: "restore", AfterStop: true, Err: fmt.Errorf("%w; starting the service again also failed: %w", rerr, serr),
			Hint: "the database was not replaced, but the service is down: start it ('systemctl start' or 'pm2 start') and check it with 'cfrollback health-check'"}
	}
	return &runbook.StepError{Step: "restore", AfterStop: true, Err: rerr,
		Hint: "the database was not replaced and the service was started again; " + strings.TrimPrefix(hint, "nothing was changed; ")}
}

// chooseDBBackup returns --file, or for --latest the newest candidate that passes its
// checksum and integrity_check (skipped ones are reported loudly).
func chooseDBBackup(ctx context.Context, opts *databaseRestoreOptions, d config.DatabaseRef, res *databaseRestoreResult) (string, error) {
	if opts.File != "" {
		if _, err := os.Stat(opts.File); err != nil {
			return "", fmt.Errorf("backup %s: %w; 'ls %s' shows the database backups", opts.File, err, opts.Config.Database.BackupDir)
		}
		return opts.File, nil
	}
	cands := dbCandidates(opts.Config, d.Name)
	if len(cands) == 0 {
		return "", fmt.Errorf("no backup of database %s: nothing matches %s-backup-*.db in %s or %s; make one with 'cfrollback database backup --db %s'",
			d.Name, d.Name, opts.Config.Database.BackupDir, filepath.Join(opts.Config.InstallDir, "backups"), d.Name)
	}
	p := opts.IO.ErrPalette()
	for _, c := range cands {
		reason := ""
		if _, err := sqlitedb.VerifyChecksum(c.Path); err != nil {
			reason = err.Error()
		} else if r, err := sqlitedb.Check(ctx, c.Path, sqlitedb.CheckOptions{BusyTimeout: opts.Config.Database.BusyTimeout}); err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			reason = err.Error()
		} else if !r.OK {
			reason = r.Summary()
		}
		if reason == "" {
			return c.Path, nil
		}
		res.Skipped = append(res.Skipped, dbSkipped{Name: d.Name, Path: c.Path, Reason: reason})
		fmt.Fprintf(opts.IO.ErrOut, "%s backup %s: %s\n", p.Yellow("SKIPPING"), c.Path, reason)
	}
	return "", fmt.Errorf("no usable backup of database %s: all %d candidates failed their checks (listed above); nothing was changed", d.Name, len(cands))
}

func printRestore(io *ui.IO, asJSON bool, res databaseRestoreResult) error {
	if asJSON {
		return ui.JSON(io.Out, res)
	}
	fmt.Fprintf(io.Out, "restored: %s\n", res.Target)
	fmt.Fprintf(io.Out, "from:     %s\n", res.Backup)
	if res.Failed != nil {
		fmt.Fprintf(io.Out, "kept:     %s (the replaced database, quick_check %s)\n", res.Failed.Path, res.Failed.Integrity)
	}
	for _, s := range res.SetAside {
		fmt.Fprintf(io.Out, "set aside: %s\n", s)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(io.Out, "skipped:  %s (%s)\n", s.Path, s.Reason)
	}
	return nil
}
