package notify

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/settings"
)

func runNotifier(url string, log *lockedBuffer, warns *[]string) *RunNotifier {
	n := testNotifier(nil)
	if log != nil {
		n.Log = log
	}
	return &RunNotifier{Notifier: n, Hooks: []settings.Webhook{{Name: "ops", URL: url}},
		Warn: func(s string) { *warns = append(*warns, s) }}
}

func events(bodies []string) []string {
	var out []string
	for _, b := range bodies {
		var ev Event
		_ = json.Unmarshal([]byte(b), &ev)
		out = append(out, ev.Event)
	}
	return out
}

// rollback_started is sent in the background and arrives before the outcome,
// which Finished sends only once the started one is done; a failed started
// delivery is reported by Finished, on the caller's goroutine.
func TestRunNotifierStartThenEnd(t *testing.T) {
	rc := newReceiver(t, reply{status: 500}, reply{status: 200})
	var log lockedBuffer
	var warns []string
	r := runNotifier(rc.URL, &log, &warns)
	r.Notifier.Retries = 0
	res := &runbook.Result{RunID: "r1", Service: "svc", Outcome: "ok"}
	r.Starting(t.Context(), res)
	r.Finished(t.Context(), res)
	bodies, _ := rc.got()
	if got := strings.Join(events(bodies), ","); got != "rollback_started,rollback_complete" {
		t.Errorf("events %s", got)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "notification ops") || !strings.Contains(warns[0], "HTTP 500") {
		t.Errorf("warnings %q", warns)
	}
	if !strings.Contains(log.String(), "attempt 1 of 1 failed: HTTP 500") {
		t.Errorf("log %q", log.String())
	}
}

// Nothing is sent for a dry run, a run refused before it began, or without webhooks.
func TestRunNotifierSilent(t *testing.T) {
	rc := newReceiver(t)
	var warns []string
	r := runNotifier(rc.URL, nil, &warns)
	for _, res := range []*runbook.Result{nil, {RunID: "r1", DryRun: true}, {RunID: ""}} {
		r.Starting(t.Context(), res)
		r.Finished(t.Context(), res)
	}
	r.Hooks = nil
	r.Finished(t.Context(), &runbook.Result{RunID: "r1"})
	if b, _ := rc.got(); len(b) != 0 || len(warns) != 0 {
		t.Errorf("sent %d, warned %q", len(b), warns)
	}
}

// An interrupted run still tells the webhooks, with one quick attempt.
func TestRunNotifierInterrupted(t *testing.T) {
	rc := newReceiver(t, reply{hang: 10 * time.Second})
	var warns []string
	r := runNotifier(rc.URL, nil, &warns)
	r.Notifier.Timeout = 5 * time.Second
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(&runbook.Interrupt{Signal: os.Interrupt})
	start := time.Now()
	r.Finished(ctx, &runbook.Result{RunID: "r1", Service: "svc", Outcome: "interrupted"})
	if d := time.Since(start); d > InterruptedBudget+time.Second {
		t.Errorf("took %s", d)
	}
	if b, _ := rc.got(); len(b) != 1 || len(warns) != 1 || !strings.Contains(warns[0], "after 1 attempts") {
		t.Errorf("sent %d, warned %q", len(b), warns)
	}
}

// A rollback_started still being retried when the run ends gets one more
// notify.timeout, then gives way to the outcome.
func TestRunNotifierStartedSuperseded(t *testing.T) {
	rc := newReceiver(t, reply{status: 503, retryAfter: "30"}, reply{status: 200})
	var warns []string
	r := runNotifier(rc.URL, nil, &warns)
	res := &runbook.Result{RunID: "r1", Service: "svc", Outcome: "ok"}
	start := time.Now()
	r.Starting(t.Context(), res)
	r.Finished(t.Context(), res)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s: the started event's 30s wait held the end", d)
	}
	bodies, _ := rc.got()
	if got := strings.Join(events(bodies), ","); got != "rollback_started,rollback_complete" {
		t.Errorf("events %s", got)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "HTTP 503; then cancelled: superseded by the run's outcome") {
		t.Errorf("warnings %q", warns)
	}
}
