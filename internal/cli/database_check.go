package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/config"
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
}

type databaseCheckResult struct {
	OK        bool          `json:"ok"`
	Databases []dbCheckItem `json:"databases"`
}

type dbCheckItem struct {
	Name    string `json:"name"`
	Status  string `json:"status"` // ok, corrupt, missing
	Missing bool   `json:"missing,omitempty"`
	sqlitedb.CheckResult
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
--db all, a database whose file does not exist is reported missing (not a failure).` +
			exitStatusHelp(
				"0  every database checked is ok",
				"1  a database is corrupt, not SQLite, has foreign key violations, or a named database is missing",
				"2  bad usage or invalid settings"),
		Example: `  cfrollback database check
  cfrollback database check --db memory --quick
  cfrollback database check --tables all --json | jq '.databases[] | {name, ok, problems}'
  cfrollback database check --quick >/dev/null || page-oncall "memory.db corrupt"`,
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
	cmd.Flags().StringVar(&opts.Tables, "tables", "", "all: count the rows of every table")
	cmd.Flags().BoolVar(&opts.Quick, "quick", false, "PRAGMA quick_check instead of integrity_check")
	cmd.Flags().BoolVar(&opts.RepairIfNeeded, "repair-if-needed", false, "not available yet: restore the newest good backup with 'cfrollback database restore --latest'")
	return cmd
}

func runDatabaseCheck(ctx context.Context, opts *databaseCheckOptions) error {
	if opts.Tables != "" && opts.Tables != "all" {
		return usageErrorf("--tables takes only \"all\" (count the rows of every table), not %q", opts.Tables)
	}
	if opts.RepairIfNeeded {
		return usageErrorf("--repair-if-needed is not available yet; nothing was checked. Use 'cfrollback database restore --db NAME --latest --stop-service' to put back the newest good backup")
	}
	dbs, err := selectDatabases(opts.Config, opts.DB)
	if err != nil {
		return err
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
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, status, d.Check, dbSize(d.SizeBytes),
			ui.Duration(time.Duration(d.DurationMS)*time.Millisecond), d.Path)
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
	if !res.OK {
		fmt.Fprintln(io.Out, "a database is damaged; nothing was changed. 'cfrollback database restore --db NAME --latest --stop-service' puts back the newest good backup (the damaged file is kept)")
	}
	return nil
}
