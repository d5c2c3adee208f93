package guard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/notify"
	"github.com/cfrollback/cfrollback/internal/runbook"
)

// fakeHost is a service whose health the test sets, on a fake clock.
type fakeHost struct {
	mu       sync.Mutex
	now      time.Time
	healthy  bool
	acts     int
	journal  []Record
	events   []string
	sent     []notify.Event
	notified chan notify.Event // when set, gets every event sent
	onAct    func()            // runs inside Act, before the rollback's outcome
	// afterOutcome runs inside Act after its outcome was reported (the standby refresh)
	afterOutcome func()
	stateDir     string
}

func (h *fakeHost) deps() Deps {
	return Deps{
		Sample: func(context.Context) assess.Sample {
			h.mu.Lock()
			defer h.mu.Unlock()
			return assess.Sample{Time: h.now, Active: assess.Ptr(true), State: "active", Restarts: assess.Ptr(0),
				Probe: &assess.Probe{OK: h.healthy, StatusCode: map[bool]int{true: 200, false: 503}[h.healthy]}}
		},
		Measure: func(_ context.Context, n int) ([]time.Duration, int) {
			if h.healthy {
				return []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond}[:n], 0
			}
			return nil, n
		},
		Act: func(_ context.Context, atOutcome func(*runbook.Result)) (*runbook.Result, error) {
			h.mu.Lock()
			h.acts++
			h.now = h.now.Add(3 * time.Second)
			h.healthy = true
			h.mu.Unlock()
			if h.onAct != nil {
				h.onAct()
			}
			res := &runbook.Result{RunID: "run-" + h.now.Format("150405"), Outcome: "ok", DowntimeMS: 1500}
			atOutcome(res)
			if h.afterOutcome != nil {
				h.afterOutcome()
			}
			return res, nil
		},
		Journal: func(_ context.Context, _ string, data any) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if r, ok := data.(Record); ok {
				h.journal = append(h.journal, r)
			}
			return nil
		},
		Notify: func(_ context.Context, ev notify.Event) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.events = append(h.events, ev.Event)
			h.sent = append(h.sent, ev)
			if h.notified != nil {
				h.notified <- ev
			}
		},
		Now: func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now },
		Wait: func(_ context.Context, d time.Duration) bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.now = h.now.Add(d)
			return true
		},
	}
}

func options(dir string, n int) Options {
	th := assess.DefaultThresholds
	return Options{Policy: testPolicy(), Thresholds: th, StateDir: dir, Service: "app", Evaluations: n, Retention: time.Hour}
}

func TestRunActsOnceAndJournalsTheEvidence(t *testing.T) {
	dir := t.TempDir()
	h := &fakeHost{now: t0, healthy: false, stateDir: dir}
	if err := Run(context.Background(), options(dir, 10), h.deps()); err != nil {
		t.Fatal(err)
	}
	if h.acts != 1 {
		t.Fatalf("acted %d times, want 1", h.acts)
	}
	if len(h.journal) != 1 || h.journal[0].Decision.Verdict != Acted || h.journal[0].Outcome != "ok" {
		t.Fatalf("journal %+v", h.journal)
	}
	r := h.journal[0]
	if len(r.Samples) != 3 || r.Row == nil || r.Row.Severity != assess.P0 || r.Decision.StreakStart.IsZero() || r.HealthyAt.Before(r.Decision.StreakStart) {
		t.Fatalf("evidence: %d samples, row %+v, decision %+v", len(r.Samples), r.Row, r.Decision)
	}
	if got := r.HealthyAt.Sub(r.Decision.StreakStart); got != 2*10*time.Second+3*time.Second {
		t.Fatalf("first bad sample -> healthy %s, want two intervals plus the rollback's 3s", got)
	}
	if len(h.events) != 1 || h.events[0] != notify.GuardActed {
		t.Fatalf("events %v", h.events)
	}
	st, err := ReadState(dir)
	if err != nil || len(st.Actions) != 1 || st.Actions[0].Outcome != "ok" || st.Last == nil {
		t.Fatalf("state %+v %v", st, err)
	}
}

