package runbook

import (
	"errors"
	"fmt"
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
