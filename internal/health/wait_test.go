package health

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fast polls every 10ms and gives up after 2s unless a test says otherwise.
func fast(consecutive int) WaitOptions {
	return WaitOptions{Interval: 10 * time.Millisecond, Consecutive: consecutive, Timeout: 2 * time.Second}
}

// record returns an OnAttempt that notes pass/fail of each attempt.
func record(opt WaitOptions, got *[]bool) WaitOptions {
	opt.OnAttempt = func(attempt int, ok bool, results []Result) {
		if attempt != len(*got)+1 {
			panic("attempts not numbered 1, 2, 3, ...")
		}
		*got = append(*got, ok)
	}
	return opt
}

func TestWaitHealthyAfterFailures(t *testing.T) {
	srv, n := flipServer(t, 500, 500, 200, 200)
	var seen []bool
	rs, err := WaitHealthy(t.Context(), record(fast(2), &seen), HTTPProbe{URL: srv.URL, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{false, false, true, true}; !equal(seen, want) || n.Load() != 4 {
		t.Fatalf("attempts %v (%d requests), want %v", seen, n.Load(), want)
	}
	if len(rs) != 1 || !rs[0].OK {
		t.Fatalf("results %+v", rs)
	}
}

func TestWaitHealthyFailureResetsCount(t *testing.T) {
	srv, _ := flipServer(t, 200, 200, 500, 200, 200, 200, 500)
	var seen []bool
	_, err := WaitHealthy(t.Context(), record(fast(3), &seen), HTTPProbe{URL: srv.URL, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false, true, true, true}; !equal(seen, want) {
		t.Fatalf("attempts %v, want %v: two passes, a failure, then three passes", seen, want)
	}
}

func TestWaitHealthyTimeout(t *testing.T) {
	srv, _ := flipServer(t, 500)
	opt := fast(1)
	opt.Timeout = 100 * time.Millisecond
	start := time.Now()
	rs, err := WaitHealthy(t.Context(), opt, HTTPProbe{URL: srv.URL, Timeout: time.Second})
	took := time.Since(start)
	if !errors.Is(err, ErrUnhealthy) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want ErrUnhealthy (and not a context error: ctx did not end)", err)
	}
	if !strings.Contains(err.Error(), "HTTP 500") || !strings.Contains(err.Error(), "within 100ms") {
		t.Fatalf("error %q does not say what failed and for how long", err)
	}
	if len(rs) != 1 || rs[0].StatusCode != 500 {
		t.Fatalf("results %+v", rs)
	}
	if took < 100*time.Millisecond || took > 2*time.Second {
		t.Fatalf("gave up after %s with a 100ms timeout", took)
	}
	t.Log(err)
}

func TestWaitHealthyFlappingNeverEnough(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func() http.HandlerFunc {
		var n atomic.Int64
		return func(w http.ResponseWriter, _ *http.Request) {
			if n.Add(1)%2 == 0 {
				w.WriteHeader(500)
			}
		}
	}()))
	defer srv.Close()
	opt := fast(2)
	opt.Timeout = 150 * time.Millisecond
	_, err := WaitHealthy(t.Context(), opt, HTTPProbe{URL: srv.URL, Timeout: time.Second})
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("flapping service: %v", err)
	}
	t.Log(err)
}

func TestWaitHealthyContextCancelled(t *testing.T) {
	srv, _ := flipServer(t, 503)
	ctx, cancel := context.WithCancel(t.Context())
	opt := fast(1)
	opt.Timeout = 0
	opt.OnAttempt = func(attempt int, _ bool, _ []Result) {
		if attempt == 3 {
			cancel()
		}
	}
	start := time.Now()
	rs, err := WaitHealthy(ctx, opt, HTTPProbe{URL: srv.URL, Timeout: time.Second})
	if !errors.Is(err, ErrUnhealthy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want ErrUnhealthy and context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "3 attempt") {
		t.Fatalf("error %q", err)
	}
	if len(rs) != 1 || rs[0].StatusCode != 503 {
		t.Fatalf("results %+v", rs)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("cancel took %s to stop the wait", took)
	}
}

