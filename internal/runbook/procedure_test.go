package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
)

// recordingNotifier keeps the notices a procedure gave it.
type recordingNotifier struct {
	mu      sync.Mutex
	notices []Notice
}

var _ ChangeNotifier = (*recordingNotifier)(nil)

func (r *recordingNotifier) ChangeStarted(_ context.Context, n Notice) { r.add(n) }

func (r *recordingNotifier) ChangeFinished(_ context.Context, n Notice) { r.add(n) }

func (r *recordingNotifier) add(n Notice) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notices = append(r.notices, n)
}

func (r *recordingNotifier) outcomes() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, n := range r.notices {
		s = append(s, "["+n.Outcome+"]")
	}
	return strings.Join(s, ",")
}

// configEnv is an app config.json under the env's install dir, and a set of claude.model on it.
func configEnv(t *testing.T) (*env, *appconfig.Editor, ConfigChange) {
	t.Helper()
	e := newEnv(t)
	path := filepath.Join(e.cfg.InstallDir, "config.json")
	if err := os.WriteFile(path, []byte("{\n  \"claude\": {\n    \"model\": \"old\"\n  }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ed := &appconfig.Editor{Path: path, CheckpointDir: filepath.Join(e.cfg.Backup.Dir, "config"), InstallDir: e.cfg.InstallDir}
	val := ed.TypedValue("claude.model", "new", false)
	return e, ed, ConfigChange{Config: e.cfg, Command: ConfigSetCommand, Editor: ed, Intent: ConfigIntent{File: path, Key: "claude.model"},
		Args: []string{"config", "set", "claude.model", "new"}, Apply: func() (appconfig.Result, error) { return ed.Set("claude.model", val) }}
}

// A config set whose journal cannot be written stops where the write failed, and the
// person is told what had been changed by then: nothing (the intent was not written: the
// file is untouched), or the file with the checkpoint that undoes it (the write step's
// record failed after the file was written). The webhooks hear the failure.
func TestChangeJournalFails(t *testing.T) {
	for _, tc := range []struct {
		ok      int // records written before the journal fails
		changed bool
		msg     string
		hint    []string
		notices string
	}{
		{ok: 0, msg: "journal: write intent to the journal ", hint: []string{"fix the journal path or its permissions"}},
		{ok: 1, msg: "journal: write step_start to the journal ", hint: []string{"fix the journal path"}, notices: "[],[preflight_failed]"},
		{ok: 2, changed: true, msg: "journal: write step_done to the journal ", notices: "[],[failed]",
			hint: []string{"the change WAS made but the journal does not record it all: wrote ", "config.json (the file before it: checkpoint ",
				"'cfrollback history' lacks the end of run "}},
	} {
		t.Run(fmt.Sprint(tc.ok), func(t *testing.T) {
			e, ed, c := configEnv(t)
			n := &recordingNotifier{}
			deps := ChangeDeps{Notifier: n, wrapJournal: func(j journalWriter) journalWriter { return &failingJournal{journalWriter: j, ok: tc.ok} }}
			res, cr, err := ChangeConfig(context.Background(), c, deps)
			if !errors.Is(err, ErrJournal) || !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), tc.msg) {
				t.Fatalf("err %v, want it to start with %q", err, tc.msg)
			}
			var ce *ChangedError
			if !errors.As(err, &ce) || errors.Is(err, ErrPreflight) || errors.Is(err, ErrAfterStop) {
				t.Fatalf("err %T %v: want a *ChangedError (exit 1)", err, err)
			}
			for _, h := range tc.hint {
				if !strings.Contains(ce.Hint, h) {
					t.Errorf("hint %q lacks %q", ce.Hint, h)
				}
			}
			if !tc.changed && !strings.Contains(err.Error(), "nothing was changed") {
				t.Errorf("err %q does not say nothing was changed", err)
			}
			if tc.changed && !strings.Contains(ce.Hint, res.Checkpoint) {
				t.Errorf("hint %q does not name the checkpoint %s", ce.Hint, res.Checkpoint)
			}
			t.Logf("the user is told: cfrollback: %v\nhint: %s", err, ce.Hint)
			b, rerr := os.ReadFile(ed.Path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if got := strings.Contains(string(b), `"new"`); got != tc.changed {
				t.Fatalf("file changed %v, want %v:\n%s", got, tc.changed, b)
			}
			if cr.Outcome == "ok" || n.outcomes() != tc.notices {
				t.Fatalf("outcome %s, notices %s; want %s", cr.Outcome, n.outcomes(), tc.notices)
			}
			// what the journal holds is a run without an outcome: history shows it interrupted
			runs := runsOf(t, e.cfg.Journal)
			if len(runs) != map[bool]int{true: 1, false: 0}[tc.ok > 0] || (tc.ok > 0 && !runs[0].Unfinished()) {
				t.Fatalf("runs %+v", runs)
			}
		})
	}
}

// A change is journaled intent, steps, outcome with typed payloads, and notified start
// and end; its dry run goes through the same steps and writes, journals and notifies
// nothing.
func TestChangeConfigJournaledAndDryRun(t *testing.T) {
	e, ed, c := configEnv(t)
	n := &recordingNotifier{}
	ed.DryRun = true
	res, cr, err := ChangeConfig(context.Background(), c, ChangeDeps{Notifier: n})
	if err != nil || !res.WouldChange || cr.Outcome != "planned" || len(cr.Steps) != 1 || cr.Steps[0].Status != "planned" {
		t.Fatalf("dry run: %v %+v %+v", err, res, cr)
	}
	if _, err := os.Stat(e.cfg.Journal); !os.IsNotExist(err) || n.outcomes() != "" {
		t.Fatalf("a dry run journaled (%v) or notified (%s)", err, n.outcomes())
	}
	ed.DryRun = false
	res, cr, err = ChangeConfig(context.Background(), c, ChangeDeps{Notifier: n})
	if err != nil || !res.Changed || cr.Outcome != "ok" || n.outcomes() != "[],[ok]" {
		t.Fatalf("%v %+v %+v %s", err, res, cr, n.outcomes())
	}
	runs := runsOf(t, e.cfg.Journal)
	if len(runs) != 1 || runs[0].Command != ConfigSetCommand || runs[0].Outcome != "ok" || runs[0].ID != cr.RunID {
		t.Fatalf("runs %+v", runs)
	}
	var events []string
	for _, rec := range runs[0].Records {
		events = append(events, rec.Event+":"+rec.Step)
	}
	want := []string{journal.EventIntent + ":", journal.EventStepStart + ":write", journal.EventStepDone + ":write", journal.EventOutcome + ":"}
	if strings.Join(events, " ") != strings.Join(want, " ") {
		t.Fatalf("records %v, want %v", events, want)
	}
	for _, s := range []string{`"summary":"set claude.model in `, `"change":{"file":`, `"key":"claude.model"`} {
		if !strings.Contains(string(runs[0].Records[0].Data), s) {
			t.Errorf("intent %s lacks %s", runs[0].Records[0].Data, s)
		}
	}
	if !strings.Contains(string(runs[0].Records[3].Data), `"checkpoint":"`+res.Checkpoint+`"`) {
		t.Errorf("outcome %s lacks the checkpoint", runs[0].Records[3].Data)
	}
}

// A change takes the run lock: while another run holds it, the change is refused (lock.ErrLocked,
// exit 6) before it journals, notifies or writes anything.
func TestChangeRefusedWhileLocked(t *testing.T) {
	e, ed, c := configEnv(t)
	if err := os.MkdirAll(filepath.Dir(e.cfg.Lock), 0o755); err != nil {
		t.Fatal(err)
	}
	held, err := lock.Acquire(e.cfg.Lock, lock.Holder{PID: os.Getpid(), Command: "cfrollback emergency", RunID: "r-other"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Release() }()
	before, _ := os.ReadFile(ed.Path)
	n := &recordingNotifier{}
	_, cr, err := ChangeConfig(context.Background(), c, ChangeDeps{Notifier: n})
	if !errors.Is(err, lock.ErrLocked) || cr.Outcome != "preflight_failed" {
		t.Fatalf("err %v, result %+v", err, cr)
	}
	after, _ := os.ReadFile(ed.Path)
	if string(after) != string(before) || n.outcomes() != "" {
		t.Fatalf("changed %v, notices %s", string(after) != string(before), n.outcomes())
	}
	if _, err := os.Stat(e.cfg.Journal); !os.IsNotExist(err) {
		t.Fatalf("journaled: %v", err)
	}
}
