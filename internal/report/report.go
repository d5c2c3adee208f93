// Package report renders the incident report of one run from its journal records: the
// seed's template, filled where the journal knows (what ran, the backup, the downtime, the
// verification and assessment recorded against it) and left for a person where it does not.
package report

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
	"github.com/cfrollback/cfrollback/internal/verify"
)

// runFacts are the journal's records of one run, decoded for the report.
type runFacts struct {
	intent struct {
		Args       []string `json:"args"`
		Service    string   `json:"service"`
		InstallDir string   `json:"install_dir"`
		FailedDir  string   `json:"failed_dir"`
		Target     string   `json:"target"` // undo: the run it undid
		// Summary is a change's (runbook.RunChange and the database procedures): what it changes.
		Summary string `json:"summary"`
	}
	outcome struct {
		FailedDir string `json:"failed_dir"`
		KeptDir   string `json:"kept_dir"`
		// Changed is what a change had changed when it ended, in words.
		Changed []string `json:"changed"`
	}
	details  map[string]string // step -> done detail
	verify   *verify.Result
	verified time.Time
	severity string
}

func factsOf(run journal.Run) runFacts {
	var f runFacts
	f.details = map[string]string{}
	for _, rec := range run.Records {
		switch rec.Event {
		case journal.EventIntent:
			_ = json.Unmarshal(rec.Data, &f.intent)
		case journal.EventOutcome:
			_ = json.Unmarshal(rec.Data, &f.outcome)
		case journal.EventStepDone:
			var d struct {
				Detail string `json:"detail"`
			}
			if json.Unmarshal(rec.Data, &d) == nil {
				f.details[rec.Step] = d.Detail
			}
		case journal.EventVerify:
			var v verify.Result
			if json.Unmarshal(rec.Data, &v) == nil {
				f.verify, f.verified = &v, rec.Time
			}
		case journal.EventAssess:
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

// Incident is the seed's template, filled where the journal knows.
func Incident(run journal.Run, journalPath, severity, version string, now time.Time) string {
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
		w("- **Method**: %s (`cfrollback %s`)\n", run.Command, run.Command)
	}
	if f.intent.Summary != "" {
		w("- **Change**: %s\n", f.intent.Summary)
	}
	if len(f.outcome.Changed) > 0 {
		w("- **Changed**: %s\n", strings.Join(f.outcome.Changed, "; "))
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
	w("_Generated by cfrollback %s on %s from the journal._\n", version, local(now))
	return b.String()
}

func orBlank(s, blank string) string {
	if s == "" {
		return blank
	}
	return s
}

// appVersionIn is the app version of the install in dir (appconfig.AppVersion, as backups
// and version rollbacks read it: node_modules/claude-flow/package.json of an npm host
// install first; never blocking on a FIFO named package.json); "" when unknown.
func appVersionIn(dir string) string {
	if dir == "" {
		return ""
	}
	return appconfig.AppVersion(dir)
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
