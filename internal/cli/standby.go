package cli

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

func newStandbyCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "standby",
		Short: "The warm standby: the backup emergency would restore, kept extracted and sealed",
		Long: `The standby (standby.dir, default <install_dir>.standby) is the backup an
emergency would choose, already extracted next to the install and sealed: the
seal (<standby>.seal) records the backup file's identity and a stat walk of the
tree (type, mode, owner, size, mtime, ctime, inode, links of every entry). An
emergency whose chosen backup is the one sealed, and whose walk finds the tree
unchanged, renames it into place instead of extracting; otherwise it extracts
as before and says why. It is refreshed after 'backup create' and after a
rollback that ended healthy. It costs one install's size on disk.
standby.enabled: false (CFROLLBACK_STANDBY_ENABLED=false) turns it off.

The sealed standby is also bind-mounted onto itself read-only
(standby.read_only_mount, default on; needs root with CAP_SYS_ADMIN, Linux 6.8+):
no write goes through its path, and an emergency that finds the very mount the
refresh made, still read-only and the only way in, skips the walk (a few ms
whatever the size). Without it (after a reboot, say) the emergency walks. Remove
a standby with 'cfrollback standby drop', not rm -rf (EROFS while mounted).`,
		Example: `  cfrollback standby status
  cfrollback standby refresh
  cfrollback standby refresh --dry-run --json
  cfrollback standby drop`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newStandbyStatusCmd(f), newStandbyRefreshCmd(f), newStandbyDropCmd(f))
	return cmd
}

func newStandbyStatusCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Is the standby sealed and unchanged, which backup, how big, how old",
		Long: `Check the standby as an emergency would: read its seal, then prove the tree
unchanged by its read-only mount or else walk it and compare it entry by entry
(the "checked" line says which, the "mounted" line why not the mount); then say
whether it holds the backup an emergency would choose now. After backup create
or a healthy rollback it holds the newest backup, of the install running now: an
emergency now would pass that over, the one after the next deploy takes it
("ready for the next deploy"). Changes nothing.` +
			exitStatusHelp("0  valid, and emergency would use it now, or after the next deploy",
				"1  no standby, or one emergency would not use (the reason is printed)",
				"2  bad usage or invalid settings"),
		Example: `  cfrollback standby status
  cfrollback standby status --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			st := runbook.CheckStandby(cmd.Context(), cfg)
			if f.JSON {
				if err := ui.JSON(f.IO.Out, st); err != nil {
					return err
				}
			} else {
				printStandbyStatus(f.IO, st, time.Now())
			}
			if !st.WouldUse && !st.ForNextDeploy {
				return exitError{ExitFailed}
			}
			return nil
		},
	}
}

func printStandbyStatus(io *ui.IO, st runbook.StandbyStatus, now time.Time) {
	p := io.OutPalette()
	w := io.Out
	head := p.Green("standby ready")
	switch {
	case st.ForNextDeploy:
		head = p.Green("standby ready for the next deploy")
	case !st.WouldUse:
		head = p.Yellow("standby not usable")
	}
	fmt.Fprintf(w, "%s  %s\n", head, st.Dir)
	if st.Backup != "" {
		fmt.Fprintf(w, "  backup:   %s\n", st.Backup)
	}
	if st.Bytes > 0 {
		fmt.Fprintf(w, "  size:     %s on disk (%d entries)\n", ui.Bytes(st.Bytes), st.Entries)
	}
	if !st.SealedAt.IsZero() {
		fmt.Fprintf(w, "  sealed:   %s (%s)\n", st.SealedAt.Local().Format(time.RFC3339), ui.Ago(st.SealedAt, now))
	}
	if st.Checked {
		fmt.Fprintf(w, "  checked:  %d entries in %d ms (%s)\n", st.Entries, st.CheckMS, cmp.Or(st.Proof, "not proved"))
	}
	switch {
	case st.ReadOnlyMount:
		fmt.Fprintln(w, "  mounted:  read-only onto itself (no write can go through its path)")
	case st.NotByMount != "":
		fmt.Fprintf(w, "  mounted:  no (%s)\n", st.NotByMount)
	}
	if st.Chosen != "" {
		fmt.Fprintf(w, "  emergency would restore: %s\n", st.Chosen)
	}
	if !st.Enabled {
		fmt.Fprintln(w, "  standby.enabled is false")
	}
	if st.Problem != "" {
		fmt.Fprintf(w, "  %s %s\n", p.Yellow("why:"), st.Problem)
		fmt.Fprintln(w, "\nnext:\n  cfrollback standby refresh")
	}
}

type standbyRunOptions struct {
	IO     *ui.IO
	JSON   bool
	Config settings.Config
	DryRun bool
	Drop   bool
}

func newStandbyRefreshCmd(f *Factory) *cobra.Command {
	opts := &standbyRunOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "refresh",
		Short: "Extract the backup emergency would restore into the standby and seal it",
		Long: `Choose the backup an emergency would choose now (same rules: marks, damaged
manifests, backups of the running install passed over), and unless the standby
already holds it with a valid seal, extract it into a private work dir
(<standby>.tmp-RUN, root's, 0700), rename that into place and seal it. The
extraction runs WITHOUT the run lock: an emergency that comes meanwhile does not
wait for it. The lock is taken again (at most 5 s of waiting) to check that the
backup is still the one an emergency would choose and the same file, swap the
tree in and seal it. The old seal is removed before the old standby is touched,
and the new one written last: a refresh killed anywhere leaves no standby an
emergency would use, and the next refresh removes what it left. Journaled like a
rollback; it never touches the install or the service.` +
			exitStatusHelp("0  refreshed, it already held the right backup, there is no backup emergency would restore, or superseded (the backup to keep warm changed while it was extracted: not put in place)",
				"2  bad usage or invalid settings",
				"3  not refreshed (the reason is printed); any standby left is the old, still valid one or unsealed and unused",
				"6  another cfrollback run holds the lock (at the start, or still after 5 s when the tree was ready: not refreshed)"),
		Example: `  cfrollback standby refresh
  cfrollback standby refresh --dry-run
  cfrollback standby refresh --json`,
		Args: cobra.NoArgs,
		RunE: standbyRunE(f, opts),
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "choose the backup, read it through and print the plan; change nothing")
	return cmd
}

func newStandbyDropCmd(f *Factory) *cobra.Command {
	opts := &standbyRunOptions{IO: f.IO, Drop: true}
	cmd := &cobra.Command{
		Use:   "drop",
		Short: "Remove the standby and its seal (emergency then extracts)",
		Long: `Remove the seal first, then the standby tree and anything an interrupted
refresh left. Frees one install's size on disk. Locked and journaled.` +
			exitStatusHelp("0  removed, or there was none",
				"2  bad usage or invalid settings",
				"3  could not remove it (the seal is gone first, so what is left is never used)",
				"6  another cfrollback run holds the lock"),
		Example: `  cfrollback standby drop
  cfrollback standby drop --dry-run`,
		Args: cobra.NoArgs,
		RunE: standbyRunE(f, opts),
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "say what would be removed; change nothing")
	return cmd
}

