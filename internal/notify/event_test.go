package notify

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/runbook"
)

// The payload of each kind keeps its shape: generic is the Event with these
// keys, slack {"text"}, statuspage {"incident": {name, status, body}}.
func TestPayloads(t *testing.T) {
	ev := Event{Event: RollbackComplete, Service: "claude-flow", RunID: "r1", Message: "restored"}
	b, err := Payload(Generic, ev)
	var generic map[string]any
	if err != nil || json.Unmarshal(b, &generic) != nil {
		t.Fatalf("%s %v", b, err)
	}
	if keys := slices.Sorted(maps.Keys(generic)); strings.Join(keys, ",") != "event,host,message,run_id,service,time" {
		t.Errorf("generic keys %v", keys)
	}
	if b, _ := Payload("", ev); !strings.Contains(string(b), `"event":"rollback_complete"`) {
		t.Errorf("no kind: %s", b)
	}
	if b, _ := Payload(Slack, ev); string(b) != `{"text":"restored"}` {
		t.Errorf("slack: %s", b)
	}
	for name, status := range map[string]string{RollbackComplete: "resolved", RollbackStarted: "identified", RollbackFailed: "investigating",
		UndoStarted: "identified", UndoComplete: "investigating", Test: "investigating"} {
		ev.Event = name
		b, _ := Payload(StatusPage, ev)
		var sp struct{ Incident map[string]string }
		if err := json.Unmarshal(b, &sp); err != nil || sp.Incident["status"] != status || sp.Incident["body"] != "restored" ||
			sp.Incident["name"] != "claude-flow: "+strings.ReplaceAll(name, "_", " ") {
			t.Errorf("statuspage %s: %s", name, b)
		}
	}
	if _, err := Payload("teams", ev); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestFromRun(t *testing.T) {
	bk := &backup.Candidate{Path: "/b/backup-20250101-000000.tar.gz", Name: "backup-20250101-000000.tar.gz"}
	for _, c := range []struct {
		res        runbook.Result
		event, msg string
	}{
		{runbook.Result{Command: "emergency", Outcome: "ok", DowntimeMS: 1500}, RollbackComplete, "rolled back and healthy (run r1, downtime 1.5s)"},
		{runbook.Result{Command: "rollback", Outcome: "unhealthy", Error: "health failed"}, RollbackFailed, "rollback unhealthy (run r1): health failed; see 'cfrollback history'"},
		{runbook.Result{Command: "emergency", Outcome: "preflight_failed", Error: "no backup"}, RollbackFailed, "rollback preflight_failed"},
		{runbook.Result{Command: "undo", Outcome: "ok", KeptDir: "/opt/app-undone-x"}, UndoComplete, "undo put the failed install back and started the service (run r1, downtime 0ms); the install the rollback had restored is kept at /opt/app-undone-x"},
		{runbook.Result{Command: "undo", Outcome: "failed", Error: "start: boom"}, UndoFailed, "undo failed (run r1): start: boom"},
	} {
		c.res.RunID, c.res.Service, c.res.Backup = "r1", "svc", bk
		ev := FromRun(&c.res)
		if ev.Event != c.event || !strings.Contains(ev.Message, c.msg) || ev.Outcome != c.res.Outcome || ev.Backup != bk.Path || ev.RunID != "r1" {
			t.Errorf("%s %s: %+v", c.res.Command, c.res.Outcome, ev)
		}
	}
	ev := Started(&runbook.Result{RunID: "r2", Service: "svc", Backup: bk, FailedDir: "/opt/app-failed-x"})
	if ev.Event != RollbackStarted || ev.Outcome != "" || ev.FailedDir != "/opt/app-failed-x" ||
		!strings.Contains(ev.Message, "rollback to backup-20250101-000000.tar.gz started (run r2); the service stops now") {
		t.Errorf("started: %+v", ev)
	}
}

// A change's events carry its command, and every kind of webhook renders them: generic
// with "command", slack its message, statuspage an incident named after the command.
func TestChangePayloads(t *testing.T) {
	n := runbook.Notice{RunID: "r4", Command: "config set", Service: "svc", Summary: "set claude.model in /opt/app/config.json"}
	for _, c := range []struct {
		outcome, err, event, status, msg string
	}{
		{"", "", ChangeStarted, "identified", "svc on " + hostname() + ": config set started (run r4): set claude.model in /opt/app/config.json"},
		{"ok", "", ChangeComplete, "resolved", "config set done (run r4): set claude.model"},
		{"failed", "journal: disk full", ChangeFailed, "investigating", "config set failed (run r4): set claude.model in /opt/app/config.json: journal: disk full; see 'cfrollback history'"},
	} {
		n.Outcome, n.Error = c.outcome, c.err
		ev := FromNotice(n)
		if ev.Event != c.event || ev.Command != "config set" || ev.RunID != "r4" || ev.Outcome != c.outcome || !strings.Contains(ev.Message, c.msg) {
			t.Errorf("%q: %+v", c.outcome, ev)
		}
		b, err := Payload(Generic, ev)
		var generic map[string]any
		if err != nil || json.Unmarshal(b, &generic) != nil || generic["command"] != "config set" || generic["event"] != c.event {
			t.Errorf("generic %s %v", b, err)
		}
		if b, _ := Payload(Slack, ev); !strings.Contains(string(b), `"text":"svc on `) || !strings.Contains(string(b), "config set") {
			t.Errorf("slack %s", b)
		}
		b, _ = Payload(StatusPage, ev)
		var sp struct{ Incident map[string]string }
		if err := json.Unmarshal(b, &sp); err != nil || sp.Incident["status"] != c.status ||
			sp.Incident["name"] != "svc: "+strings.ReplaceAll(c.event, "_", " ")+" (config set)" || sp.Incident["body"] != ev.Message {
			t.Errorf("statuspage %s", b)
		}
	}
	ev := Started(&runbook.Result{RunID: "r5", Service: "svc", Command: "undo", FailedDir: "/opt/app-failed-x"})
	if ev.Event != UndoStarted || !strings.Contains(ev.Message, "undo started (run r5): the failed install /opt/app-failed-x is put back; the service stops now") {
		t.Errorf("undo started: %+v", ev)
	}
}

func TestByHand(t *testing.T) {
	ev := ByHand(RollbackComplete, "svc", "", &journal.Run{ID: "r3", Outcome: "ok", DowntimeMS: 2000, Backup: "/b/x.tar.gz"})
	if ev.RunID != "r3" || ev.Backup != "/b/x.tar.gz" || !strings.Contains(ev.Message, "run r3 ok (downtime 2.0s)") {
		t.Errorf("%+v", ev)
	}
	if ev := ByHand(RollbackFailed, "svc", "", nil); !strings.HasSuffix(ev.Message, ": rollback failed") || ev.RunID != "" {
		t.Errorf("%+v", ev)
	}
	if ev := ByHand(RollbackFailed, "svc", "by hand", nil); ev.Message != "by hand" {
		t.Errorf("%+v", ev)
	}
	if ev := TestEvent("svc", ""); ev.Event != Test || !strings.HasPrefix(ev.Message, "a test notification from cfrollback on ") {
		t.Errorf("%+v", ev)
	}
}
