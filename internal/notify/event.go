package notify

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// The events a webhook hears about.
const (
	// RollbackStarted: emergency, rollback --to or assess --act chose a
	// backup and is about to stop the service.
	RollbackStarted = "rollback_started"
	// RollbackComplete: a rollback (any of the above, or rollback
	// --to-version) ended with the service healthy.
	RollbackComplete = "rollback_complete"
	// RollbackFailed: a rollback ended any other way; Outcome says how
	// (preflight_failed, failed, unhealthy, interrupted).
	RollbackFailed = "rollback_failed"
	// UndoStarted: undo is about to stop the service to put a failed install back.
	UndoStarted = "undo_started"
	// UndoComplete: undo put the failed install back and started the service.
	UndoComplete = "undo_complete"
	// UndoFailed: undo ended any other way; Outcome says how.
	UndoFailed = "undo_failed"
	// ChangeStarted: a procedure that changes state without a rollback (config set /
	// restore / reset, agents import / reset, backup mark / prune, baseline record,
	// database restore / repair) journaled its intent and begins; Command names it.
	// One generic set of events, with the command in the payload, instead of an event
	// per command: a receiver filters on command, and a new procedure needs no new name.
	ChangeStarted = "change_started"
	// ChangeComplete: such a change ended as asked (outcome ok).
	ChangeComplete = "change_complete"
	// ChangeFailed: such a change ended any other way; Outcome and Message say how and
	// what had been changed by then.
	ChangeFailed = "change_failed"
	// Guard*: cfrollback guard's decisions (internal/guard), with the evidence
	// in Message: it rolled back, would have (dry run or paused), hit
	// guard.max_rollbacks; and guard pause / guard resume.
	GuardActed          = "guard_acted"
	GuardWouldHaveActed = "guard_would_have_acted"
	GuardLimitReached   = "guard_limit_reached"
	GuardPaused         = "guard_paused"
	GuardResumed        = "guard_resumed"
	// Test is 'cfrollback notify --test' and 'cfrollback test webhooks'.
	Test = "test"
)

// Kinds of webhook (notify.webhooks[].kind); "" means Generic.
const (
	Generic    = "generic"
	Slack      = "slack"
	StatusPage = "statuspage"
)

// Event is what every webhook hears about; the generic kind gets it as JSON.
type Event struct {
	Event      string    `json:"event"`
	Service    string    `json:"service"`
	Host       string    `json:"host"`
	RunID      string    `json:"run_id,omitempty"`
	Command    string    `json:"command,omitempty"`
	Outcome    string    `json:"outcome,omitempty"`
	Backup     string    `json:"backup,omitempty"`
	FailedDir  string    `json:"failed_dir,omitempty"`
	DowntimeMS int64     `json:"downtime_ms,omitempty"`
	Message    string    `json:"message"`
	Time       time.Time `json:"time"`
}

// Payload renders ev as the body a kind of webhook expects: generic gets the
// Event itself, slack {"text": message}, statuspage an incident whose status is
// resolved after rollback_complete and change_complete, identified when a rollback,
// undo or change has started and investigating otherwise (an undo puts back an install
// judged broken: the incident is not over). A change's incident names its command.
func Payload(kind string, ev Event) ([]byte, error) {
	switch kind {
	case Generic, "":
		return json.Marshal(ev)
	case Slack:
		return json.Marshal(map[string]string{"text": ev.Message})
	case StatusPage:
		status := "investigating"
		switch ev.Event {
		case RollbackComplete, ChangeComplete, DeployComplete, DeployRolledBack:
			status = "resolved"
		case RollbackStarted, UndoStarted, ChangeStarted:
			status = "identified"
		}
		name := ev.Service + ": " + strings.ReplaceAll(ev.Event, "_", " ")
		if ev.Command != "" {
			name += " (" + ev.Command + ")"
		}
		return json.Marshal(map[string]any{"incident": map[string]string{"name": name, "status": status, "body": ev.Message}})
	}
	return nil, fmt.Errorf("unknown webhook kind %q", kind)
}

func hostname() string {
	host, _ := os.Hostname()
	return host
}

