package health

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestMeasureResponseTime(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) == 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	rt := MeasureResponseTime(t.Context(), SampleOptions{URL: srv.URL, Samples: 3, Timeout: time.Second}, time.Second)
	if len(rt.Results) != 3 || rt.Failed != 1 || rt.Interrupted() || rt.OK() {
		t.Fatalf("one 503 of 3: %d results, %d failed, interrupted %v, ok %v", len(rt.Results), rt.Failed, rt.Interrupted(), rt.OK())
	}
	if by := FailuresByDetail(rt.Results); by["HTTP 503"] != 1 || len(by) != 1 {
		t.Errorf("FailuresByDetail = %v", by)
	}
	rt = MeasureResponseTime(t.Context(), SampleOptions{URL: srv.URL, Samples: 2, Timeout: time.Second}, time.Second)
	if rt.Failed != 0 || !rt.OK() || rt.Latency.Count != 2 {
		t.Errorf("two 200s within 1s: failed %d, ok %v, count %d", rt.Failed, rt.OK(), rt.Latency.Count)
	}
	rt.Target = 0
	if rt.Latency.P95 > 0 && rt.OK() {
		t.Errorf("p95 %v over a target of 0 passed", rt.Latency.P95)
	}
	if (ResponseTime{Wanted: 2, Results: []Result{{OK: true}}}).OK() {
		t.Error("an interrupted test (1 of 2 samples) passed")
	}
}

func TestLoadResultVerdict(t *testing.T) {
	for _, c := range []struct {
		r    LoadResult
		max  float64
		pass bool
	}{
		{LoadResult{Requests: 100, Errors: 1}, 0.01, true},
		{LoadResult{Requests: 100, Errors: 2}, 0.01, false},
		{LoadResult{}, 1, false}, // nothing completed
	} {
		if got := c.r.Passed(c.max); got != c.pass {
			t.Errorf("%+v Passed(%g) = %v", c.r, c.max, got)
		}
	}
	if got := (LoadResult{Requests: 50, Elapsed: 2 * time.Second}).PerSecond(); got != 25 {
		t.Errorf("PerSecond = %v", got)
	}
	if got := (LoadResult{Requests: 5}).PerSecond(); got != 0 {
		t.Errorf("PerSecond of no time = %v", got)
	}
}