func standbyRunE(f *Factory, opts *standbyRunOptions) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		cfg, err := f.loadConfig()
		if err != nil {
			return err
		}
		opts.Config, opts.JSON = cfg, f.JSON
		return runStandby(cmd.Context(), opts)
	}
}

func runStandby(ctx context.Context, opts *standbyRunOptions) error {
	ro := runbook.Options{Config: opts.Config, DryRun: opts.DryRun, Args: os.Args[1:], KillAt: os.Getenv("CFROLLBACK_TEST_KILL_AT")}
	deps := runbook.Deps{Events: progressPrinter(opts.IO, opts.JSON)}
	var res *runbook.StandbyResult
	var err error
	if opts.Drop {
		res, err = runbook.StandbyDrop(ctx, ro, deps, runbook.DropOptions{})
	} else {
		res, err = runbook.StandbyRefresh(ctx, ro, deps)
	}
	if opts.JSON {
		if perr := ui.JSON(opts.IO.Out, res); perr != nil {
			return perr
		}
		return err
	}
	printStandbyResult(opts.IO, res)
	return err
}

func printStandbyResult(io *ui.IO, res *runbook.StandbyResult) {
	p := io.OutPalette()
	w := io.Out
	heads := map[string]string{
		"ok": p.Green("STANDBY REFRESHED"), "current": p.Green("STANDBY ALREADY CURRENT"), "dropped": p.Green("STANDBY DROPPED"),
		"none": "NO STANDBY TO DROP", "planned": p.Bold("DRY RUN: nothing was changed"),
		"busy":       p.Yellow("STANDBY NOT REFRESHED: another run held the lock when the tree was ready"),
		"superseded": p.Yellow("STANDBY NOT REFRESHED: the backup to keep warm changed while it was extracted"),
	}
	if res.Command == runbook.StandbyRefreshCommand {
		heads["none"] = p.Yellow("NO BACKUP TO KEEP WARM: emergency would pass over every backup now")
	}
	head, ok := heads[res.Outcome]
	if !ok {
		head = p.Red("STANDBY NOT " + map[bool]string{true: "DROPPED", false: "REFRESHED"}[res.Command == runbook.StandbyDropCommand])
	}
	fmt.Fprintf(w, "\n%s  (run %s)\n  standby:      %s\n", head, res.RunID, res.Dir)
	if res.Backup != nil {
		fmt.Fprintf(w, "  backup:       %s\n", res.Backup.Path)
	}
	if res.Bytes > 0 {
		fmt.Fprintf(w, "  size:         %s (%d entries)\n", ui.Bytes(res.Bytes), res.Entries)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "  %s %s: %s\n", p.Yellow("skipped:"), s.Path, s.Reason)
	}
	printRunTail(w, p, runTail{DurationMS: res.DurationMS, Journal: res.Journal, Next: res.Next})
}
