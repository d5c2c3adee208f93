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
	st.Holder, st.Running = Held(filepath.Join(stateDir, LockFile))
	return st, nil
}

// Held says whether the lock file at path records a holder whose process is
// alive, and who: a released lock records no holder, and a killed run's
// record stays with a dead pid. (A pid of another pid namespace may be taken
// for alive; the lock itself, not this, is what keeps two runs apart.)
func Held(path string) (*lock.Holder, bool) {
	h, err := lock.ReadHolder(path)
	if err != nil || h.PID <= 0 {
		return nil, false
	}
	if err := syscall.Kill(h.PID, 0); err == nil || errors.Is(err, syscall.EPERM) {
		return h, true
	}
	return nil, false
}
