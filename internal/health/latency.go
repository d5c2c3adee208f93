package health

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted:
// the smallest value with at least p% of the samples at or below it. Unlike
// interpolation it is always a latency that was actually measured. Empty
// input is 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// LatencyStats summarises latencies.
type LatencyStats struct {
	Count                   int
	Min, P50, P95, P99, Max time.Duration
	Mean                    time.Duration
}

// Summarise computes LatencyStats; it does not modify d.
func Summarise(d []time.Duration) LatencyStats {
	if len(d) == 0 {
		return LatencyStats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	return LatencyStats{Count: len(s), Min: s[0], Max: s[len(s)-1],
		P50: Percentile(s, 50), P95: Percentile(s, 95), P99: Percentile(s, 99),
		Mean: sum / time.Duration(len(s))}
}

// SampleOptions say how SampleLatency measures.
type SampleOptions struct {
	URL      string
	Samples  int
	Interval time.Duration // pause between requests
	Timeout  time.Duration // per request; 0 means DefaultHTTPTimeout
}

// SampleLatency GETs URL Samples times, one after another, and returns every
// result (Duration is the latency; OK false for errors and non-2xx).
func SampleLatency(ctx context.Context, opt SampleOptions) []Result {
	p := HTTPProbe{URL: opt.URL, Timeout: opt.Timeout, Client: keepAliveClient()}
	out := make([]Result, 0, opt.Samples)
	for i := 0; i < opt.Samples; i++ {
		if i > 0 && opt.Interval > 0 {
			select {
			case <-ctx.Done():
				return out
			case <-time.After(opt.Interval):
			}
		}
		if ctx.Err() != nil {
			return out
		}
		out = append(out, p.Probe(ctx))
	}
	return out
}

// keepAliveClient reuses connections: a latency test measures the service,
// not TCP handshakes. Proxies are ignored as in the health probe.
func keepAliveClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}}
}

// LoadOptions bound a load test.
type LoadOptions struct {
	URL         string
	Duration    time.Duration
	Concurrency int
	MaxRequests int           // the run stops after this many requests, whatever Duration says
	Timeout     time.Duration // per request
}

// LoadResult is what a load test measured.
type LoadResult struct {
	Requests int
	Errors   int            // transport errors and non-2xx answers
	ByDetail map[string]int // error detail -> count ("HTTP 503", "timeout after 2s")
	Latency  LatencyStats   // of every request, failed ones included
	Elapsed  time.Duration
}

// ErrorRate is Errors/Requests, 0 when there were none.
func (r LoadResult) ErrorRate() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Errors) / float64(r.Requests)
}

// Load sends GETs from Concurrency workers until Duration passes, MaxRequests
// have been sent, or ctx ends.
func Load(ctx context.Context, opt LoadOptions) LoadResult {
	ctx, cancel := context.WithTimeout(ctx, opt.Duration)
	defer cancel()
	p := HTTPProbe{URL: opt.URL, Timeout: opt.Timeout, Client: keepAliveClient()}
	tickets := make(chan struct{}, opt.MaxRequests)
	for i := 0; i < opt.MaxRequests; i++ {
		tickets <- struct{}{}
	}
	close(tickets)
	var mu sync.Mutex
	res := LoadResult{ByDetail: map[string]int{}}
	var lat []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < max(opt.Concurrency, 1); w++ {
		wg.Go(func() {
			for range tickets {
				if ctx.Err() != nil {
					return
				}
				r := p.Probe(ctx)
				if ctx.Err() != nil && !r.OK {
					return // cut short by the end of the run: not the service's fault
				}
				mu.Lock()
				res.Requests++
				lat = append(lat, r.Duration)
				if !r.OK {
					res.Errors++
					res.ByDetail[r.Detail]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Latency = Summarise(lat)
	return res
}

// IsLoopbackURL reports whether raw points at this host: localhost, or a
// loopback IP literal. Other names are not resolved: a name that resolves to
// loopback today may not tomorrow.
func IsLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// MeasureLatency times n requests to url: the successful latencies, the number that failed,
// and a summary of all of them (assess, baseline and verify take the response time so).
func MeasureLatency(ctx context.Context, url string, n int, interval, timeout time.Duration) (ok []time.Duration, failed int, stats LatencyStats) {
	results := SampleLatency(ctx, SampleOptions{URL: url, Samples: n, Interval: interval, Timeout: timeout})
	all := make([]time.Duration, 0, len(results))
	for _, r := range results {
		all = append(all, r.Duration)
		if r.OK {
			ok = append(ok, r.Duration)
		} else {
			failed++
		}
	}
	return ok, failed, Summarise(all)
}
