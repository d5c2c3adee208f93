package guard

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/health"
)

// An evaluation's sample, requests and data checks run at once, and whatever time they take
// the streak and the evidence cutoff are the samples' times: the streak starts at the first
// bad sample, the action's evidence and the cutoff are the acting sample, and the cadence
// stays one evaluation per interval.
func TestEvaluationWorkRunsAtOnceAndKeepsTheEvidence(t *testing.T) {
	dir := t.TempDir()
	h := &fakeHost{now: t0, stateDir: dir}
	deps := h.deps()
	const work = 300 * time.Millisecond // each part's time, on the fake clock
	var (
		mu      sync.Mutex
		started map[string]chan struct{}
		times   []time.Time
	)
	begin := func() {
		mu.Lock()
		defer mu.Unlock()
		started = map[string]chan struct{}{"sample": make(chan struct{}), "measure": make(chan struct{}), "data": make(chan struct{})}
	}
	// meet marks part as started and waits, boundedly, for the other two: run one after
	// another, the first part would wait in vain
	meet := func(part string) {
		mu.Lock()
		ch := started
		mu.Unlock()
		close(ch[part])
		for name, c := range ch {
			select {
			case <-c:
			case <-time.After(10 * time.Second):
				t.Errorf("%s waited 10s for %s: the evaluation's parts did not run at once", part, name)
			}
		}
	}
	sample, measure := deps.Sample, deps.Measure
	begin()
	deps.Sample = func(ctx context.Context) assess.Sample {
		s := sample(ctx) // stamped before its work, as assess.Sampler does
		meet("sample")
		h.mu.Lock()
		h.now = h.now.Add(work)
		h.mu.Unlock()
		mu.Lock()
		times = append(times, s.Time)
		mu.Unlock()
		return s
	}
	deps.Measure = func(ctx context.Context, n int) ([]time.Duration, int) {
		meet("measure")
		return measure(ctx, n)
	}
	deps.Data = func(context.Context) []health.Check {
		meet("data")
		return nil
	}
	wait := deps.Wait
	deps.Wait = func(ctx context.Context, d time.Duration) bool {
		begin()
		return wait(ctx, d)
	}
	if err := Run(t.Context(), options(dir, 8), deps); err != nil {
		t.Fatal(err)
	}
	if h.acts != 1 {
		t.Fatalf("acted %d times, want 1", h.acts)
	}
	pol := testPolicy()
	for i, at := range times[:3] {
		if want := t0.Add(time.Duration(i) * pol.Interval); !at.Equal(want) {
			t.Errorf("sample %d at %s, want %s: the evaluations' work stretched the cadence", i+1, at, want)
		}
	}
	st, err := ReadState(dir)
	if err != nil || len(st.Actions) != 1 {
		t.Fatalf("state %+v %v", st, err)
	}
	a, third := st.Actions[0], times[2]
	if !a.Evidence.Equal(third) || !a.Started.Equal(third.Add(work)) {
		t.Errorf("action evidence %s started %s, want the third sample %s and its work after it", a.Evidence, a.Started, third)
	}
	if !st.Cutoff.Equal(a.Ended.Add(pol.Grace)) || !st.Cutoff.After(third) {
		t.Errorf("cutoff %s, want the rollback's end %s plus grace", st.Cutoff, a.Ended)
	}
	if len(h.journal) != 1 {
		t.Fatalf("journal %+v", h.journal)
	}
	d := h.journal[0].Decision
	if d.Streak != 3 || !d.StreakStart.Equal(t0) || len(h.journal[0].Samples) != 3 {
		t.Errorf("decision %+v with %d samples, want a streak of 3 from the first bad sample %s", d, len(h.journal[0].Samples), t0)
	}
}
