package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUnhealthy means the checks did not pass: WaitHealthy gave up.
var ErrUnhealthy = errors.New("service is not healthy")

// WaitOptions say how WaitHealthy polls.
type WaitOptions struct {
	// Interval is the pause after each attempt; 0 means 1s.
	Interval time.Duration
	// Consecutive is how many attempts in a row must pass; 0 means 1.
	Consecutive int
	// Timeout bounds the whole wait; 0 means only ctx does.
	Timeout time.Duration
	// OnAttempt, if set, is called after every completed attempt, for
	// progress output. It runs on WaitHealthy's goroutine.
	OnAttempt func(attempt int, ok bool, results []Result)
	// Concurrent runs the probes of an attempt at the same time (AllConcurrent): an
	// attempt takes as long as its slowest probe, not their sum. The probes must not
	// share unguarded state.
	Concurrent bool
}

// WaitHealthy runs All every Interval until Consecutive attempts in a row
// pass (a failure starts the count again), or until Timeout or ctx ends.
// It returns the results of the last attempt and, when it gave up, an
// error wrapping ErrUnhealthy that names the last failures; if ctx ended
// the wait, the error wraps ctx.Err() too. An attempt cut short by the end
// of the wait is not reported: its "cancelled" results would hide why the
// attempts before it failed.
func WaitHealthy(ctx context.Context, opt WaitOptions, probes ...Prober) ([]Result, error) {
	if len(probes) == 0 {
		return nil, errors.New("wait for health: no checks to run")
	}
	interval := opt.Interval
	if interval <= 0 {
		interval = time.Second
	}
	need := max(opt.Consecutive, 1)
	waitCtx := ctx
	if opt.Timeout > 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, opt.Timeout)
		defer cancel()
	}

	start := time.Now()
	var last, lastFailed []Result
	streak, attempts := 0, 0
	all := All
	if opt.Concurrent {
		all = AllConcurrent
	}
	for {
		ok, results := all(waitCtx, probes...)
		if !ok && waitCtx.Err() != nil && last != nil {
			break // cut short: keep the last complete attempt
		}
		attempts++
		last = results
		if ok {
			streak++
		} else {
			streak, lastFailed = 0, results
		}
		if opt.OnAttempt != nil {
			opt.OnAttempt(attempts, ok, results)
		}
		if ok && streak >= need {
			return results, nil
		}
		if !sleep(waitCtx, interval) {
			break
		}
	}

	why := failures(last)
	if why == "" {
		why = fmt.Sprintf("the last %d attempt(s) passed, %d in a row are needed", streak, need)
		if f := failures(lastFailed); f != "" {
			why += "; before that: " + f
		}
	}
	elapsed := time.Since(start).Round(time.Millisecond)
	if err := ctx.Err(); err != nil {
		return last, fmt.Errorf("%w: stopped waiting after %s and %d attempt(s): %s: %w", ErrUnhealthy, elapsed, attempts, why, err)
	}
	return last, fmt.Errorf("%w within %s (%d attempts): %s", ErrUnhealthy, opt.Timeout, attempts, why)
}

// failures lists the failed checks of one attempt: "check: detail; ...".
func failures(results []Result) string {
	var parts []string
	for _, r := range results {
		if !r.OK {
			parts = append(parts, r.Check+": "+r.Detail)
		}
	}
	return strings.Join(parts, "; ")
}

// sleep waits for d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
