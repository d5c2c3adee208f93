package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/config"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type reportOptions struct {
	IO     *ui.IO
	JSON   bool
	Config config.Config
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
	run, check, err := rollbackRunChecked(opts.Config.Journal, opts.RunID)
	var nr noRunError
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
	md := incidentReport(run, opts.Config.Journal, opts.Severity, time.Now())
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

// runFacts are the journal's records of one run, decoded for the report.
type runFacts struct {
	intent struct {
		Args       []string `json:"args"`
		Service    string   `json:"service"`
		InstallDir string   `json:"install_dir"`
		FailedDir  string   `json:"failed_dir"`
		Target     string   `json:"target"` // undo: the run it undid
	}
	outcome struct {
		FailedDir string `json:"failed_dir"`
		KeptDir   string `json:"kept_dir"`
	}
	details  map[string]string // step -> done detail
	verify   *verifyResult
	verified time.Time
	severity string
}

func factsOf(run journal.Run) runFacts {
	var f runFacts
	f.details = map[string]string{}
	for _, rec := range run.Records {
		switch rec.Event {
		case "intent":
			_ = json.Unmarshal(rec.Data, &f.intent)
		case "outcome":
			_ = json.Unmarshal(rec.Data, &f.outcome)
		case "step_done":
			var d struct {
				Detail string `json:"detail"`
			}
			if json.Unmarshal(rec.Data, &d) == nil {
				f.details[rec.Step] = d.Detail
			}
		case "verify":
			var v verifyResult
			if json.Unmarshal(rec.Data, &v) == nil {
				f.verify, f.verified = &v, rec.Time
			}
		case "assess":
			var a struct {
				Severity string `json:"severity"`
			}
			if json.Unmarshal(rec.Data, &a) == nil {
				f.severity = a.Severity
			}
		}
	}
	return f
}

