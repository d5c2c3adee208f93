package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type backupPruneOptions struct {
	IO              *ui.IO
	JSON            bool
	Config          settings.Config
	Keep            int
	MaxAge          string
	FailedOlderThan string
	DryRun          bool
	Now             func() time.Time
}

func newBackupPruneCmd(f *Factory) *cobra.Command {
	opts := &backupPruneOptions{IO: f.IO, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete old backups, never the ones a rollback may need",
		Long: `Delete backups (and their manifests) that are beyond the newest --keep and
older than --max-age (defaults: backup.keep and backup.max_age). Never deleted,
whatever their age:
  - the newest backup marked good
  - the newest backup whose last verification passed
  - a backup that a run is using: named by an unfinished run in the journal,
    or by the run that holds the lock (while a run is still choosing its
    backup, prune deletes nothing and exits 6)

Failed installs kept by rollbacks (<install>-failed-*) are listed with their
size, and deleted only with --failed-older-than. A prune is a run under the
lock, in 'cfrollback history' and 'report' (what it deleted), and told to
notify.webhooks (change_started, change_complete).` +
			exitStatusHelp("0  pruned (or, with --dry-run, the plan printed)",
				"1  a deletion failed, or the journal cannot be read",
				"2  bad usage or invalid settings",
				"6  a cfrollback run is choosing a backup right now; run prune again later"),
		Example: `  cfrollback backup prune --dry-run
  cfrollback backup prune --keep 10 --max-age 7d
  cfrollback backup prune --failed-older-than 30d --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON = cfg, f.JSON
			if !cmd.Flags().Changed("keep") {
				opts.Keep = cfg.Backup.Keep
			}
			if opts.MaxAge == "" {
				opts.MaxAge = ui.FormatDuration(cfg.Backup.MaxAge)
			}
			return runBackupPrune(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.Keep, "keep", 0, "always keep this many newest backups (default backup.keep)")
	cmd.Flags().StringVar(&opts.MaxAge, "max-age", "", "delete backups older than this, e.g. 7d, 36h (default backup.max_age)")
	cmd.Flags().StringVar(&opts.FailedOlderThan, "failed-older-than", "", "also delete failed install dirs older than this, e.g. 30d")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print what would be deleted; delete nothing")
	return cmd
}

func runBackupPrune(ctx context.Context, opts *backupPruneOptions) error {
	cfg := opts.Config
	if opts.Keep < 1 {
		return usageErrorf("--keep %d: keep at least 1 backup", opts.Keep)
	}
	maxAge, err := ui.ParseDuration(opts.MaxAge)
	if err == nil && maxAge < 0 {
		err = fmt.Errorf("%q is negative", opts.MaxAge)
	}
	if err != nil {
		return usageErrorf("--max-age: %v", err)
	}
	var failedAge time.Duration
	if opts.FailedOlderThan != "" {
		if failedAge, err = ui.ParseDuration(opts.FailedOlderThan); err != nil || failedAge <= 0 {
			return usageErrorf("--failed-older-than %q: give a positive age such as 30d", opts.FailedOlderThan)
		}
	}
	cands, err := discoverBackups(opts.IO, cfg)
	if err != nil {
		return err
	}
	popt := backup.PruneOptions{Keep: opts.Keep, MaxAge: maxAge, Now: opts.Now(), FailedOlderThan: failedAge}
	res, err := runbook.PruneBackups(ctx, cfg, cands, popt, opts.DryRun, os.Args[1:], changeDeps(opts.IO, opts.JSON, cfg))
	if res == nil || (err != nil && len(res.Errors) == 0) {
		return dbHinted(err) // refused (nothing deleted), or the journal failed (the hint says what was deleted)
	}
	res.Standby = pruneStandby(ctx, opts.IO, cfg, opts.DryRun, res.Backups)
	if opts.JSON {
		if err := ui.JSON(opts.IO.Out, res); err != nil {
			return err
		}
	} else {
		printPrune(opts.IO, res, opts.Now())
	}
	if len(res.Errors) > 0 {
		if !opts.JSON {
			for _, e := range res.Errors {
				fmt.Fprintf(opts.IO.ErrOut, "cfrollback: %s\n", e)
			}
		}
		return exitError{ExitFailed}
	}
	return nil
}

func printPrune(io *ui.IO, res *runbook.PruneResult, now time.Time) {
	p := io.OutPalette()
	verb := "delete"
	if res.DryRun {
		verb = "would delete"
	}
	tb := ui.NewTable("ACTION", "ID", "AGE", "SIZE", "WHY")
	for _, items := range [][]backup.PruneItem{res.Backups, res.FailedDirs} {
		for _, it := range items {
			action := "keep"
			if it.Delete {
				action = p.Red(verb)
			}
			tb.Row(action, it.ID, ui.Ago(it.Time, now), ui.Bytes(it.Size), it.Reason)
		}
	}
	_ = tb.Render(io.Out)
	if res.Standby != "" {
		fmt.Fprintln(io.Out, "standby: "+res.Standby)
	}
	if res.DryRun {
		fmt.Fprintln(io.Out, "dry run: nothing was deleted")
	} else {
		fmt.Fprintf(io.Out, "deleted %d, freed %s\n", res.Deleted, ui.Bytes(res.Freed))
	}
}
