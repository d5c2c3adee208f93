package health

import (
	"context"
	"time"
)

// Hard caps of the measuring commands (test response-time, test load, and the samples of
// assess, baseline and verify): they run against production at 3am, so a typo in a flag
// must not turn into a denial of service.
const (
	MaxSamples      = 1000
	MaxLoadTime     = 10 * time.Minute
	MaxConcurrency  = 50
	MaxLoadRequests = 100_000
)

// ResponseTime is what a response-time test measured and whether it passed.
type ResponseTime struct {
	Results []Result      // one per sample taken, in order
	Wanted  int           // the samples asked for; fewer were taken when ctx ended
	Target  time.Duration // the p95 that passes
	Failed  int           // requests that got no 2xx answer
	Latency LatencyStats  // of every sample, failed ones included
}

// MeasureResponseTime takes opt.Samples samples of opt.URL, one after another, and judges
// their p95 against target.
func MeasureResponseTime(ctx context.Context, opt SampleOptions, target time.Duration) ResponseTime {
	rt := ResponseTime{Results: SampleLatency(ctx, opt), Wanted: opt.Samples, Target: target}
	lat := make([]time.Duration, 0, len(rt.Results))
	for _, r := range rt.Results {
		lat = append(lat, r.Duration)
		if !r.OK {
			rt.Failed++
		}
	}
	rt.Latency = Summarise(lat)
	return rt
}

// Interrupted reports whether fewer samples were taken than asked for.
func (rt ResponseTime) Interrupted() bool { return len(rt.Results) < rt.Wanted }

// OK reports whether every sample was taken and answered 2xx, and p95 is within the target.
func (rt ResponseTime) OK() bool {
	return rt.Failed == 0 && !rt.Interrupted() && rt.Latency.P95 <= rt.Target
}

// FailuresByDetail counts the failed results by what went wrong ("HTTP 503", "timeout after 2s").
func FailuresByDetail(results []Result) map[string]int {
	by := map[string]int{}
	for _, r := range results {
		if !r.OK {
			by[r.Detail]++
		}
	}
	return by
}

// PerSecond is the rate of requests over the run, 0 for a run that took no time.
func (r LoadResult) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Passed reports whether at least one request completed and the error rate is at most maxErrRate.
func (r LoadResult) Passed(maxErrRate float64) bool {
	return r.Requests > 0 && r.ErrorRate() <= maxErrRate
}
