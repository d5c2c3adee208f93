package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type databaseCheckOptions struct {
	IO             *ui.IO
	JSON           bool
	Config         settings.Config
	DB             string
	Tables         string
	Quick          bool
	RepairIfNeeded bool
	// RestoreIfUnrepairable restores the newest good backup when a repair is not clean.
	RestoreIfUnrepairable bool
	DryRun                bool
	Args                  []string
	// NewService builds the service manager (only to start a service that a killed
	// database restore left stopped); tests replace it.
	NewService func(ctx context.Context, cfg settings.Config) (service.Manager, error)
}

// problemsShown bounds the problems printed per database for a person; --json has all.
const problemsShown = 20

func newDatabaseCheckCmd(f *Factory) *cobra.Command {
	opts := &databaseCheckOptions{IO: f.IO, NewService: newServiceManager}
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
    restoring it loses; --restore-if-unrepairable restores it (the damaged file kept).

A repair is a runbook procedure, taken only when a database is corrupt: lock, intent,
a journaled step per repair and restore, outcome ('cfrollback history'). --dry-run with
--repair-if-needed checks, says what would be repaired or restored and changes nothing.` +
			exitStatusHelp(
				"0  every database checked is ok (or was repaired cleanly, or restored with --restore-if-unrepairable)",
				"1  a database is corrupt, not SQLite, has foreign key violations, or a named database is missing",
				"2  bad usage or invalid settings",
				"3  interrupted (Ctrl-C, SIGTERM) before anything changed; --repair-if-needed: the database is",
				"   open in a process (pid named), or the journal cannot be written; nothing was changed",
				"6  --repair-if-needed: another cfrollback run holds the lock"),
		Example: `  cfrollback database check
  cfrollback database check --db memory --quick
  cfrollback database check --tables all --json | jq '.databases[] | {name, ok, problems}'
  cfrollback database check --quick >/dev/null || page-oncall "memory.db corrupt"
  systemctl stop claude-flow && cfrollback database check --db memory --repair-if-needed
  cfrollback database check --db memory --repair-if-needed --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON, opts.Args = cfg, f.JSON, os.Args[1:]
			return runDatabaseCheck(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.DB, "db", "all", "database name from the setting databases, or all")
	_ = cmd.RegisterFlagCompletionFunc("db", completeDatabases(f, true))
	cmd.Flags().StringVar(&opts.Tables, "tables", "", "all: count the rows of every table")
	cmd.Flags().BoolVar(&opts.Quick, "quick", false, "PRAGMA quick_check instead of integrity_check")
	cmd.Flags().BoolVar(&opts.RepairIfNeeded, "repair-if-needed", false, "repair a corrupt database (REINDEX, or salvage table by table); the original is kept")
	cmd.Flags().BoolVar(&opts.RestoreIfUnrepairable, "restore-if-unrepairable", false, "with --repair-if-needed: when the repair is not clean, restore the newest good backup")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "with --repair-if-needed: say what would be repaired or restored; change nothing")
	return cmd
}

func runDatabaseCheck(ctx context.Context, opts *databaseCheckOptions) error {
	if opts.Tables != "" && opts.Tables != "all" {
		return usageErrorf("--tables takes only \"all\" (count the rows of every table), not %q", opts.Tables)
	}
	if opts.RestoreIfUnrepairable && !opts.RepairIfNeeded {
		return usageErrorf("--restore-if-unrepairable goes with --repair-if-needed; nothing was checked")
	}
	if opts.DryRun && !opts.RepairIfNeeded {
		return usageErrorf("--dry-run goes with --repair-if-needed (a check alone changes nothing)")
	}
	dbs, err := selectDatabases(opts.Config, opts.DB)
	if err != nil {
		return err
	}
	res, err := runbook.CheckDatabases(ctx, runbook.DBCheckOptions{
		Config: opts.Config, Databases: dbs, All: opts.DB == "all" || opts.DB == "",
		Quick: opts.Quick, Tables: opts.Tables == "all", Repair: opts.RepairIfNeeded,
		RestoreIfUnrepairable: opts.RestoreIfUnrepairable, DryRun: opts.DryRun, Args: opts.Args,
	}, runbook.DBDeps{
		NewService: func(ctx context.Context) (service.Manager, error) { return opts.NewService(ctx, opts.Config) },
		Events:     dbProgressPrinter(opts.IO, opts.JSON),
		Notifier:   newRunNotifier(opts.IO, opts.Config),
	})
	if err != nil {
		return dbHinted(err)
	}
	if err := printDatabaseCheck(opts.IO, opts.JSON, res); err != nil {
		return err
	}
	if !res.OK {
		return exitError{ExitFailed}
	}
	return nil
}

func printDatabaseCheck(io *ui.IO, asJSON bool, res *runbook.DBCheckResult) error {
	if asJSON {
		return ui.JSON(io.Out, res)
	}
	repairing := false
	for _, d := range res.Databases {
		repairing = repairing || d.Repair != nil
	}
	p := io.OutPalette()
	tb := ui.NewTable("NAME", "STATUS", "CHECK", "SIZE", "TIME", "PATH")
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
		tb.Row(d.Name, status, d.Check, size, took, d.Path)
	}
	if err := tb.Render(io.Out); err != nil {
		return err
	}
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
			if err := printRepair(io.Out, p, d.Name, d.Repair); err != nil {
				return err
			}
		}
		if len(d.Tables) > 0 {
			tt := ui.NewTable()
			for _, t := range d.Tables {
				if t.Error != "" {
					tt.Row("  "+d.Name+"."+t.Name, "unreadable: "+t.Error)
					continue
				}
				tt.Row("  "+d.Name+"."+t.Name, fmt.Sprintf("%d rows", t.Rows))
			}
			if err := tt.Render(io.Out); err != nil {
				return err
			}
		}
	}
	if len(res.Plan) > 0 {
		fmt.Fprintln(io.Out, "\nDRY RUN: nothing was changed; plan:")
		for i, s := range res.Plan {
			fmt.Fprintf(io.Out, "  %d. %s\n", i+1, s)
		}
	}
	if res.RunID != "" {
		fmt.Fprintf(io.Out, "run: %s (cfrollback history; cfrollback report %s)\n", res.RunID, res.RunID)
	}
	if !res.OK && !repairing {
		fmt.Fprintln(io.Out, "a database is damaged; nothing was changed. 'cfrollback database check --db NAME --repair-if-needed' repairs it (the original is kept); 'cfrollback database restore --db NAME --latest --stop-service' puts back the newest good backup (the damaged file is kept)")
	}
	return nil
}
