package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/guard"
	"github.com/cfrollback/cfrollback/internal/notify"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// newGuardPauseCmd is `guard pause` (pause true) or `guard resume`.
func newGuardPauseCmd(f *Factory, pause bool) *cobra.Command {
	req := guard.PauseRequest{Pause: pause}
	cmd := &cobra.Command{
		Use:   "resume",
		Short: "Let guard roll back again after 'guard pause'",
		Long: `Remove guard's pause: from its next evaluation the running guard rolls back
again when its policy says so. The change is journaled and sent to
notify.webhooks (guard_resumed).` + exitStatusHelp("0  resumed (or was not paused)", "1  the pause file could not be read or written", "2  bad usage or invalid settings"),
		Example: "  cfrollback guard resume\n  cfrollback guard resume --dry-run",
		Args:    cobra.NoArgs,
	}
	if pause {
		cmd.Use, cmd.Short = "pause", "Stop guard from rolling back for planned work (it keeps watching and notifying)"
		cmd.Long = `Pause guard: the running guard keeps sampling and judging, and where it would
roll back it notifies guard_would_have_acted instead, until --for has passed or
'cfrollback guard resume'. The pause is a file in state_dir
(guard-pause.json) that the guard reads at every evaluation; the change is
journaled and sent to notify.webhooks (guard_paused).` + exitStatusHelp("0  paused", "1  the pause file could not be read or written", "2  bad usage or invalid settings")
		cmd.Example = "  cfrollback guard pause --for 2h --reason 'database migration'\n  cfrollback guard pause            # until 'cfrollback guard resume'"
		durationVar(cmd.Flags(), &req.For, "for", 0, "pause this long (0: until 'guard resume')")
		cmd.Flags().StringVar(&req.Reason, "reason", "", "why, for the journal and the notification")
	}
	cmd.Flags().BoolVar(&req.DryRun, "dry-run", false, "say what would change; write, journal and send nothing")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if req.For < 0 {
			return usageErrorf("--for %s: give a positive duration such as 2h, or 0 for until resumed", req.For)
		}
		cfg, err := f.loadConfig()
		if err != nil {
			return err
		}
		req.StateDir, req.Service, req.Now, req.By = cfg.StateDir, cfg.Service.Unit, time.Now(), currentUser()
		res, err := guard.SetPause(cmd.Context(), req, guard.PauseDeps{
			Journal: guardJournal(cfg),
			Notify:  func(ctx context.Context, ev notify.Event) { sendEvent(ctx, f.IO, cfg, ev) },
		})
		if err != nil {
			return err
		}
		if f.JSON {
			return ui.JSON(f.IO.Out, res)
		}
		prefix := ""
		if req.DryRun {
			prefix = "dry run, nothing was changed: "
		}
		fmt.Fprintln(f.IO.Out, prefix+res.Message)
		return nil
	}
	return cmd
}

func newGuardStatusCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Whether guard runs, is paused, what it decided last and its rollbacks in the window",
		Long: `Read guard's files in state_dir (changes nothing): whether a guard holds
guard.lock (probed without disturbing it, so a guard in another pid namespace,
such as a sandboxed unit, counts; the pid it recorded is shown as information),
the pause, the last evaluation's decision and the rollbacks it
started within guard.window.` + exitStatusHelp("0  printed", "1  a state file could not be read", "2  bad usage or invalid settings"),
		Example: "  cfrollback guard status\n  cfrollback guard status --json | jq .rollbacks_in_window",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			now := time.Now()
			st, err := guard.ReadStatus(cfg.StateDir, guard.PolicyFrom(cfg.Guard), now)
			if err != nil {
				return err
			}
			if f.JSON {
				return ui.JSON(f.IO.Out, st)
			}
			printGuardStatus(f.IO, st, now)
			return nil
		},
	}
}

func printGuardStatus(io *ui.IO, st guard.Status, now time.Time) {
	w, p := io.Out, io.OutPalette()
	switch {
	case st.Running && st.Holder != nil:
		// the pid is of the guard's own pid namespace (the unit may have its own)
		fmt.Fprintf(w, "guard:      %s (pid %d on %s, since %s)\n", p.Green("running"), st.Holder.PID, st.Holder.Host, ui.Ago(st.Holder.Since, now))
	case st.Running:
		fmt.Fprintf(w, "guard:      %s (it holds guard.lock; no holder recorded)\n", p.Green("running"))
	default:
		fmt.Fprintf(w, "guard:      %s ('systemctl start cfrollback-guard' or 'cfrollback guard')\n", p.Yellow("not running"))
	}
	if st.Note != "" {
		fmt.Fprintf(w, "            %s\n", st.Note)
	}
	if st.Paused {
		fmt.Fprintf(w, "paused:     %s\n", p.Yellow(st.Pause.String()))
	} else {
		fmt.Fprintln(w, "paused:     no")
	}
	pol := st.Policy
	fmt.Fprintf(w, "policy:     act on %s after %d evaluations every %s; at most %d rollbacks per %s; cooldown %s, grace %s\n",
		joinSeverities(pol), pol.Consecutive, pol.Interval, pol.MaxRollbacks, pol.Window, pol.Cooldown, pol.Grace)
	if l := st.State.Last; l != nil {
		fmt.Fprintf(w, "last:       %s %s, severity %s %s\n", l.Verdict, ui.Ago(l.Time, now), l.Severity, strings.Join(st.State.Met, ","))
		if l.Reason != "" {
			fmt.Fprintf(w, "            %s\n", l.Reason)
		}
	}
	fmt.Fprintf(w, "rollbacks:  %d in the window\n", st.RollbacksInWindow)
	for _, a := range st.State.Actions {
		fmt.Fprintf(w, "  %s  %s  run %s  %s\n", a.Started.Local().Format("2006-01-02 15:04:05"), a.Severity, orDashS(a.RunID), orDashS(a.Outcome))
	}
}

func joinSeverities(p guard.PolicyJSON) string {
	s := make([]string, len(p.Act))
	for i, a := range p.Act {
		s[i] = string(a)
	}
	return strings.Join(s, ",")
}

func orDashS(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
