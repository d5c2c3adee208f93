package guard

import (
	"errors"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/lock"
)

// Status is `guard status`: whether a guard runs, its pause, its memory and
// its last decision.
type Status struct {
	Running bool         `json:"running"`
	Holder  *lock.Holder `json:"holder,omitempty"`
	Paused  bool         `json:"paused"`
	Pause   Pause        `json:"pause"`
	State   State        `json:"state"`
	// RollbacksInWindow counts guard's rollbacks within Policy.Window.
	RollbacksInWindow int        `json:"rollbacks_in_window"`
	Policy            PolicyJSON `json:"policy"`
}

// ReadStatus gathers Status from the files in stateDir; it changes nothing.
func ReadStatus(stateDir string, p Policy, now time.Time) (Status, error) {
	st := Status{Policy: p.json()}
	var err error
	if st.State, err = ReadState(stateDir); err != nil {
		return st, err
	}
	if st.Pause, err = ReadPause(stateDir); err != nil {
		return st, err
	}
	st.Paused = st.Pause.Active(now)
	st.RollbacksInWindow = st.State.ActionsSince(now.Add(-p.Window))
	if h, err := lock.ReadHolder(filepath.Join(stateDir, LockFile)); err == nil && h.PID > 0 {
		// A released lock records no holder; a killed guard's record stays, with a dead pid.
		if err := syscall.Kill(h.PID, 0); err == nil || errors.Is(err, syscall.EPERM) {
			st.Running, st.Holder = true, h
		}
	}
	return st, nil
}
