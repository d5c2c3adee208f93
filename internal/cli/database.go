package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
	"github.com/cfrollback/cfrollback/internal/ui"
)

func newDatabaseCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "database",
		Aliases: []string{"db"},
		Short:   "Back up, check and restore the service's SQLite databases (WAL-safe)",
		Long: `Work on the service's SQLite databases (setting databases; by default memory =
<install>/.swarm/memory.db and hive = <install>/.hive-mind/hive.db) without the mistakes cp
makes on a live WAL database: backups use SQLite's online backup API and are checked
before they count, restores refuse while a process has the database open and never
leave a stale -wal next to the restored file. See docs/DATABASES.md.` +
			exitStatusHelp("see each subcommand's --help; 0 ok, 1 failed or corrupt, 2 bad usage, 3 nothing changed (restore)"),
		Example: `  cfrollback database backup
  cfrollback database check --tables all
  cfrollback database restore --db memory --latest --stop-service`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newDatabaseBackupCmd(f), newDatabaseRestoreCmd(f), newDatabaseCheckCmd(f))
	return cmd
}

// selectDatabases returns the databases --db names: one by name, or every one for "all".
func selectDatabases(cfg settings.Config, name string) ([]settings.DatabaseRef, error) {
	if name == "" || name == "all" {
		return cfg.Databases, nil
	}
	var names []string
	for _, d := range cfg.Databases {
		if d.Name == name {
			return []settings.DatabaseRef{d}, nil
		}
		names = append(names, d.Name)
	}
	return nil, usageErrorf("no database named %q; the setting databases has %s (or use --db all)", name, strings.Join(names, ", "))
}

// backupName is <name>-backup-YYYYmmdd-HHMMSS.db, the seed's own naming.
func dbBackupName(name string, t time.Time) string {
	return fmt.Sprintf("%s-backup-%s.db", name, t.Format(settings.TimestampLayout))
}

type databaseBackupOptions struct {
	IO     *ui.IO
	JSON   bool
	Config settings.Config
	DB     string
	Output string
	DryRun bool
	Now    func() time.Time
}

type databaseBackupResult struct {
	Backups []dbNamedBackup `json:"backups"`
	Skipped []dbSkipped     `json:"skipped,omitempty"`
	// DryRun: Planned holds what would be backed up; nothing was written.
	DryRun  bool        `json:"dry_run,omitempty"`
	Planned []dbPlanned `json:"planned,omitempty"`
}

type dbPlanned struct {
	Name      string `json:"name"`
	Source    string `json:"source"`
	Path      string `json:"path"`
	SizeBytes int64  `json:"size_bytes"`
}

type dbNamedBackup struct {
	Name string `json:"name"`
	sqlitedb.BackupResult
}

