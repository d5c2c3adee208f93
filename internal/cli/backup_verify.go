package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type backupVerifyOptions struct {
	IO     *ui.IO
	JSON   bool
	Config settings.Config
	IDs    []string
	All    bool
	Deep   bool
	Now    func() time.Time
	// DBChecker runs integrity_check in --deep; nil only checks that each
	// database is there. internal/sqlitedb provides it (issue 4).
	DBChecker backup.DBChecker
}

func newBackupVerifyCmd(f *Factory) *cobra.Command {
	opts := &backupVerifyOptions{IO: f.IO, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "verify [ID...|--all]",
		Short: "Read backups to the end and check them against their manifests",
		Long: `Read each backup to its last byte under the rules a restore applies (every
entry safe, gzip and tar intact) and compare it with its manifest: the
archive's sha256, the entry count, and every file's sha256 and mode. --deep
also extracts it into a temporary dir next to the backups and checks that
its databases are there. Without an ID the newest backup is verified.

Results are recorded in backup.state; 'cfrollback backup list' shows them.` +
			exitStatusHelp("0  every backup verified",
				"1  at least one backup failed (each problem is listed)",
				"2  bad usage or invalid settings"),
		Example: `  cfrollback backup verify
  cfrollback backup verify 20250104-140000 --deep
  cfrollback backup verify --all --json | jq '.[] | select(.ok | not) | .id'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.All && len(args) > 0 {
				return usageErrorf("give backup IDs or --all, not both")
			}
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON, opts.IDs = cfg, f.JSON, args
			opts.DBChecker = sqliteChecker{busy: cfg.Database.BusyTimeout}
			return runBackupVerify(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "verify every backup in backup.dir")
	cmd.Flags().BoolVar(&opts.Deep, "deep", false, "also extract to a temporary dir and check the databases in it")
	return cmd
}

func runBackupVerify(ctx context.Context, opts *backupVerifyOptions) error {
	cfg := opts.Config
	cands, err := discoverBackups(opts.IO, cfg)
	if err != nil {
		return err
	}
	var targets []backup.Candidate
	switch {
	case opts.All:
		targets = cands
	case len(opts.IDs) > 0:
		for _, id := range opts.IDs {
			c, err := backup.Resolve(cands, id)
			if err != nil {
				return err
			}
			targets = append(targets, c)
		}
	case len(cands) > 0:
		targets = cands[:1]
	}
	if len(targets) == 0 {
		return fmt.Errorf("no backups in %s matching %s to verify; 'cfrollback backup create' makes one", cfg.Backup.Dir, cfg.Backup.Pattern)
	}
	var dbs []backup.Database
	for _, d := range cfg.Databases {
		dbs = append(dbs, backup.Database{Name: d.Name, Path: d.Path})
	}
	lim := archive.DefaultLimits()
	lim.MaxTotalSize = int64(cfg.Backup.MaxSize)
	bar := newProgressBar(opts.IO, opts.JSON, 0, "")
	results := make([]*backup.VerifyResult, 0, len(targets))
	p := opts.IO.OutPalette()
	failed := 0
	for _, c := range targets {
		bar.reset(c.Size)
		bar.describe(backup.ID(c.Name))
		res, err := backup.Verify(ctx, c, backup.VerifyOptions{
			Limits: lim, Deep: opts.Deep, Databases: dbs, DBChecker: opts.DBChecker, Now: opts.Now,
			Progress: func(read, _ int64) { bar.set(read) },
		})
		if err != nil {
			bar.finish()
			return fmt.Errorf("verify %s: %w", c.Name, err)
		}
		results = append(results, res)
		if !res.OK {
			failed++
		}
		if !opts.JSON {
			bar.finish()
			if res.OK {
				fmt.Fprintf(opts.IO.Out, "%s %s  %d entries, sha256 %s…%s\n", p.Green("ok    "), res.ID, res.Entries, res.SHA256[:12], noManifest(res))
			} else {
				fmt.Fprintf(opts.IO.Out, "%s %s\n", p.Red("FAILED"), res.ID)
				for _, pr := range res.Problems {
					fmt.Fprintf(opts.IO.Out, "         %s\n", pr)
				}
			}
			for _, n := range res.Notes {
				fmt.Fprintf(opts.IO.Out, "         note: %s\n", n)
			}
		}
	}
	bar.finish()
	if err := backupStore(cfg).Update(ctx, func(st *backup.State) error {
		for i, r := range results {
			st.SetVerify(targets[i].Name, r.Record())
		}
		return nil
	}); err != nil {
		warnPrinter(opts.IO)(fmt.Sprintf("results not recorded: %v", err))
	}
	if opts.JSON {
		if err := ui.JSON(opts.IO.Out, results); err != nil {
			return err
		}
	} else if failed > 0 {
		fmt.Fprintf(opts.IO.Out, "\n%d of %d backup(s) FAILED; 'cfrollback backup mark bad ID' keeps emergency away from one, 'cfrollback backup list' shows them all\n", failed, len(results))
	}
	if failed > 0 {
		return exitError{ExitFailed}
	}
	return nil
}

func noManifest(r *backup.VerifyResult) string {
	if r.Manifest {
		return ""
	}
	return " (no manifest: per-file digests not checked)"
}