// TestRestartDoesNotActTwice: guard killed during its rollback (the state it
// wrote before acting is what a kill leaves) and restarted with the service
// still bad does not act on that evidence, nor within the grace period.
func TestRestartDoesNotActTwice(t *testing.T) {
	dir := t.TempDir()
	h := &fakeHost{now: t0, stateDir: dir}
	var before []byte
	h.onAct = func() {
		b, err := os.ReadFile(filepath.Join(dir, StateFile))
		if err != nil {
			t.Error(err)
		}
		before = b
	}
	if err := Run(context.Background(), options(dir, 3), h.deps()); err != nil {
		t.Fatal(err)
	}
	if h.acts != 1 || before == nil {
		t.Fatalf("acts %d", h.acts)
	}
	// as if killed inside Act: the state file is the one written before acting
	if err := os.WriteFile(filepath.Join(dir, StateFile), before, 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ := ReadState(dir)
	if len(st.Actions) != 1 || !st.Actions[0].Ended.IsZero() || st.Cutoff.IsZero() {
		t.Fatalf("the state written before acting does not record the action: %+v", st)
	}
	h.healthy = false // the rollback did not happen (killed), the service is still bad
	h.journal = nil
	// restarted 10s later: 12 evaluations (2 minutes) is the grace period
	h.now = h.now.Add(10 * time.Second)
	if err := Run(context.Background(), options(dir, 12), h.deps()); err != nil {
		t.Fatal(err)
	}
	if h.acts != 1 {
		t.Fatalf("the restarted guard acted again on the same evidence: %d rollbacks", h.acts)
	}
	st, _ = ReadState(dir)
	if st.Actions[0].Outcome != "interrupted" || st.Last.Verdict != Grace {
		t.Fatalf("state after the restart: %+v", st)
	}
	// after the grace period, new evidence acts again
	if err := Run(context.Background(), options(dir, 6), h.deps()); err != nil {
		t.Fatal(err)
	}
	if h.acts != 2 {
		t.Fatalf("new evidence after the grace period: %d rollbacks, want 2", h.acts)
	}
}

func TestSecondGuardRefuses(t *testing.T) {
	dir := t.TempDir()
	h := &fakeHost{now: t0, healthy: true, stateDir: dir}
	second := make(chan error, 1)
	h2 := &fakeHost{now: t0, healthy: true, stateDir: dir}
	d := h.deps()
	d.Sample = func(ctx context.Context) assess.Sample {
		if len(second) == 0 {
			second <- Run(ctx, options(dir, 1), h2.deps())
		}
		return h.deps().Sample(ctx)
	}
	if err := Run(context.Background(), options(dir, 1), d); err != nil {
		t.Fatal(err)
	}
	err := <-second
	if !errors.Is(err, ErrRunning) {
		t.Fatalf("second guard: %v, want ErrRunning", err)
	}
}

func TestDryRunAndPauseOnlyNotify(t *testing.T) {
	dir := t.TempDir()
	h := &fakeHost{now: t0, stateDir: dir}
	o := options(dir, 3)
	o.DryRun = true
	if err := Run(context.Background(), o, h.deps()); err != nil {
		t.Fatal(err)
	}
	if h.acts != 0 || len(h.events) != 1 || h.events[0] != notify.GuardWouldHaveActed || h.journal[0].Decision.Reason != "dry run" {
		t.Fatalf("dry run: acts %d events %v journal %+v", h.acts, h.events, h.journal)
	}
	res, err := SetPause(context.Background(), PauseRequest{StateDir: dir, Service: "app", Pause: true, For: time.Hour, By: "ops", Now: h.now}, PauseDeps{})
	if err != nil || !res.Changed {
		t.Fatal(res, err)
	}
	h.events, h.journal = nil, nil
	o = options(dir, 3)
	o.Policy.Cooldown = 0
	if err := Run(context.Background(), o, h.deps()); err != nil {
		t.Fatal(err)
	}
	if h.acts != 0 || len(h.journal) != 1 || h.journal[0].Decision.Verdict != WouldHaveActed {
		t.Fatalf("paused: acts %d journal %+v", h.acts, h.journal)
	}
	// dry-run resume changes nothing; resume does
	if r, _ := SetPause(context.Background(), PauseRequest{StateDir: dir, Now: h.now, DryRun: true}, PauseDeps{}); !r.Changed {
		t.Fatal("dry-run resume says nothing would change")
	}
	if p, _ := ReadPause(dir); !p.Active(h.now) {
		t.Fatal("a dry-run resume resumed")
	}
	var sent []string
	if _, err := SetPause(context.Background(), PauseRequest{StateDir: dir, Now: h.now},
		PauseDeps{Notify: func(_ context.Context, ev notify.Event) { sent = append(sent, ev.Event) }}); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || sent[0] != notify.GuardResumed {
		t.Fatalf("resume sent %v", sent)
	}
	if err := Run(context.Background(), o, h.deps()); err != nil {
		t.Fatal(err)
	}
	if h.acts != 1 {
		t.Fatalf("resumed: acts %d", h.acts)
	}
}

// TestSampleStoreStaysBounded: guard's own store drops what is older than Retention as it
// runs, not only at start.
func TestSampleStoreStaysBounded(t *testing.T) {
	old := compactEvery
	compactEvery = 10
	t.Cleanup(func() { compactEvery = old })
	dir := t.TempDir()
	h := &fakeHost{now: t0, healthy: true, stateDir: dir}
	o := options(dir, 60)
	o.Retention = 100 * time.Second // 10 evaluations at 10s
	if err := Run(context.Background(), o, h.deps()); err != nil {
		t.Fatal(err)
	}
	samples, _, err := SampleStore(dir, o.Retention).Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) == 0 || len(samples) > 20 {
		t.Fatalf("%d samples kept after 60 evaluations with a retention of 10", len(samples))
	}
}

