package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// InterruptedBudget is all the time an interrupted run spends telling the
// webhooks: one quick attempt each, as the operator expects the command to end.
const InterruptedBudget = 500 * time.Millisecond

// RunNotifier tells notify.webhooks about one run: Starting (the runbook's
// Notifier, called before the stop) sends rollback_started in the background
// so the rollback does not wait for it; Finished waits for that, then sends
// the outcome. Neither ever changes the run's outcome or exit code.
type RunNotifier struct {
	Notifier *Notifier
	Hooks    []settings.Webhook
	// Warn gets one line per webhook that was not delivered, for a person.
	Warn func(string)

	started       sync.WaitGroup
	cancelStarted context.CancelCauseFunc
	startedMu     sync.Mutex
	// startedLog holds the started sender's attempt lines until Finished
	// prints them: the run is writing its progress to the same stream.
	startedLog bytes.Buffer
	startedRes []Delivery
}

var _ runbook.Notifier = (*RunNotifier)(nil)

// NewRun is the RunNotifier for the settings; log gets the failed attempts.
func NewRun(cfg settings.NotifyConfig, log io.Writer, userAgent string, warn func(string)) *RunNotifier {
	return &RunNotifier{Notifier: New(cfg, log, userAgent), Hooks: cfg.Webhooks, Warn: warn}
}

var _ runbook.ChangeNotifier = (*RunNotifier)(nil)

// Starting sends rollback_started (undo_started) in the background (a dry run sends nothing).
func (r *RunNotifier) Starting(ctx context.Context, res *runbook.Result) {
	if len(r.Hooks) == 0 || res == nil || res.DryRun || res.RunID == "" {
		return
	}
	r.startInBackground(ctx, Started(res))
}

// ChangeStarted sends change_started in the background.
func (r *RunNotifier) ChangeStarted(ctx context.Context, n runbook.Notice) {
	if len(r.Hooks) == 0 || n.RunID == "" {
		return
	}
	r.startInBackground(ctx, FromNotice(n))
}

// ChangeFinished waits for change_started, then sends change_complete or change_failed
// (as Finished does for a rollback).
func (r *RunNotifier) ChangeFinished(ctx context.Context, n runbook.Notice) {
	if n.RunID == "" {
		r.finish(ctx, nil)
		return
	}
	ev := FromNotice(n)
	r.finish(ctx, &ev)
}

// startInBackground sends ev without waiting; Finished waits for it.
func (r *RunNotifier) startInBackground(ctx context.Context, ev Event) {
	n := r.quiet()
	ctx, r.cancelStarted = context.WithCancelCause(ctx)
	r.started.Add(1)
	go func() {
		defer r.started.Done()
		d := n.Send(ctx, r.Hooks, ev)
		r.startedMu.Lock()
		r.startedRes = d
		r.startedMu.Unlock()
	}()
}

// quiet is the Notifier with its log held in startedLog.
func (r *RunNotifier) quiet() *Notifier {
	n := r.Notifier.clone()
	if r.Notifier.Log != nil {
		n.Log = &r.startedLog // written under n's own lock, read after Wait
	}
	return n
}

// Finished waits for rollback_started, then sends the run's outcome
// (FromRun). A rollback_started still being retried gets one more
// notify.timeout and is then dropped: the outcome supersedes it, and a run's
// notifications hold its command at most that plus one Budget. A run cut short by the operator still gets its message, with one
// quick attempt per hook (InterruptedBudget); one that hit its --timeout gets
// the full retries; otherwise ctx ends the sending at once (Ctrl-C). A dry
// run, or one refused before it began (no run id), sends nothing.
func (r *RunNotifier) Finished(ctx context.Context, res *runbook.Result) {
	if res == nil || res.DryRun || res.RunID == "" {
		r.finish(ctx, nil)
		return
	}
	ev := FromRun(res)
	r.finish(ctx, &ev)
}

// finish is Finished with the outcome's event (nil: none to send).
func (r *RunNotifier) finish(ctx context.Context, ev *Event) {
	r.waitStarted()
	if r.startedLog.Len() > 0 && r.Notifier.Log != nil {
		_, _ = r.Notifier.Log.Write(r.startedLog.Bytes())
		r.startedLog.Reset()
	}
	r.warn(r.startedRes)
	r.startedRes = nil
	if len(r.Hooks) == 0 || ev == nil {
		return
	}
	n := r.Notifier
	if runbook.Interruption(ctx) != nil {
		n = n.clone()
		n.Retries = 0
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), InterruptedBudget)
		defer cancel()
	} else if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	r.warn(n.Send(ctx, r.Hooks, *ev))
}

var errSuperseded = errors.New("superseded by the run's outcome")

// waitStarted lets a rollback_started in flight end, or cuts its retries.
func (r *RunNotifier) waitStarted() {
	if r.cancelStarted == nil {
		return
	}
	defer r.cancelStarted(nil)
	done := make(chan struct{})
	go func() {
		r.started.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(r.Notifier.Timeout):
		r.cancelStarted(errSuperseded)
		<-done
	}
}

func (r *RunNotifier) warn(ds []Delivery) {
	for _, d := range ds {
		if !d.OK && r.Warn != nil {
			r.Warn(fmt.Sprintf("notification %s (%s) not delivered after %d attempts: %s; the run itself is unaffected",
				d.Name, d.URL, d.Attempts, d.Error))
		}
	}
}
