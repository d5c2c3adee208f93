package guard

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/health"
)

// inFlight counts a fake probe's concurrent calls.
type inFlight struct {
	mu       sync.Mutex
	now, max int
	calls    int
}

func (f *inFlight) enter() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now++
	f.calls++
	f.max = max(f.max, f.now)
}

func (f *inFlight) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now--
}

// Requests that answer go one at a time, back to back: no stagger is waited for.
func TestMeasureOneAtATimeWhenAnswered(t *testing.T) {
	var f inFlight
	ok, failed := Measure(t.Context(), 5, time.Hour, func(context.Context) health.Result {
		f.enter()
		defer f.leave()
		return health.Result{OK: f.calls%2 == 1, Duration: time.Duration(f.calls) * time.Millisecond}
	})
	if len(ok) != 3 || failed != 2 || f.calls != 5 {
		t.Fatalf("ok %v, failed %d, calls %d", ok, failed, f.calls)
	}
	if f.max != 1 {
		t.Errorf("%d requests at once, want 1", f.max)
	}
}

// Requests that do not answer overlap, MaxInFlight at most: here each one answers only once
// MaxInFlight are waiting, which one-at-a-time requests would never reach.
func TestMeasureOverlapsRequestsThatHang(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var f inFlight
	full := make(chan struct{})
	var once sync.Once
	n := MaxInFlight + 3
	ok, failed := Measure(ctx, n, time.Millisecond, func(ctx context.Context) health.Result {
		f.enter()
		defer f.leave()
		f.mu.Lock()
		if f.now == MaxInFlight {
			once.Do(func() { close(full) })
		}
		f.mu.Unlock()
		select {
		case <-full:
			return health.Result{OK: true, Duration: time.Millisecond}
		case <-ctx.Done():
			return health.Result{Detail: "timeout"}
		}
	})
	if ctx.Err() != nil || len(ok) != n || failed != 0 {
		t.Fatalf("ok %d, failed %d, ctx %v: the requests did not overlap", len(ok), failed, ctx.Err())
	}
	if f.max != MaxInFlight {
		t.Errorf("%d requests at once, want at most and at last %d", f.max, MaxInFlight)
	}
}

// An ended context starts no more requests; the started ones are waited for.
func TestMeasureStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var f inFlight
	ok, failed := Measure(ctx, 10, time.Hour, func(ctx context.Context) health.Result {
		f.enter()
		defer f.leave()
		if f.calls == 2 {
			cancel()
		}
		return health.Result{OK: ctx.Err() == nil}
	})
	if f.calls != 2 || len(ok) != 1 || failed != 1 || f.now != 0 {
		t.Fatalf("calls %d, ok %d, failed %d, in flight %d", f.calls, len(ok), failed, f.now)
	}
}
