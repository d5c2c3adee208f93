package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/report"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type reportOptions struct {
	IO     *ui.IO
	JSON   bool
	Config settings.Config
	RunID  string
	Output string
	// Severity is the person's answer when no assess recorded one.
	Severity string
}

type reportResult struct {
	RunID    string `json:"run_id"`
	Output   string `json:"output,omitempty"`
	Markdown string `json:"markdown"`
}

func newReportCmd(f *Factory) *cobra.Command {
	opts := &reportOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "report [RUN_ID]",
		Short: "The incident report of a rollback as Markdown, filled from the journal",
		Long: `Print the seed's rollback incident report for RUN_ID (default: the last
emergency, rollback or undo run), filled from the journal: date, duration,
severity (when 'assess --act' recorded it), trigger (the command line, user and
host), method, the backup rolled back to, where the failed install is kept,
downtime, every step, and the last 'cfrollback verify' of the run. What only a
person knows (issue, impact, root cause, reporter) is left as headed blanks.

--output writes the file (temp file, fsync, rename) instead of printing it.` +
			exitStatusHelp("0  written", "1  the journal cannot be read or the file written", "2  bad usage; unknown RUN_ID or no run in the journal"),
		Example: `  cfrollback report > incident.md
  cfrollback report 20250104T140000Z-1a2b --output /root/incident-0104.md`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				opts.RunID = args[0]
			}
			opts.JSON, opts.Config = f.JSON, cfg
			return runReport(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "write the report to this file")
	cmd.Flags().StringVar(&opts.Severity, "severity", "", "P0, P1, P2 or P3, when no 'assess --act' recorded one for the run")
	cmd.ValidArgsFunction = completeRunIDs(f)
	return cmd
}

func runReport(opts *reportOptions) error {
	run, check, err := journal.FindRun(opts.Config.Journal, opts.RunID)
	var nr journal.NoRunError
	if errors.As(err, &nr) {
		return usageError{err}
	}
	if err != nil {
		return err // the journal cannot be read: exit 1
	}
	switch opts.Severity {
	case "", "P0", "P1", "P2", "P3":
	default:
		return usageErrorf("--severity %q: give P0, P1, P2 or P3", opts.Severity)
	}
	md := report.Incident(run, opts.Config.Journal, opts.Severity, Version, time.Now())
	if check.Warning != "" {
		warnPrinter(opts.IO)(check.Warning)
		label := "WARNING"
		if check.Unverified {
			label = "UNVERIFIED"
		}
		md = "> **" + label + "**: " + check.Warning + ".\n\n" + md
	}
	res := reportResult{RunID: run.ID, Markdown: md}
	if opts.Output != "" {
		if err := writeReport(opts.Output, []byte(md)); err != nil {
			return err
		}
		res.Output = opts.Output
	}
	switch {
	case opts.JSON:
		return ui.JSON(opts.IO.Out, res)
	case opts.Output != "":
		fmt.Fprintf(opts.IO.Out, "incident report of run %s written to %s\n", run.ID, opts.Output)
		return nil
	}
	_, err = fmt.Fprint(opts.IO.Out, md)
	return err
}

// writeReport writes the file durably, so a report is never half written.
func writeReport(path string, b []byte) error {
	if err := fsutil.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
