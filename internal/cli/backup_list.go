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

type backupListOptions struct {
	IO     *ui.IO
	JSON   bool
	Config settings.Config
	Now    func() time.Time
}

func newBackupListCmd(f *Factory) *cobra.Command {
	opts := &backupListOptions{IO: f.IO, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List backups newest first: age, size, app version, verified, good/bad",
		Long: `List the backups in backup.dir, newest first, with what is known about each:
app version and label (from the manifest), whether its sidecar manifest is ok,
none or DAMAGED (unreadable, not JSON, impossible, without the archive's
digest), the last verification (never, ok, FAILED, and when) and the good/bad
mark (set by hand or by the outcome of an emergency). A backup marked bad, or
with a damaged manifest, is skipped by 'cfrollback emergency' (unless named
with --backup). --json: "manifest_problem" says what is wrong with a manifest.` +
			exitStatusHelp("0  listed (also when there are no backups)",
				"1  backup.dir or backup.state cannot be read",
				"2  bad usage or invalid settings"),
		Example: `  cfrollback backup list
  cfrollback backup list --json | jq -r '.[] | select(.mark == "good") | .id' | head -1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON = cfg, f.JSON
			return runBackupList(cmd.Context(), opts)
		},
	}
	return cmd
}

func runBackupList(_ context.Context, opts *backupListOptions) error {
	cands, err := discoverBackups(opts.IO, opts.Config)
	if err != nil {
		return err
	}
	st, err := backupStore(opts.Config).Load()
	if err != nil {
		return err
	}
	rows := backup.List(cands, st)
	sb := runbook.StandbyInfo(opts.Config)
	for i := range rows {
		if sb.Sealed && rows[i].Path == sb.Backup {
			rows[i].StandbyBytes = sb.Bytes
		}
	}
	if opts.JSON {
		return ui.JSON(opts.IO.Out, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(opts.IO.Out, "no backups in %s matching %s; 'cfrollback backup create' makes one\n", opts.Config.Backup.Dir, opts.Config.Backup.Pattern)
		return nil
	}
	now := opts.Now()
	p := opts.IO.OutPalette()
	tb := ui.NewTable("ID", "TIME", "AGE", "SIZE", "APP", "MANIFEST", "VERIFIED", "MARK", "LABEL")
	for _, r := range rows {
		verified := r.Verified
		switch r.Verified {
		case "ok":
			verified = "ok " + ui.Ago(*r.VerifiedAt, now)
		case "failed":
			verified = p.Red("FAILED") + " " + ui.Ago(*r.VerifiedAt, now)
		}
		mark := "-"
		switch r.Mark {
		case backup.MarkGood:
			mark = p.Green("good")
		case backup.MarkBad:
			mark = p.Red("BAD")
		}
		manifest := "none"
		switch {
		case r.ManifestProblem != "":
			manifest = p.Red("DAMAGED")
		case r.Manifest:
			manifest = "ok"
		}
		tb.Row(r.ID, r.Time.Local().Format("2006-01-02 15:04"),
			ui.Ago(r.Time, now), ui.Bytes(r.Size), dash(r.AppVersion), manifest, verified, mark, r.Label)
	}
	if err := tb.Render(opts.IO.Out); err != nil {
		return err
	}
	if line := standbyLine(&sb, now); line != "" {
		fmt.Fprintf(opts.IO.Out, "standby: %s\n", line)
	}
	for _, r := range rows {
		if r.ManifestProblem != "" {
			fmt.Fprintf(opts.IO.Out, "%s %s: %s; emergency skips it unless named with --backup %s\n",
				p.Red("DAMAGED"), r.ID, shortErr(r.ManifestProblem, 200), r.Name)
		}
		if r.Verified == "failed" {
			fmt.Fprintf(opts.IO.Out, "%s %s: %s\n", p.Red("FAILED"), r.ID, shortErr(r.VerifyErr, 200))
		}
		if r.Mark == backup.MarkBad && r.MarkReason != "" {
			fmt.Fprintf(opts.IO.Out, "%s %s: %s (by %s)\n", p.Red("BAD"), r.ID, r.MarkReason, r.MarkedBy)
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type backupMarkOptions struct {
	IO     *ui.IO
	JSON   bool
	Config settings.Config
	Value  string
	ID     string
	Reason string
	DryRun bool
	Now    func() time.Time
}

func newBackupMarkCmd(f *Factory) *cobra.Command {
	opts := &backupMarkOptions{IO: f.IO, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "mark good|bad ID",
		Short: "Mark a backup good or bad by hand (emergency skips bad ones)",
		Long: `Record that a backup is known good or known bad. 'cfrollback emergency' skips
backups marked bad (it says so), and after each rollback it marks the backup it
used: good when the service came back healthy, bad when it did not. A mark made
by hand is never changed by a rollback, and a bad mark stays until a person
marks the backup good again. A mark is a run under the lock, in 'cfrollback
history' and 'report', and told to notify.webhooks (change_started,
change_complete).` +
			exitStatusHelp("0  marked",
				"1  no such backup, or backup.state or the journal cannot be written",
				"2  bad usage", "6  another cfrollback run holds the lock"),
		Example: `  cfrollback backup mark bad 20250104-140000 --reason "restores an empty config.db"
  cfrollback backup mark good backup-20250103-020000.tar.gz`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != backup.MarkGood && args[0] != backup.MarkBad {
				return usageErrorf("mark %q: say good or bad, e.g. 'cfrollback backup mark bad %s'", args[0], args[1])
			}
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON, opts.Value, opts.ID = cfg, f.JSON, args[0], args[1]
			return runBackupMark(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "why; shown by list and by emergency when it skips the backup")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "find the backup and print the mark it would get; write nothing")
	return cmd
}

func runBackupMark(ctx context.Context, opts *backupMarkOptions) error {
	cands, err := discoverBackups(opts.IO, opts.Config)
	if err != nil {
		return err
	}
	c, err := backup.Resolve(cands, opts.ID)
	if err != nil {
		return err
	}
	m := backup.Mark{Value: opts.Value, Time: opts.Now(), Reason: opts.Reason, By: "manual"}
	res, err := runbook.MarkBackup(ctx, opts.Config, backupStore(opts.Config), c, m, opts.DryRun, os.Args[1:], changeDeps(opts.IO, opts.JSON, opts.Config))
	if err != nil {
		return dbHinted(err)
	}
	if opts.JSON {
		return ui.JSON(opts.IO.Out, res)
	}
	was := "unmarked"
	if res.Was != "" {
		was = "marked " + res.Was
	}
	if opts.DryRun {
		fmt.Fprintf(opts.IO.Out, "backup %s would be marked %s (now %s); dry run: nothing was written\n", res.ID, m.Value, was)
		return nil
	}
	fmt.Fprintf(opts.IO.Out, "backup %s marked %s (was %s)\n", res.ID, m.Value, was)
	return nil
}