type dbSkipped struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func newDatabaseBackupCmd(f *Factory) *cobra.Command {
	opts := &databaseBackupOptions{IO: f.IO, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Copy a live database with SQLite's online backup API, checked and checksummed",
		Long: `Back up one database (--db NAME) or all of them (the default) while the service
keeps running. The copy is read from one consistent snapshot (a WAL database's
uncheckpointed commits included; writers are not blocked), written to a temp file,
must pass PRAGMA integrity_check, and is then fsynced and renamed into place with a
sha256sum-format sidecar FILE.sha256. The database's -wal and -shm are never touched.

Default output: <database.backup_dir>/<name>-backup-YYYYmmdd-HHMMSS.db. With --db all,
a database whose file does not exist is skipped with a warning.` +
			exitStatusHelp(
				"0  every selected database was backed up",
				"1  a backup failed (nothing is left at its output path), or a named database is missing",
				"2  bad usage or invalid settings"),
		Example: `  cfrollback database backup
  cfrollback database backup --db memory --output /root/memory-before-upgrade.db
  cfrollback database backup --json | jq -r '.backups[].path'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON = cfg, f.JSON
			return runDatabaseBackup(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.DB, "db", "all", "database name from the setting databases, or all")
	_ = cmd.RegisterFlagCompletionFunc("db", completeDatabases(f, true))
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "write the backup to this file (only with one database)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print which databases would be backed up and where; write nothing")
	return cmd
}

func runDatabaseBackup(ctx context.Context, opts *databaseBackupOptions) error {
	dbs, err := selectDatabases(opts.Config, opts.DB)
	if err != nil {
		return err
	}
	if opts.Output != "" && len(dbs) != 1 {
		return usageErrorf("--output needs one database: add --db NAME")
	}
	res := databaseBackupResult{DryRun: opts.DryRun}
	stamp := opts.Now()
	var failed []error
	for _, d := range dbs {
		src := opts.Config.DatabasePath(d)
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			if opts.DB == "all" || opts.DB == "" {
				res.Skipped = append(res.Skipped, dbSkipped{Name: d.Name, Path: src, Reason: "does not exist"})
				opts.IO.Warnf("database %s: %s does not exist; skipped", d.Name, src)
				continue
			}
			return fmt.Errorf("database %s: %s does not exist; check the setting databases ('cfrollback settings')", d.Name, src)
		}
		dst := opts.Output
		if dst == "" {
			// Like backup.dir, a deploy user may own database.backup_dir (its default is
			// inside backup.dir), so only the rule for other users applies: no dir on the
			// way they can write (fsutil.MkdirShared). The backup is copied to a new temp
			// file and renamed without replacing, never written through a symlink.
			if err := dbBackupDir(opts.Config.Database.BackupDir, opts.DryRun); err != nil {
				return fmt.Errorf("database.backup_dir: %w", fsutil.WithKey(err, "database.backup_dir"))
			}
			dst = filepath.Join(opts.Config.Database.BackupDir, dbBackupName(d.Name, stamp))
		}
		if opts.DryRun {
			fi, err := os.Stat(src)
			if err != nil {
				return fmt.Errorf("database %s: %w", d.Name, err)
			}
			res.Planned = append(res.Planned, dbPlanned{Name: d.Name, Source: src, Path: dst, SizeBytes: fi.Size()})
			continue
		}
		if !opts.JSON {
			fmt.Fprintf(opts.IO.ErrOut, "==> backing up %s (%s)\n", d.Name, src)
		}
		r, err := sqlitedb.Backup(ctx, src, dst, sqlitedb.BackupOptions{BusyTimeout: opts.Config.Database.BusyTimeout})
		if err != nil {
			failed = append(failed, fmt.Errorf("database %s: %w", d.Name, err))
			continue
		}
		res.Backups = append(res.Backups, dbNamedBackup{Name: d.Name, BackupResult: r})
	}
	if opts.JSON {
		if err := ui.JSON(opts.IO.Out, res); err != nil {
			return err
		}
	} else if opts.DryRun {
		tb := ui.NewTable()
		for _, b := range res.Planned {
			tb.Row(b.Name, b.Source, "->", b.Path, ui.Bytes(b.SizeBytes))
		}
		if err := tb.Render(opts.IO.Out); err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.ErrOut, "dry run: %d database(s) would be backed up; nothing was written\n", len(res.Planned))
	} else {
		tb := ui.NewTable()
		for _, b := range res.Backups {
			tb.Row(b.Name, b.Path, ui.Bytes(b.SizeBytes), "integrity_check ok", ui.Duration(time.Duration(b.DurationMS)*time.Millisecond))
		}
		if err := tb.Render(opts.IO.Out); err != nil {
			return err
		}
	}
	switch {
	case len(failed) > 0:
		return errors.Join(failed...)
	case len(res.Backups) == 0 && len(res.Planned) == 0:
		return fmt.Errorf("no database was backed up: none of %d configured database files exist under %s; check install_dir and databases ('cfrollback settings')", len(dbs), opts.Config.InstallDir)
	}
	return nil
}

// dbBackupDir makes database.backup_dir (MkdirShared); a dry run only checks what is there.
func dbBackupDir(dir string, dryRun bool) error {
	if !dryRun {
		return fsutil.MkdirShared(dir, 0o700)
	}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return fsutil.CheckSharedDir(dir)
}
