package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type historyRow struct {
	RunID      string    `json:"run_id"`
	Command    string    `json:"command"`
	User       string    `json:"user"`
	Host       string    `json:"host"`
	Started    time.Time `json:"started"`
	Ended      time.Time `json:"ended,omitzero"`
	Outcome    string    `json:"outcome"`
	Backup     string    `json:"backup,omitempty"`
	DowntimeMS int64     `json:"downtime_ms"`
	Error      string    `json:"error,omitempty"`
	// Verified is false when the journal's hash chain does not vouch for the run's records.
	Verified bool `json:"verified"`
}

func newHistoryCmd(f *Factory) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List past runs from the journal: when, who, backup, outcome, downtime",
		Long: `List the runs recorded in the journal (setting journal), newest first.
A run without an outcome was interrupted; the next 'cfrollback emergency'
completes or undoes it (a database restore or repair: the next database restore or
check --repair-if-needed closes it).` + exitStatusHelp("0  listed (also when the journal is empty)", "1  the journal cannot be read"),
		Example: `  cfrollback history
  cfrollback history --json | jq '.[0].downtime_ms'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			jc, err := journal.ReadChecked(cfg.Journal)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("read journal %s: %w", cfg.Journal, err)
			}
			if w := jc.Warning(cfg.Journal); w != "" {
				warnPrinter(f.IO)(w)
			}
			runs := journal.Runs(jc.Records)
			rows := []historyRow{}
			for i := len(runs) - 1; i >= 0 && (limit <= 0 || len(rows) < limit); i-- {
				r := runs[i]
				outcome := r.Outcome
				if r.Unfinished() {
					outcome = "INTERRUPTED"
				}
				rows = append(rows, historyRow{RunID: r.ID, Command: r.Command, User: r.User, Host: r.Host, Started: r.Started,
					Ended: r.Ended, Outcome: outcome, Backup: r.Backup, DowntimeMS: r.DowntimeMS, Error: r.Error, Verified: jc.Trusted(r)})
			}
			return printHistory(f.IO, f.JSON, rows)
		},
	}
	cmd.Flags().IntVarP(&limit, "limit", "n", 20, "show at most this many runs (0 = all)")
	return cmd
}

func printHistory(io *ui.IO, asJSON bool, rows []historyRow) error {
	if asJSON {
		return ui.JSON(io.Out, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(io.Out, "no runs in the journal yet")
		return nil
	}
	now := time.Now()
	tb := ui.NewTable("RUN", "WHEN", "COMMAND", "USER", "OUTCOME", "DOWNTIME", "BACKUP")
	for _, r := range rows {
		down := "-"
		if r.DowntimeMS > 0 {
			down = ui.Duration(time.Duration(r.DowntimeMS) * time.Millisecond)
		}
		outcome := r.Outcome
		if !r.Verified {
			outcome += " (UNVERIFIED)"
		}
		tb.Row(r.RunID, r.Started.Local().Format("2006-01-02 15:04:05")+" ("+ui.Ago(r.Started, now)+")",
			r.Command, r.User, outcome, down, r.Backup)
	}
	return tb.Render(io.Out)
}

func newJournalCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "journal",
		Short: "Inspect the journal of runs",
	}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check that the journal was not edited, reordered or truncated",
		Long: `Every journal record carries the sha256 of the record before it, and a
sidecar <journal>.head holds the last sequence number and hash. Verify walks the
chain and reports any edited, deleted, reordered, torn or truncated record.` +
			exitStatusHelp("0  the journal is intact", "1  problems found (each is listed) or the journal cannot be read"),
		Example: `  cfrollback journal verify
  cfrollback journal verify --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			problems, err := journal.Verify(cfg.Journal)
			if err != nil {
				return fmt.Errorf("verify journal %s: %w", cfg.Journal, err)
			}
			if f.JSON {
				list := make([]map[string]any, 0, len(problems))
				for _, p := range problems {
					list = append(list, map[string]any{"line": p.Line, "seq": p.Seq, "reason": p.Reason})
				}
				if err := ui.JSON(f.IO.Out, map[string]any{"journal": cfg.Journal, "ok": len(problems) == 0, "problems": list}); err != nil {
					return err
				}
			} else if len(problems) == 0 {
				fmt.Fprintf(f.IO.Out, "journal %s: intact\n", cfg.Journal)
			} else {
				fmt.Fprintf(f.IO.Out, "journal %s: %d problem(s)\n", cfg.Journal, len(problems))
				for _, p := range problems {
					fmt.Fprintf(f.IO.Out, "  %s\n", p)
				}
			}
			if len(problems) > 0 {
				return exitError{ExitFailed}
			}
			return nil
		},
	}
	cmd.AddCommand(verify)
	return cmd
}

func newVersionCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.JSON {
				return ui.JSON(f.IO.Out, map[string]string{"version": Version, "commit": Commit, "date": Date})
			}
			fmt.Fprintf(f.IO.Out, "cfrollback %s (commit %s, built %s)\n", Version, Commit, Date)
			return nil
		},
	}
}
