package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/drill"
	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/ui"
)

func newDrillCmd(f *Factory) *cobra.Command {
	opts := drill.Options{}
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Practice the emergency rollback on a throwaway sandbox (no root needed)",
		Long: `Drill builds a sandbox in a temp dir: a tiny HTTP app managed by shell commands
(the 'command' service manager), a good backup, a corrupt newer backup, and a
broken deploy whose health check fails. Then it runs the real emergency
procedure against it and checks the outcome: healthy again, the good version
in place, the failed install kept, live data carried over, the corrupt backup
skipped loudly, the journal intact. It touches nothing outside the sandbox.` +
			exitStatusHelp("0  every check passed", "1  a check failed (each is listed)"),
		Example: `  cfrollback drill
  cfrollback drill --keep --dir /tmp/drill   # look around afterwards
  cfrollback drill --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			opts.Exe = exe
			opts.Events = progressPrinter(f.IO, f.JSON)
			p := f.IO.ErrPalette()
			if !f.JSON {
				opts.Say = func(format string, a ...any) {
					fmt.Fprintf(f.IO.ErrOut, "%s %s\n", p.Bold("drill:"), fmt.Sprintf(format, a...))
				}
			}
			t0 := time.Now()
			rep, err := drill.Run(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("drill: %w", err)
			}
			if f.JSON {
				if err := ui.JSON(f.IO.Out, rep); err != nil {
					return err
				}
			} else {
				if rep.Emergency != nil {
					_ = reportRun(f.IO, false, rep.Emergency, nil)
				}
				printDrill(f.IO, rep, time.Since(t0))
			}
			if !rep.OK {
				return exitError{ExitFailed}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "sandbox directory (default: a new temp dir)")
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "keep the sandbox afterwards")
	return cmd
}

func printDrill(io *ui.IO, rep *drill.Report, took time.Duration) {
	p := io.OutPalette()
	w := io.Out
	fmt.Fprintln(w, "\njournal:")
	for _, r := range rep.Journal {
		fmt.Fprintf(w, "  run %s %s -> %s, downtime %dms\n", r.ID, r.Command, r.Outcome, r.DowntimeMS)
		for _, s := range r.Steps {
			fmt.Fprintf(w, "    %-12s %-7s %6dms\n", s.Name, s.Status, s.DurationMS)
		}
	}
	fmt.Fprintln(w, "\nchecks:")
	for _, c := range rep.Checks {
		mark := p.Green("PASS")
		if !c.OK {
			mark = p.Red("FAIL")
		}
		fmt.Fprintf(w, "  %s %-38s %s\n", mark, c.Name, c.Info)
	}
	verdict := p.Green("DRILL PASSED")
	if !rep.OK {
		verdict = p.Red("DRILL FAILED")
	}
	fmt.Fprintf(w, "\n%s in %s", verdict, ui.Duration(took))
	if rep.Kept {
		fmt.Fprintf(w, " (sandbox kept at %s)", rep.Sandbox)
	}
	fmt.Fprintln(w)
}

func newDrillAppCmd() *cobra.Command {
	var install, addr, pidFile string
	cmd := &cobra.Command{
		Use:    "drill-app",
		Short:  "The tiny HTTP app that drills and tests roll back",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return drillapp.Serve(cmd.Context(), install, addr, pidFile)
		},
	}
	cmd.Flags().StringVar(&install, "install", "", "install dir to serve")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:3000", "listen address")
	cmd.Flags().StringVar(&pidFile, "pidfile", "", "write the pid here while running")
	return cmd
}
