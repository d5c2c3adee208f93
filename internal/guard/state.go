package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// Files in state_dir.
const (
	StateFile   = "guard-state.json"    // State, written by the running guard only
	PauseFile   = "guard-pause.json"    // Pause, written by guard pause / resume
	LockFile    = "guard.lock"          // held by the running guard: one guard at a time
	SamplesFile = "guard-samples.jsonl" // guard's own sample store (monitor keeps monitor.jsonl)
)

// Pause is `guard pause`: while it is active guard samples and judges, and
// a decision to act becomes would_have_acted.
type Pause struct {
	Paused bool      `json:"paused"`
	Since  time.Time `json:"since,omitzero"`
	// Until is zero for "until guard resume".
	Until  time.Time `json:"until,omitzero"`
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// Active reports whether the pause holds at now.
func (p Pause) Active(now time.Time) bool {
	return p.Paused && (p.Until.IsZero() || now.Before(p.Until))
}

func (p Pause) String() string {
	s := "since " + p.Since.Format(time.RFC3339)
	if p.By != "" {
		s += " by " + p.By
	}
	if p.Until.IsZero() {
		s += ", until 'cfrollback guard resume'"
	} else {
		s += ", until " + p.Until.Format(time.RFC3339)
	}
	if p.Reason != "" {
		s += " (" + p.Reason + ")"
	}
	return s
}

// State is what the running guard writes after every evaluation: its
// Memory, and the last decision for `guard status`.
type State struct {
	Memory
	Updated  time.Time `json:"updated,omitzero"`
	PID      int       `json:"pid,omitempty"`
	DryRun   bool      `json:"dry_run,omitempty"`
	Last     *Decision `json:"last,omitempty"`
	Met      []string  `json:"met,omitempty"` // the conditions met at the last evaluation
	Interval string    `json:"interval,omitempty"`
}

// ReadState reads guard-state.json; none is the zero State.
func ReadState(stateDir string) (State, error) {
	var s State
	return s, readJSON(filepath.Join(stateDir, StateFile), &s)
}

// WriteState stores s durably (root's trusted write: never through a
// symlink, never in a dir others can write).
func WriteState(stateDir string, s State) error {
	return writeJSON(filepath.Join(stateDir, StateFile), s)
}

// ReadPause reads guard-pause.json; none is not paused.
func ReadPause(stateDir string) (Pause, error) {
	var p Pause
	return p, readJSON(filepath.Join(stateDir, PauseFile), &p)
}

// WritePause stores p durably.
func WritePause(stateDir string, p Pause) error {
	return writeJSON(filepath.Join(stateDir, PauseFile), p)
}

// SampleStore is guard's own sample store: a restarted guard keeps its window.
func SampleStore(stateDir string, retention time.Duration) assess.Store {
	return assess.Store{Path: filepath.Join(stateDir, SamplesFile), Retention: retention, MaxSamples: 200_000}
}

func readJSON(path string, v any) error {
	b, err := fsutil.ReadFile(path, fsutil.MaxSmallFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w (move it aside to start afresh)", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WithKey(fsutil.WriteFileTrusted(path, append(b, '\n'), 0o644), "state_dir")
}
