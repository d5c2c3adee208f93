package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/runbook"
)

func newUndoCmd(f *Factory) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "undo RUN_ID",
		Short: "Put back the install a rollback replaced (when the rollback was the mistake)",
		Long: `Undo swaps the failed install kept by run RUN_ID back into place and starts
the service. The install that the rollback had restored is not deleted: it is
kept at <install>-undone-YYYYmmdd-HHMMSS, together with any data the service
wrote after the rollback. Health is reported but does not fail the command:
the install put back is the one that was judged broken.` +
			exitStatusHelp("0  the failed install is back and the service was started",
				"1  failed (the message says which step)",
				"3  nothing changed (unknown run, or its failed dir is gone)",
				"4  failed after the service was stopped",
				"6  another cfrollback run holds the lock"),
		Example: `  cfrollback history            # find the run id
  cfrollback undo 20261127-031502-a1b2c3
  cfrollback undo 20261127-031502-a1b2c3 --dry-run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			m, err := newServiceManager(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			deps, n := runDeps(f.IO, f.JSON, cfg, m) // undo_started before the stop
			res, err := runbook.Undo(cmd.Context(), args[0], runbook.Options{
				Config: cfg, DryRun: dryRun, Args: os.Args[1:], KillAt: os.Getenv("CFROLLBACK_TEST_KILL_AT"),
			}, deps)
			err = reportRun(f.IO, f.JSON, res, err)
			n.Finished(cmd.Context(), res) // undo_complete / undo_failed went out at the outcome (runDeps); this, for a run that recorded none
			return err
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan; change nothing")
	cmd.ValidArgsFunction = completeRunIDs(f, "emergency", "rollback")
	return cmd
}
