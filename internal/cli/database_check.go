package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/config"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type databaseCheckOptions struct {
	IO             *ui.IO
	JSON           bool
	Config         config.Config
	DB             string
	Tables         string
	Quick          bool
	RepairIfNeeded bool
	// RestoreIfUnrepairable restores the newest good backup when a repair is not clean.
	RestoreIfUnrepairable bool
}

type databaseCheckResult struct {
	OK        bool          `json:"ok"`
	Databases []dbCheckItem `json:"databases"`
}

type dbCheckItem struct {
	Name    string `json:"name"`
	Status  string `json:"status"` // ok, corrupt, missing, repaired, restored
	Missing bool   `json:"missing,omitempty"`
	sqlitedb.CheckResult
	Repair *dbRepair `json:"repair,omitempty"`
}

// problemsShown bounds the problems printed per database for a person; --json has all.
const problemsShown = 20

func newDatabaseCheckCmd(f *Factory) *cobra.Command {
	opts := &databaseCheckOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Run integrity_check (or quick_check) and foreign_key_check on the databases",
		Long: `Check one database (--db NAME) or all of them (the default), read-only and safe
while the service runs (the -wal is read, never checkpointed or removed):
PRAGMA integrity_check, or quick_check with --quick (faster: skips the index/content
cross-check), and PRAGMA foreign_key_check. Every row of their output is reported.
--tables all adds the row count of every table.

A file that is empty (0 bytes) or not SQLite is reported corrupt, not skipped. With
--db all, a database whose file does not exist is reported missing (not a failure).

--repair-if-needed, for a corrupt database (refused while a process has it open):
  - only indexes damaged: REINDEX of a copy (or, if REINDEX cannot read the broken
    pages, the tables copied into a new file and the indexes built fresh)
  - otherwise every table is salvaged into a new file (INSERT ... SELECT, then rowid
    ranges and single rows around the damaged pages); rows salvaged and lost are
    reported per table, lost counted against count(*) or, when that is unreadable,
    the rowid span
  - a repair that passes integrity_check and lost nothing replaces the database; the
    original (with its -wal/-shm) is kept as <name>-corrupt-YYYYmmdd-HHMMSS.db
  - anything else leaves the database as it was, keeps the salvage as
    <name>-salvaged-YYYYmmdd-HHMMSS.db, and names the newest good backup with what
    restoring it loses; --restore-if-unrepairable restores it (the damaged file kept).` +
			exitStatusHelp(
				"0  every database checked is ok (or was repaired cleanly, or restored with --restore-if-unrepairable)",
				"1  a database is corrupt, not SQLite, has foreign key violations, or a named database is missing",
				"2  bad usage or invalid settings",
				"3  --repair-if-needed: the database is open in a process (pid named); nothing was changed",
				"6  --repair-if-needed: another cfrollback run holds the lock"),
		Example: `  cfrollback database check
  cfrollback database check --db memory --quick
  cfrollback database check --tables all --json | jq '.databases[] | {name, ok, problems}'
  cfrollback database check --quick >/dev/null || page-oncall "memory.db corrupt"
  systemctl stop claude-flow && cfrollback database check --db memory --repair-if-needed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON = cfg, f.JSON
			return runDatabaseCheck(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.DB, "db", "all", "database name from the setting databases, or all")
	_ = cmd.RegisterFlagCompletionFunc("db", completeDatabases(f, true))
	cmd.Flags().StringVar(&opts.Tables, "tables", "", "all: count the rows of every table")
	cmd.Flags().BoolVar(&opts.Quick, "quick", false, "PRAGMA quick_check instead of integrity_check")
	cmd.Flags().BoolVar(&opts.RepairIfNeeded, "repair-if-needed", false, "repair a corrupt database (REINDEX, or salvage table by table); the original is kept")
	cmd.Flags().BoolVar(&opts.RestoreIfUnrepairable, "restore-if-unrepairable", false, "with --repair-if-needed: when the repair is not clean, restore the newest good backup")
	return cmd
}

func runDatabaseCheck(ctx context.Context, opts *databaseCheckOptions) error {
	if opts.Tables != "" && opts.Tables != "all" {
		return usageErrorf("--tables takes only \"all\" (count the rows of every table), not %q", opts.Tables)
	}
	if opts.RestoreIfUnrepairable && !opts.RepairIfNeeded {
		return usageErrorf("--restore-if-unrepairable goes with --repair-if-needed; nothing was checked")
	}
	dbs, err := selectDatabases(opts.Config, opts.DB)
	if err != nil {
		return err
	}
	if opts.RepairIfNeeded {
		release, err := lockForRepair(opts)
		if err != nil {
			return err
		}
		defer release()
	}
	res := databaseCheckResult{OK: true}
	for _, d := range dbs {
		path := opts.Config.DatabasePath(d)
		item := dbCheckItem{Name: d.Name}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if opts.DB != "all" {
				return fmt.Errorf("database %s: %s does not exist; check install_dir and databases ('cfrollback settings')", d.Name, path)
			}
			item.Status, item.Missing, item.Path = "missing", true, path
			res.Databases = append(res.Databases, item)
			continue
		}
		r, err := sqlitedb.Check(ctx, path, sqlitedb.CheckOptions{
			Quick: opts.Quick, Tables: opts.Tables == "all", ForeignKeys: true,
			BusyTimeout: opts.Config.Database.BusyTimeout,
		})
		if err != nil {
			return fmt.Errorf("database %s: %w", d.Name, err)
		}
		item.CheckResult = r
		item.Status = "ok"
		if !r.OK {
			item.Status = "corrupt"
			if opts.RepairIfNeeded && len(r.Problems) > 0 {
				if item.Repair, err = repairDatabase(ctx, opts, d, path); err != nil {
					return err
				}
				item.Status = repairStatus(item.Repair)
			}
		}
		if item.Status == "corrupt" {
			res.OK = false
		}
		res.Databases = append(res.Databases, item)
	}
	if err := printDatabaseCheck(opts.IO, opts.JSON, res); err != nil {
		return err
	}
	if !res.OK {
		return exitError{ExitFailed}
	}
	return nil
}

func printDatabaseCheck(io *ui.IO, asJSON bool, res databaseCheckResult) error {
	repairing := false
	for _, d := range res.Databases {
		repairing = repairing || d.Repair != nil
	}
	if asJSON {
		return ui.JSON(io.Out, res)
	}
	p := io.OutPalette()
	tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tCHECK\tSIZE\tTIME\tPATH")
	for _, d := range res.Databases {
		status := p.Green("ok")
		switch d.Status {
		case "corrupt":
			status = p.Red("CORRUPT")
		case "missing":
			status = p.Yellow("missing")
		case "repaired", "restored":
			status = p.Yellow(strings.ToUpper(d.Status))
		}
		size, took := ui.Bytes(d.SizeBytes), ui.Duration(time.Duration(d.DurationMS)*time.Millisecond)
		if d.Status == "missing" {
			size, took = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, status, d.Check, size, took, d.Path)
	}
	tw.Flush()
	for _, d := range res.Databases {
		for i, pr := range d.Problems {
			if i == problemsShown {
				fmt.Fprintf(io.Out, "%s: ... and %d more problems (--json lists every one)\n", d.Name, len(d.Problems)-problemsShown)
				break
			}
			fmt.Fprintf(io.Out, "%s: %s\n", d.Name, pr)
		}
		for _, fk := range d.ForeignKeys {
			fmt.Fprintf(io.Out, "%s: foreign key violation: %s rowid %d references missing %s row\n", d.Name, fk.Table, fk.RowID, fk.Parent)
		}
		if d.Repair != nil {
			printRepair(io.Out, p, d.Name, d.Repair)
		}
		if len(d.Tables) > 0 {
			tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
			for _, t := range d.Tables {
				if t.Error != "" {
					fmt.Fprintf(tw, "  %s.%s\tunreadable: %s\n", d.Name, t.Name, t.Error)
					continue
				}
				fmt.Fprintf(tw, "  %s.%s\t%d rows\n", d.Name, t.Name, t.Rows)
			}
			tw.Flush()
		}
	}
	if !res.OK && !repairing {
		fmt.Fprintln(io.Out, "a database is damaged; nothing was changed. 'cfrollback database check --db NAME --repair-if-needed' repairs it (the original is kept); 'cfrollback database restore --db NAME --latest --stop-service' puts back the newest good backup (the damaged file is kept)")
	}
	return nil
}

// lockForRepair takes the run lock: a repair replaces files, and must not race an
// emergency rollback or a restore.
func lockForRepair(opts *databaseCheckOptions) (func(), error) {
	host, _ := os.Hostname()
	if err := fsutil.MkdirTrusted(filepath.Dir(opts.Config.Lock), 0o755); err != nil {
		return nil, fmt.Errorf("the lock's directory: %w", fsutil.WithKey(err, "lock"))
	}
	lk, err := lock.Acquire(opts.Config.Lock, lock.Holder{PID: os.Getpid(), Host: host, Command: "cfrollback database check --repair-if-needed --db " + opts.DB})
	if err != nil {
		return nil, err
	}
	return func() { _ = lk.Release() }, nil
}
