package guard

import (
	"context"
	"time"

	"github.com/cfrollback/cfrollback/internal/health"
)

// MaxInFlight bounds Measure's requests at once.
const MaxInFlight = 8

// Measure makes n requests with probe and returns the successful ones'
// latencies and how many failed. The next request starts when the previous
// one has answered or stagger after it started, whichever comes first, with at
// most MaxInFlight at once: requests that answer within stagger go one at a
// time, back to back (their latencies are comparable with the baseline's, which
// were taken one at a time), and a service that does not answer costs about
// one request's timeout per MaxInFlight requests, not one per request. It stops starting requests when ctx
// ends and returns once the started ones have (probe honours ctx).
func Measure(ctx context.Context, n int, stagger time.Duration, probe func(context.Context) health.Result) (ok []time.Duration, failed int) {
	results := make(chan health.Result, n)
	take := func(r health.Result) {
		if r.OK {
			ok = append(ok, r.Duration)
		} else {
			failed++
		}
	}
	inFlight, started := 0, 0
	timer := time.NewTimer(stagger)
	defer timer.Stop()
	for started < n && ctx.Err() == nil {
		go func() { results <- probe(ctx) }()
		started++
		inFlight++
		if started == n {
			break
		}
		if inFlight >= MaxInFlight {
			take(<-results)
			inFlight--
			continue
		}
		timer.Reset(stagger)
		select {
		case r := <-results:
			take(r)
			inFlight--
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	for ; inFlight > 0; inFlight-- {
		take(<-results)
	}
	return ok, failed
}
