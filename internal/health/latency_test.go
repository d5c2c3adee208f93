package health

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		out := make([]time.Duration, len(xs))
		for i, x := range xs {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	ten := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for _, tt := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 95, 7 * time.Millisecond},
		{ten, 50, 5 * time.Millisecond},   // ceil(5) = 5th
		{ten, 95, 10 * time.Millisecond},  // ceil(9.5) = 10th
		{ten, 90, 9 * time.Millisecond},   // ceil(9) = 9th
		{ten, 100, 10 * time.Millisecond}, // the max
		{ten, 0.1, 1 * time.Millisecond},  // never below the first
		{ms(1, 2), 50, 1 * time.Millisecond},
		{ms(1, 2), 51, 2 * time.Millisecond},
	} {
		if got := Percentile(tt.in, tt.p); got != tt.want {
			t.Errorf("Percentile(%v, %g) = %s, want %s", tt.in, tt.p, got, tt.want)
		}
	}
}

func TestSummarise(t *testing.T) {
	in := []time.Duration{30, 10, 20, 40}
	s := Summarise(in)
	if s.Count != 4 || s.Min != 10 || s.Max != 40 || s.P50 != 20 || s.P95 != 40 || s.Mean != 25 {
		t.Errorf("%+v", s)
	}
	if in[0] != 30 {
		t.Error("Summarise sorted its input")
	}
	if (Summarise(nil) != LatencyStats{}) {
		t.Error("empty input")
	}
}

func TestSampleLatency(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) == 3 {
			w.WriteHeader(503)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}))
	defer srv.Close()
	rs := SampleLatency(t.Context(), SampleOptions{URL: srv.URL, Samples: 5, Interval: time.Millisecond, Timeout: time.Second})
	if len(rs) != 5 || n.Load() != 5 {
		t.Fatalf("%d results, %d requests", len(rs), n.Load())
	}
	for i, r := range rs {
		if (i == 2) == r.OK || r.Duration <= 0 {
			t.Errorf("sample %d: %+v", i, r)
		}
	}
}

func TestLoadBounded(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%4 == 0 {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	r := Load(t.Context(), LoadOptions{URL: srv.URL, Duration: 10 * time.Second, Concurrency: 4, MaxRequests: 40, Timeout: time.Second})
	if r.Requests != 40 || n.Load() != 40 || r.Errors != 10 || r.ByDetail["HTTP 500"] != 10 || r.ErrorRate() != 0.25 {
		t.Errorf("%+v (server saw %d)", r, n.Load())
	}
	if r.Latency.Count != 40 || r.Latency.P95 < r.Latency.P50 || r.Elapsed > 5*time.Second {
		t.Errorf("latency %+v in %s", r.Latency, r.Elapsed)
	}

	// Duration ends the run long before MaxRequests.
	slow := slowServer(t)
	start := time.Now()
	r = Load(t.Context(), LoadOptions{URL: slow.URL, Duration: 100 * time.Millisecond, Concurrency: 2, MaxRequests: 1000, Timeout: 5 * time.Second})
	if took := time.Since(start); took > 3*time.Second || r.Requests != 0 || r.Errors != 0 {
		t.Errorf("duration bound: %+v after %s", r, took)
	}
	if (LoadResult{}).ErrorRate() != 0 {
		t.Error("no requests, no error rate")
	}
}

func TestIsLoopbackURL(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1:3000/health": true,
		"http://127.9.9.9/":            true,
		"http://[::1]:3000/":           true,
		"http://localhost:3000/":       true,
		"http://LOCALHOST/":            true,
		"http://app.localhost/":        true,
		"http://10.0.0.1/":             false,
		"https://example.com/health":   false,
		"http://localhost.evil.com/":   false,
		"://bad":                       false,
	} {
		if got := IsLoopbackURL(u); got != want {
			t.Errorf("IsLoopbackURL(%q) = %v", u, got)
		}
	}
}