// FromRun describes a finished run: rollback_complete or rollback_failed for
// emergency, rollback and rollback --to-version, undo_complete or undo_failed
// for undo.
func FromRun(res *runbook.Result) Event {
	host := hostname()
	ev := Event{Event: RollbackComplete, Service: res.Service, Host: host, RunID: res.RunID, Outcome: res.Outcome,
		FailedDir: res.FailedDir, DowntimeMS: res.DowntimeMS, Time: time.Now().UTC()}
	if res.Backup != nil {
		ev.Backup = res.Backup.Path
	}
	downtime := ui.Duration(time.Duration(res.DowntimeMS) * time.Millisecond)
	switch {
	case res.Command == "undo" && res.Outcome == "ok":
		ev.Event = UndoComplete
		ev.Message = fmt.Sprintf("%s on %s: undo put the failed install back and started the service (run %s, downtime %s); the install the rollback had restored is kept at %s",
			res.Service, host, res.RunID, downtime, res.KeptDir)
	case res.Command == "undo":
		ev.Event = UndoFailed
		ev.Message = fmt.Sprintf("%s on %s: undo %s (run %s): %s; see 'cfrollback history'", res.Service, host, res.Outcome, res.RunID, res.Error)
	case res.Outcome == "ok":
		ev.Message = fmt.Sprintf("%s on %s rolled back and healthy (run %s, downtime %s)", res.Service, host, res.RunID, downtime)
	default:
		ev.Event = RollbackFailed
		ev.Message = fmt.Sprintf("%s on %s: rollback %s (run %s): %s; see 'cfrollback history'", res.Service, host, res.Outcome, res.RunID, res.Error)
	}
	return ev
}

// Started describes a rollback (or undo) that passed its preflight and is about to
// stop the service: rollback_started, or undo_started for undo.
func Started(res *runbook.Result) Event {
	host := hostname()
	ev := Event{Event: RollbackStarted, Service: res.Service, Host: host, RunID: res.RunID, FailedDir: res.FailedDir, Time: time.Now().UTC()}
	to := "the chosen backup"
	if res.Backup != nil {
		ev.Backup, to = res.Backup.Path, res.Backup.Name
	}
	switch res.Command {
	case "undo":
		ev.Event = UndoStarted
		ev.Message = fmt.Sprintf("%s on %s: undo started (run %s): the failed install %s is put back; the service stops now", res.Service, host, res.RunID, res.FailedDir)
		return ev
	case runbook.VersionCommand:
		to = "another claude-flow version (rollback --to-version)"
	}
	ev.Message = fmt.Sprintf("%s on %s: rollback to %s started (run %s); the service stops now", res.Service, host, to, res.RunID)
	return ev
}

// FromNotice describes a change (runbook.RunChange, the database procedures): at its
// start (n.Outcome "") change_started, at its end change_complete (ok) or change_failed.
func FromNotice(n runbook.Notice) Event {
	host := hostname()
	ev := Event{Event: ChangeStarted, Command: n.Command, Service: n.Service, Host: host, RunID: n.RunID, Outcome: n.Outcome,
		Backup: n.Backup, DowntimeMS: n.DowntimeMS, Time: time.Now().UTC()}
	switch n.Outcome {
	case "":
		ev.Message = fmt.Sprintf("%s on %s: %s started (run %s): %s", n.Service, host, n.Command, n.RunID, n.Summary)
	case "ok":
		ev.Event = ChangeComplete
		ev.Message = fmt.Sprintf("%s on %s: %s done (run %s): %s", n.Service, host, n.Command, n.RunID, n.Summary)
	default:
		ev.Event = ChangeFailed
		ev.Message = fmt.Sprintf("%s on %s: %s %s (run %s): %s: %s; see 'cfrollback history'", n.Service, host, n.Command, n.Outcome, n.RunID, n.Summary, n.Error)
	}
	return ev
}

// ByHand is the event 'cfrollback notify --event NAME' sends: about run when
// it is set (a run from the journal), else just the event's name. A message
// that is not empty replaces the summary.
func ByHand(name, service, message string, run *journal.Run) Event {
	host := hostname()
	ev := Event{Event: name, Service: service, Host: host, Time: time.Now().UTC(), Message: message}
	if run != nil {
		ev.RunID, ev.Outcome, ev.Backup, ev.DowntimeMS = run.ID, run.Outcome, run.Backup, run.DowntimeMS
		if ev.Message == "" {
			ev.Message = fmt.Sprintf("%s on %s: run %s %s (downtime %s)", service, host, run.ID,
				orBlank(run.Outcome, "unfinished"), ui.Duration(time.Duration(run.DowntimeMS)*time.Millisecond))
		}
	} else if ev.Message == "" {
		ev.Message = fmt.Sprintf("%s on %s: %s", service, host, strings.ReplaceAll(name, "_", " "))
	}
	return ev
}

// TestEvent is the event of 'cfrollback notify --test'.
func TestEvent(service, message string) Event {
	host := hostname()
	return Event{Event: Test, Service: service, Host: host, Time: time.Now().UTC(),
		Message: orBlank(message, "a test notification from cfrollback on "+host)}
}

func orBlank(s, blank string) string {
	if s == "" {
		return blank
	}
	return s
}
