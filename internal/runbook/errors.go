package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Sentinels that internal/cli maps to exit codes (docs/EXIT_CODES.md).
var (
	// ErrPreflight: nothing was changed and the service was never stopped (exit 3).
	ErrPreflight = errors.New("preflight failed; nothing was changed")
	// ErrAfterStop: a step failed after the service was stopped (exit 4).
	ErrAfterStop = errors.New("failed after the service was stopped")
	// ErrUnhealthy: restored, but the service did not become healthy (exit 5).
	ErrUnhealthy = errors.New("restored but the service is not healthy")
)

// StepError says which step failed and whether the service had been stopped.
type StepError struct {
	Step      string
	AfterStop bool
	Err       error
	Hint      string
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s: %v", e.Step, e.Err)
}

func (e *StepError) Unwrap() []error {
	if e.AfterStop {
		return []error{e.Err, ErrAfterStop}
	}
	return []error{e.Err, ErrPreflight}
}

// ErrInterrupted means the operator stopped the run (SIGINT, SIGTERM). internal/cli cancels the
// run's context with an *Interrupt as its cause; Interruption reads it back.
var ErrInterrupted = errors.New("interrupted")

// Interrupt is the cause of a context cancelled by a signal.
type Interrupt struct{ Signal os.Signal }

func (e *Interrupt) Error() string {
	switch e.Signal {
	case syscall.SIGINT:
		return "interrupted by SIGINT (Ctrl-C)"
	case syscall.SIGTERM:
		return "interrupted by SIGTERM"
	}
	return "interrupted by " + e.Signal.String()
}

// Is makes an *Interrupt match ErrInterrupted.
func (e *Interrupt) Is(target error) bool { return target == ErrInterrupted }

// Interruption returns the signal's *Interrupt when ctx ended because the operator stopped
// the run, nil when ctx is live or ended for another reason (a --timeout, a step's deadline).
func Interruption(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	if c := context.Cause(ctx); errors.Is(c, ErrInterrupted) {
		return c
	}
	return nil
}

// detachUnlessInterrupted is ctx without its deadline or cancel (a --timeout must not stop
// a put-back), except that it still ends when the operator interrupts the run.
func detachUnlessInterrupted(ctx context.Context) (context.Context, context.CancelFunc) {
	d, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	if c := Interruption(ctx); c != nil {
		cancel(c)
		return d, func() { cancel(nil) }
	}
	stop := context.AfterFunc(ctx, func() {
		if c := Interruption(ctx); c != nil {
			cancel(c)
		}
	})
	return d, func() { stop(); cancel(nil) }
}
