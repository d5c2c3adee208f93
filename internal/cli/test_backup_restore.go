package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type testBackupRestoreOptions struct {
	IO     *ui.IO
	JSON   bool
	Config settings.Config
	ID     string // "" or "latest": the newest backup
	// Dir is the parent of the throwaway restore; "" means backup.dir, so
	// the space comes from the backups' disk, never the install's.
	Dir       string
	Now       func() time.Time
	DBChecker backup.DBChecker
}

func newTestBackupRestoreCmd(f *Factory) *cobra.Command {
	opts := &testBackupRestoreOptions{Now: time.Now}
	var quick bool
	cmd := &cobra.Command{
		Use:   "backup-restore [ID|latest]",
		Short: "Restore drill: restore a backup into a throwaway dir and check every file",
		Long: `Restore a backup (the newest one by default) into a new temporary dir, the way
'cfrollback emergency' restores into staging, then read the restored tree back:
every regular file's sha256, size and mode is compared with the backup's
manifest, and every database in it gets PRAGMA integrity_check (every row of
the answer is read). The time of each part and the result are reported.

Nothing live is touched: the service is neither stopped nor started, the
install dir is not written, and the temporary dir (a hidden dir in backup.dir,
or in --dir) is removed at the end. The result is not recorded in backup.state;
'cfrollback backup verify --deep' records its result.` +
			exitStatusHelp("0  the backup restored and every check passed",
				"1  a check failed (each problem is listed), or there is no backup",
				"2  bad usage or invalid settings"),
		Example: `  cfrollback test backup-restore
  cfrollback test backup-restore 20250104-140000 --json
  cfrollback test backup-restore latest --dir /srv/scratch --quick`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.IO, opts.Config, opts.JSON = f.IO, cfg, f.JSON
			if len(args) == 1 {
				opts.ID = args[0]
			}
			opts.DBChecker = restoreDBChecker{busy: cfg.Database.BusyTimeout, quick: quick}
			return runTestBackupRestore(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "restore under this dir (default backup.dir); never inside install_dir")
	cmd.Flags().BoolVar(&quick, "quick", false, "check databases with quick_check instead of integrity_check")
	return cmd
}

// restoreDBChecker checks a restored database with integrity_check, or
// quick_check with --quick.
type restoreDBChecker struct {
	busy  time.Duration
	quick bool
}

var _ backup.DBChecker = restoreDBChecker{}

func (c restoreDBChecker) Check(ctx context.Context, path string) error {
	res, err := sqlitedb.Check(ctx, path, sqlitedb.CheckOptions{Quick: c.quick, BusyTimeout: c.busy})
	if err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("%s: %s", res.Check, strings.Join(firstN(res.Problems, 3), "; "))
	}
	return nil
}

func runTestBackupRestore(ctx context.Context, opts *testBackupRestoreOptions) error {
	cfg := opts.Config
	cands, err := discoverBackups(opts.IO, cfg)
	if err != nil {
		return err
	}
	if len(cands) == 0 {
		return fmt.Errorf("no backups in %s matching %s to restore; 'cfrollback backup create' makes one", cfg.Backup.Dir, cfg.Backup.Pattern)
	}
	parent := opts.Dir
	if parent == "" {
		parent = cfg.Backup.Dir
	}
	parent, err = filepath.Abs(parent)
	if err != nil {
		return usageErrorf("--dir: %v", err)
	}
	if inside, err := fsutil.Inside(parent, cfg.InstallDir); err != nil {
		return fmt.Errorf("test backup-restore: %w", err)
	} else if inside {
		return usageErrorf("%s is inside install_dir %s; a restore drill never writes into the live install, give --dir elsewhere", parent, cfg.InstallDir)
	}
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		return fmt.Errorf("test backup-restore: %s is not a directory to restore under; give --dir DIR", parent)
	}

	target := cands[0]
	if opts.ID != "" && opts.ID != "latest" {
		if target, err = backup.Resolve(cands, opts.ID); err != nil {
			return err
		}
	}

	var dbs []backup.Database
	for _, d := range cfg.Databases {
		dbs = append(dbs, backup.Database{Name: d.Name, Path: d.Path})
	}
	lim := archive.DefaultLimits()
	lim.MaxTotalSize = int64(cfg.Backup.MaxSize)
	bar := newProgressBar(opts.IO, opts.JSON, target.Size, "restoring "+backup.ID(target.Name))
	res, err := backup.RestoreTest(ctx, target, backup.RestoreTestOptions{
		Limits: lim, TempDir: parent, Databases: dbs, DBChecker: opts.DBChecker, Now: opts.Now,
		Progress: func(read, _ int64) { bar.set(read) },
	})
	bar.finish()
	if err != nil {
		return fmt.Errorf("test backup-restore %s: %w", target.Name, err)
	}
	if opts.JSON {
		if err := ui.JSON(opts.IO.Out, res); err != nil {
			return err
		}
	} else {
		printRestoreTest(opts.IO, target, res)
	}
	if !res.OK {
		return exitError{ExitFailed}
	}
	return nil
}

func printRestoreTest(io *ui.IO, c backup.Candidate, res *backup.RestoreTestResult) {
	p := io.OutPalette()
	w := io.Out
	d := func(ms int64) string { return ui.Duration(time.Duration(ms) * time.Millisecond) }
	fmt.Fprintf(w, "restore drill of %s (%s, %s)\n", res.ID, c.Name, ui.Bytes(c.Size))
	fmt.Fprintf(w, "  restored into  %s (removed again)\n", res.Dir)
	if res.ExtractMS > 0 || res.Entries > 0 {
		fmt.Fprintf(w, "  extract        %-8s %d entries, %d files, %s\n", d(res.ExtractMS), res.Entries, res.Files, ui.Bytes(res.Bytes))
	}
	if res.Manifest {
		fmt.Fprintf(w, "  files          %-8s %d compared with the manifest (sha256, size, mode)\n", d(res.CompareMS), res.CheckedFiles)
	}
	if len(res.CheckedDatabases) > 0 {
		fmt.Fprintf(w, "  databases      %-8s %s\n", d(res.DatabasesMS), strings.Join(res.CheckedDatabases, ", "))
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	if res.OK {
		fmt.Fprintf(w, "%s backup %s restores and matches; took %s\n", p.Green("PASS:"), res.ID, d(res.DurationMS))
		return
	}
	fmt.Fprintf(w, "%s backup %s did not pass the restore drill (took %s):\n", p.Red("FAIL:"), res.ID, d(res.DurationMS))
	for _, pr := range res.Problems {
		fmt.Fprintf(w, "  %s\n", pr)
	}
	fmt.Fprintf(w, "'cfrollback backup mark bad %s' keeps emergency away from it; 'cfrollback backup list' shows the others\n", res.ID)
}