// TestNoRollbackOverAnotherRun: while another cfrollback run (a deploy, a person's rollback)
// holds the run lock, guard notifies what it would do and records no action.
func TestNoRollbackOverAnotherRun(t *testing.T) {
	dir := t.TempDir()
	h := &fakeHost{now: t0, stateDir: dir}
	d := h.deps()
	d.Busy = func() (string, bool) { return "pid 42, cfrollback deploy", true }
	if err := Run(context.Background(), options(dir, 3), d); err != nil {
		t.Fatal(err)
	}
	if h.acts != 0 || len(h.journal) != 1 || h.journal[0].Decision.Verdict != WouldHaveActed ||
		!strings.Contains(h.journal[0].Decision.Reason, "cfrollback deploy") {
		t.Fatalf("acts %d, journal %+v", h.acts, h.journal)
	}
	st, _ := ReadState(dir)
	if len(st.Actions) != 0 || !st.Cutoff.IsZero() {
		t.Fatalf("a rollback not run was recorded: %+v", st.Memory)
	}
}

// TestActedIsNotifiedAtTheOutcome: guard_acted goes to the webhooks when the rollback's
// outcome is recorded, while the work after it (the standby refresh) still runs, and only
// once; the journaled decision still has the whole result.
func TestActedIsNotifiedAtTheOutcome(t *testing.T) {
	dir := t.TempDir()
	h := &fakeHost{now: t0, stateDir: dir, notified: make(chan notify.Event, 10)}
	var during []notify.Event
	h.afterOutcome = func() {
		select {
		case ev := <-h.notified:
			during = append(during, ev)
		case <-time.After(10 * time.Second):
			t.Error("guard_acted was not sent while the work after the rollback's outcome ran")
		}
	}
	if err := Run(context.Background(), options(dir, 10), h.deps()); err != nil {
		t.Fatal(err)
	}
	if h.acts != 1 || len(during) != 1 || during[0].Event != notify.GuardActed || during[0].Outcome != "ok" || during[0].RunID == "" ||
		!strings.Contains(during[0].Message, "Rollback ok (run "+during[0].RunID) {
		t.Fatalf("acts %d, sent during the refresh: %+v", h.acts, during)
	}
	if len(h.sent) != 1 {
		t.Fatalf("sent %v, want guard_acted once", h.events)
	}
	if len(h.journal) != 1 || h.journal[0].RunID != during[0].RunID || h.journal[0].Outcome != "ok" || h.journal[0].HealthyAt.IsZero() {
		t.Fatalf("journal %+v", h.journal)
	}
}

// TestActedWithoutOutcomeIsNotifiedAfter: a rollback that recorded no outcome (refused:
// another run holds the lock) is told after Act returns, with its error.
func TestActedWithoutOutcomeIsNotifiedAfter(t *testing.T) {
	dir := t.TempDir()
	h := &fakeHost{now: t0, stateDir: dir}
	deps := h.deps()
	deps.Act = func(context.Context, func(*runbook.Result)) (*runbook.Result, error) {
		h.mu.Lock()
		h.acts++
		h.mu.Unlock()
		return nil, errors.New("another run holds the lock")
	}
	if err := Run(context.Background(), options(dir, 4), deps); err != nil {
		t.Fatal(err)
	}
	if h.acts != 1 || len(h.sent) != 1 || h.sent[0].Event != notify.GuardActed || !strings.Contains(h.sent[0].Message, "another run holds the lock") {
		t.Fatalf("acts %d, sent %+v", h.acts, h.sent)
	}
}
