package cli

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunResponseTime(t *testing.T) {
	var delay atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		time.Sleep(time.Duration(delay.Load()))
	}))
	defer srv.Close()

	io, out, _ := testIO()
	opts := &responseTimeOptions{IO: io, URL: srv.URL, Target: time.Second, Samples: 5, Interval: time.Millisecond, Timeout: time.Second}
	if err := runResponseTime(t.Context(), opts); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "5 samples of "+srv.URL) || !strings.Contains(out.String(), "PASS") {
		t.Errorf("%s", out)
	}

	delay.Store(int64(30 * time.Millisecond))
	io, out, _ = testIO()
	opts = &responseTimeOptions{IO: io, JSON: true, URL: srv.URL, Target: 10 * time.Millisecond, Samples: 3, Timeout: time.Second}
	if err := runResponseTime(t.Context(), opts); exitCodeOf(err) != ExitFailed {
		t.Fatalf("over target: %v", err)
	}
	for _, want := range []string{`"ok": false`, `"samples": 3`, `"failed": 0`, `"target_ms": 10`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	// every sample sleeps 30 ms on the server: p95 is at least that (no upper bound: a
	// loaded machine only makes it slower, and timings are for benchmarks)
	var res struct {
		Latency struct {
			P95 float64 `json:"p95_ms"`
		} `json:"latency"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Latency.P95 < 30 {
		t.Errorf("latency.p95_ms = %v (%v), want >= 30\n%s", res.Latency.P95, err, out)
	}
}

func TestRunLoad(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%10 == 0 {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	io, out, _ := testIO()
	opts := &loadOptions{IO: io, URL: srv.URL, Duration: 5 * time.Second, Concurrency: 3, MaxRequests: 50, Timeout: time.Second, MaxErrRate: 0.01}
	if err := runLoad(t.Context(), opts); exitCodeOf(err) != ExitFailed {
		t.Fatalf("10%% errors over a 1%% limit: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "50 requests") || !strings.Contains(out.String(), "5 x HTTP 503") {
		t.Errorf("%s", out)
	}
	io, out, _ = testIO()
	opts.IO, opts.MaxErrRate = io, 0.5
	if err := runLoad(t.Context(), opts); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// exitCodeOf is the exit code an error from a run function becomes.
func exitCodeOf(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitCode(err)
}