func TestWaitHealthyConnectionRefused(t *testing.T) {
	opt := fast(1)
	opt.Timeout = 100 * time.Millisecond
	_, err := WaitHealthy(t.Context(), opt, HTTPProbe{URL: "http://" + closedPort(t) + "/health", Timeout: time.Second})
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error %v", err)
	}
}

func TestWaitHealthySlowHandler(t *testing.T) {
	srv := slowServer(t)
	opt := fast(1)
	opt.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := WaitHealthy(t.Context(), opt, HTTPProbe{URL: srv.URL, Timeout: 30 * time.Millisecond})
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "timeout after 30ms") {
		t.Fatalf("error %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s", took)
	}
}

// TestWaitHealthyKeepsLastCompleteAttempt: the service answers 503, then
// hangs; the wait ends during the hang. The error must say 503, not that
// the check in flight was cancelled.
func TestWaitHealthyKeepsLastCompleteAttempt(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	opt := fast(1)
	opt.Timeout = 100 * time.Millisecond
	var attempts int
	opt.OnAttempt = func(int, bool, []Result) { attempts++ }
	rs, err := WaitHealthy(t.Context(), opt, HTTPProbe{URL: srv.URL, Timeout: 5 * time.Second})
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "HTTP 503") || strings.Contains(err.Error(), "cancel") {
		t.Fatalf("error %v", err)
	}
	if attempts != 1 || len(rs) != 1 || rs[0].StatusCode != 503 {
		t.Fatalf("%d attempts reported, results %+v", attempts, rs)
	}
}

func TestWaitHealthyNoProbes(t *testing.T) {
	if _, err := WaitHealthy(t.Context(), fast(1)); err == nil || errors.Is(err, ErrUnhealthy) {
		t.Fatalf("no probes: %v, want a plain error", err)
	}
}

func TestWaitHealthyDefaults(t *testing.T) {
	srv, n := flipServer(t, 200)
	// Interval 0 (1s) is never waited: the first pass is enough.
	if _, err := WaitHealthy(t.Context(), WaitOptions{}, HTTPProbe{URL: srv.URL}); err != nil || n.Load() != 1 {
		t.Fatalf("%v after %d requests", err, n.Load())
	}
}

func TestWaitHealthyCombinesProbes(t *testing.T) {
	srv, _ := flipServer(t, 200)
	var active atomic.Int64
	svc := FuncProbe{Name: "service active", F: func(context.Context) Result {
		if active.Add(1) < 3 {
			return Result{Detail: "activating (start)"}
		}
		return Result{OK: true, Detail: "active"}
	}}
	var seen []bool
	rs, err := WaitHealthy(t.Context(), record(fast(2), &seen), svc, HTTPProbe{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if !equal(seen, []bool{false, false, true, true}) || len(rs) != 2 {
		t.Fatalf("attempts %v results %+v", seen, rs)
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// With Concurrent, the probes of an attempt run at the same time: each of these two passes
// only once it has seen the other one running, which one after the other never happens
// (the first would wait out its context). The results keep the probes' order.
func TestWaitHealthyConcurrentRunsProbesTogether(t *testing.T) {
	aStarted, bStarted := make(chan struct{}), make(chan struct{})
	meet := func(name string, mine, other chan struct{}) Prober {
		return FuncProbe{Name: name, F: func(ctx context.Context) Result {
			close(mine)
			select {
			case <-other:
				return Result{OK: true, Detail: "met"}
			case <-ctx.Done():
				return Result{Detail: "the other probe never ran meanwhile"}
			}
		}}
	}
	opt := fast(1)
	opt.Timeout = 5 * time.Second
	opt.Concurrent = true
	results, err := WaitHealthy(context.Background(), opt, meet("a", aStarted, bStarted), meet("b", bStarted, aStarted))
	if err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	if len(results) != 2 || results[0].Check != "a" || results[1].Check != "b" || !results[0].OK || !results[1].OK {
		t.Fatalf("results %+v, want a then b, both passed", results)
	}
}