// incidentReport is the seed's template, filled where the journal knows.
func incidentReport(run journal.Run, journalPath, severity string, now time.Time) string {
	f := factsOf(run)
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	local := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }

	w("# Rollback Incident Report\n\n")
	w("**Date**: %s\n", local(run.Started))
	switch {
	case f.severity != "":
		w("**Severity**: %s (from `cfrollback assess --act`)\n", f.severity)
	case severity != "":
		w("**Severity**: %s (given with --severity)\n", severity)
	default:
		w("**Severity**: [P0/P1/P2/P3]\n")
	}
	if run.Ended.IsZero() {
		w("**Duration**: %s - (no outcome recorded: the run was interrupted)\n\n", local(run.Started))
	} else {
		w("**Duration**: %s - %s (%s)\n\n", local(run.Started), local(run.Ended), ui.Duration(run.Ended.Sub(run.Started)))
	}

	w("## Problem Description\n")
	w("- **Issue**: [Brief description]\n")
	if run.DowntimeMS > 0 {
		w("- **Impact**: service down for %s during the rollback (stopped -> healthy); [user impact before it]\n",
			ui.Duration(time.Duration(run.DowntimeMS)*time.Millisecond))
	} else {
		w("- **Impact**: [User/system impact]\n")
	}
	w("- **Root Cause**: [If known]\n\n")

	w("## Rollback Actions Taken\n")
	cmdline := "cfrollback " + run.Command
	if len(f.intent.Args) > 0 {
		cmdline = "cfrollback " + strings.Join(f.intent.Args, " ")
	}
	w("- **Trigger**: `%s` run by %s on %s; [what made them run it]\n", cmdline, orBlank(run.User, "[user]"), orBlank(run.Host, "[host]"))
	switch run.Command {
	case "emergency":
		w("- **Method**: Emergency (`cfrollback emergency`: newest good backup, atomic swap)\n")
	case "rollback":
		w("- **Method**: Scheduled (`cfrollback rollback`)\n")
	case "undo":
		w("- **Method**: Undo of run %s (`cfrollback undo`)\n", f.intent.Target)
	case runbook.DBRestoreCommand, runbook.DBRepairCommand:
		w("- **Method**: Database %s (`cfrollback %s`) of %s\n", strings.TrimPrefix(run.Command, "database "), run.Command, orBlank(f.intent.Target, "the corrupt databases"))
	default:
		w("- **Method**: %s\n", run.Command)
	}
	from := appVersionIn(orBlank(f.outcome.FailedDir, f.intent.FailedDir))
	to := manifestVersion(run.Backup)
	w("- **Version**: %s → %s (backup %s)\n", orBlank(from, "[Rolled back from]"), orBlank(to, "[Rolled back to]"), orBlank(run.Backup, "[backup]"))
	failed := orBlank(f.outcome.FailedDir, f.intent.FailedDir)
	switch {
	case run.Outcome == "ok" && failed != "":
		w("- **Data Loss**: [Yes/No] - preserved paths were carried over from the failed install (%s); the failed install is kept unchanged at `%s` for investigation\n",
			orBlank(f.details["carry_over"], "carry_over"), failed)
	case failed != "":
		w("- **Data Loss**: [Yes/No - details]; the failed install is kept at `%s`\n", failed)
	default:
		w("- **Data Loss**: [Yes/No - details]\n")
	}
	w("- **Outcome**: %s", orBlank(run.Outcome, "none recorded (interrupted)"))
	if run.Error != "" {
		w(" - %s", run.Error)
	}
	if run.Recovered {
		w(" (completed or undone by a later run)")
	}
	w("\n- **Run**: %s in %s\n\n", run.ID, journalPath)
	if len(run.Steps) > 0 {
		w("| step | status | duration | detail |\n| --- | --- | --- | --- |\n")
		for _, s := range run.Steps {
			detail := s.Error
			if detail == "" {
				detail = f.details[s.Name]
			}
			w("| %s | %s | %s | %s |\n", s.Name, s.Status, ui.Duration(time.Duration(s.DurationMS)*time.Millisecond), strings.ReplaceAll(detail, "|", `\|`))
		}
		w("\n")
	}

	w("## Verification Results\n")
	if v := f.verify; v != nil {
		verdict := "Pass"
		if !v.OK {
			verdict = "Fail"
		}
		w("- **Service Health**: %s (`cfrollback verify` at %s: %d failed, %d warnings)\n", verdict, local(f.verified), v.Failures, v.Warnings)
		perf := "[Metrics]"
		for _, s := range v.Steps {
			if s.Name == "response time" {
				perf = fmt.Sprintf("%s: %s", s.Status, s.Detail)
			}
		}
		w("- **Performance**: %s\n", perf)
		w("- **Functionality**: [Test results]\n\n")
		for _, s := range v.Steps {
			w("  %d. %s %s: %s\n", s.Step, s.Status, s.Name, s.Detail)
		}
		w("\n")
	} else {
		w("- **Service Health**: [Pass/Fail] (no `cfrollback verify` recorded for this run)\n")
		w("- **Performance**: [Metrics]\n- **Functionality**: [Test results]\n\n")
	}

	w("## Follow-up Actions\n")
	w("- [ ] Root cause analysis\n- [ ] Fix development/testing\n- [ ] Update deployment procedures\n- [ ] Team communication\n\n")
	w("**Reporter**: [Name]\n**Reviewer**: [Name]\n\n")
	w("_Generated by cfrollback %s on %s from the journal._\n", Version, local(now))
	return b.String()
}

func orBlank(s, blank string) string {
	if s == "" {
		return blank
	}
	return s
}

// appVersionIn reads "version" from dir/package.json; "" when unknown.
func appVersionIn(dir string) string {
	if dir == "" {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return ""
	}
	var p struct {
		Version string `json:"version"`
	}
	_ = json.Unmarshal(b, &p)
	return p.Version
}

// manifestVersion is the app version recorded in a backup's manifest.
func manifestVersion(archive string) string {
	if archive == "" {
		return ""
	}
	b, err := fsutil.ReadFile(backup.ManifestPath(archive), fsutil.MaxLargeFile)
	if err != nil {
		return ""
	}
	var m struct {
		AppVersion string `json:"app_version"`
	}
	_ = json.Unmarshal(b, &m)
	return m.AppVersion
}
