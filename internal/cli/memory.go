package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type memoryTestOptions struct {
	IO         *ui.IO
	JSON       bool
	Config     settings.Config
	DB         string
	Operations []string
}

type memoryTestResult struct {
	OK         bool               `json:"ok"`
	Database   string             `json:"database"`
	Path       string             `json:"path"`
	Operations []sqlitedb.ProbeOp `json:"operations"`
}

func newMemoryCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "memory",
		Short: "Work with the service's memory database (.swarm/memory.db)",
		Long: "Work with the service's memory database (the setting databases, name memory)." +
			exitStatusHelp("see 'cfrollback memory test --help'"),
		Example: "  cfrollback memory test --operations read,write,delete",
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(newMemoryTestCmd(f))
	return cmd
}

func newMemoryTestCmd(f *Factory) *cobra.Command {
	opts := &memoryTestOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Check that the live memory database is sound and can be read, written and deleted from",
		Long: `First check the live memory database's integrity, read-only, as 'database check'
does: a corrupt file can still answer a few reads and writes. Then exercise it (the
seed's "Test memory operations") inside one transaction that is always rolled back,
so no data changes:
  integrity  PRAGMA integrity_check, which also finds an index that no longer
             matches its table (quick_check for a file over 256 MB); always run
  read       read a row of every table
  write      create a probe table, insert a row and read it back
  delete     delete that row
When the integrity check fails the other operations are skipped and the first
problems are shown; 'cfrollback database check' lists them all. The check takes
about 0.3 s for 50 MB. A write holds SQLite's write lock for the few milliseconds of
the test, waiting up to database.busy_timeout for the service's own writes. Safe
while the service runs.` +
			exitStatusHelp(
				"0  the database is sound and every operation worked",
				"1  a corrupt database, a failed operation (each says why), or no database file",
				"2  bad usage or invalid settings"),
		Example: `  cfrollback memory test
  cfrollback memory test --operations read
  cfrollback memory test --operations read,write,delete --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON = cfg, f.JSON
			return runMemoryTest(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.DB, "db", "memory", "database name from the setting databases")
	cmd.Flags().StringSliceVar(&opts.Operations, "operations", []string{"read", "write", "delete"}, "operations to test after the integrity check: read, write, delete")
	return cmd
}

func runMemoryTest(ctx context.Context, opts *memoryTestOptions) error {
	for _, op := range opts.Operations {
		switch op {
		case "read", "write", "delete":
		default:
			return usageErrorf("--operations: unknown operation %q; use read, write, delete (comma-separated)", op)
		}
	}
	dbs, err := selectDatabases(opts.Config, opts.DB)
	if err != nil {
		return err
	}
	if len(dbs) != 1 {
		return usageErrorf("test one database at a time: --db NAME")
	}
	path := opts.Config.DatabasePath(dbs[0])
	ctx, cancel := context.WithTimeout(ctx, opts.Config.Database.BusyTimeout+30*time.Second)
	defer cancel()
	ops, err := sqlitedb.Probe(ctx, path, opts.Operations, opts.Config.Database.BusyTimeout)
	if err != nil {
		return fmt.Errorf("memory test of %s: %w; 'cfrollback database check --db %s' says whether the file is sound", dbs[0].Name, err, dbs[0].Name)
	}
	res := memoryTestResult{OK: true, Database: dbs[0].Name, Path: path, Operations: ops}
	for _, o := range ops {
		res.OK = res.OK && o.OK
	}
	if opts.JSON {
		if err := ui.JSON(opts.IO.Out, res); err != nil {
			return err
		}
	} else {
		p := opts.IO.OutPalette()
		corrupt := false
		for _, o := range ops {
			mark, took := p.Green("PASS"), ui.Duration(time.Duration(o.DurationMS)*time.Millisecond)
			switch {
			case o.Skipped:
				mark, took = p.Faint("SKIP"), "-"
			case !o.OK:
				mark = p.Red("FAIL")
				corrupt = corrupt || o.Op == "integrity"
			}
			fmt.Fprintf(opts.IO.Out, "%s  %-9s %6s  %s\n", mark, o.Op, took, o.Detail)
		}
		verdict := "work"
		if !res.OK {
			verdict = "FAIL"
		}
		if corrupt {
			fmt.Fprintf(opts.IO.Out, "memory database %s: CORRUPT, nothing was written; run 'cfrollback database check --db %[2]s' for every problem, then 'cfrollback database check --db %[2]s --repair-if-needed'\n", path, dbs[0].Name)
		} else {
			fmt.Fprintf(opts.IO.Out, "memory database %s: integrity,%s %s (rolled back, no data changed)\n", path, strings.Join(opts.Operations, ","), verdict)
		}
	}
	if !res.OK {
		return exitError{ExitFailed}
	}
	return nil
}
