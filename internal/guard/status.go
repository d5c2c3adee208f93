package guard

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/lock"
)

// Status is `guard status`: whether a guard runs, its pause, its memory and
// its last decision.
type Status struct {
	// Running is whether a process holds guard.lock (lock.Probe), whatever pid
	// namespace it runs in.
	Running bool `json:"running"`
	// Holder is the holder the lock file records, for information: its pid is
	// of the guard's own pid namespace (the unit's sandbox may have its own).
	Holder *lock.Holder `json:"holder,omitempty"`
	// Note says how Running was judged when the lock could not be probed.
	Note   string `json:"note,omitempty"`
	Paused bool   `json:"paused"`
	Pause  Pause  `json:"pause"`
	State  State  `json:"state"`
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
	path := filepath.Join(stateDir, LockFile)
	held, err := lock.Probe(path)
	if err != nil {
		// not ours to open (guard.lock is root's, mode 0600): the recorded pid is the next best
		st.Holder, st.Running = Held(path)
		st.Note = fmt.Sprintf("%v; judged by the recorded pid instead, which is wrong when guard runs in another pid namespace (run this as root)", err)
		return st, nil
	}
	st.Running = held
	if held {
		st.Holder, _ = lock.ReadHolder(path)
	}
	return st, nil
}

// Held says whether the lock file at path records a holder whose process is
// alive, and who: a released lock records no holder, and a killed run's
// record stays with a dead pid. A pid of another pid namespace may be taken
// for alive or for dead: lock.Probe is the answer where the lock can be opened.
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

// RunLockHolder says whether another process holds the run lock at path (lock.Probe,
// whatever its pid namespace) and who it records: guard does not act over it.
func RunLockHolder(path string) (string, bool) {
	held, err := lock.Probe(path)
	if err != nil {
		h, held := Held(path)
		if !held {
			return "", false
		}
		return fmt.Sprintf("pid %d, %s", h.PID, h.Command), true
	}
	if !held {
		return "", false
	}
	if h, err := lock.ReadHolder(path); err == nil {
		return fmt.Sprintf("pid %d, %s", h.PID, h.Command), true
	}
	return "holder not recorded", true
}
