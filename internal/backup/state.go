package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gofrs/flock"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// Mark values.
const (
	MarkGood = "good"
	MarkBad  = "bad"
)

// State is the catalog's memory (backup.state): what verify found and how
// each backup was marked, keyed by archive file name.
type State struct {
	Version int                     `json:"version"`
	Backups map[string]*BackupState `json:"backups"`
}

// BackupState is what is known about one backup.
type BackupState struct {
	Verify *VerifyRecord `json:"verify,omitempty"`
	Mark   *Mark         `json:"mark,omitempty"`
}

// VerifyRecord is the last verification of a backup.
type VerifyRecord struct {
	OK     bool      `json:"ok"`
	Time   time.Time `json:"time"`
	Deep   bool      `json:"deep"`
	SHA256 string    `json:"sha256,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// Mark says a backup is known good or bad, and who said so.
type Mark struct {
	Value  string    `json:"value"` // good | bad
	Time   time.Time `json:"time"`
	Reason string    `json:"reason,omitempty"`
	// By is "manual" (cfrollback backup mark) or the command of the run
	// that set it (emergency, rollback); RunID names that run.
	By    string `json:"by"`
	RunID string `json:"run_id,omitempty"`
}

// Get returns the state of the backup with file name name (never nil).
func (s *State) Get(name string) *BackupState {
	if s == nil || s.Backups[name] == nil {
		return &BackupState{}
	}
	return s.Backups[name]
}

func (s *State) entry(name string) *BackupState {
	if s.Backups == nil {
		s.Backups = map[string]*BackupState{}
	}
	if s.Backups[name] == nil {
		s.Backups[name] = &BackupState{}
	}
	return s.Backups[name]
}

// SetMark records a mark by hand: it always wins.
func (s *State) SetMark(name string, m Mark) { s.entry(name).Mark = &m }

// AutoMark records the mark a run's outcome implies, without flip-flop: a
// bad mark stays until a person clears it (a backup that restored into an
// unhealthy service once is not trusted again because a later restore of
// it happened to pass), and a mark set by hand is never overwritten by a
// run. It reports whether the mark was recorded.
func (s *State) AutoMark(name string, m Mark) bool {
	cur := s.Get(name).Mark
	switch {
	case cur == nil:
	case cur.By == "manual":
		return false
	case cur.Value == MarkBad && m.Value == MarkGood:
		return false
	}
	s.entry(name).Mark = &m
	return true
}

// SetVerify records a verification result.
func (s *State) SetVerify(name string, v VerifyRecord) { s.entry(name).Verify = &v }

// Forget drops what is known about a deleted backup.
func (s *State) Forget(name string) { delete(s.Backups, name) }

// Store reads and writes the state file.
type Store struct {
	Path string
	// CreateDir lets Update create the state file's directory (0700). The
	// backup commands set it; an emergency does not create directories it
	// was not told to.
	CreateDir bool
	// LockTimeout bounds the wait for another writer; zero means 10s.
	LockTimeout time.Duration
}

// Load reads the state. A missing file is an empty state, not an error.
func (st Store) Load() (*State, error) {
	b, err := fsutil.ReadFile(st.Path, fsutil.MaxLargeFile)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: 1, Backups: map[string]*BackupState{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read backup state %s: %w", st.Path, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("backup state %s is damaged (%v); move it aside and run 'cfrollback backup verify --all' to rebuild it", st.Path, err)
	}
	if s.Backups == nil {
		s.Backups = map[string]*BackupState{}
	}
	return &s, nil
}

// Update runs fn on the current state and writes the result durably, under
// an flock on Path+".lock" so that two writers do not lose each other's
// results. fn's error aborts the write.
func (st Store) Update(ctx context.Context, fn func(*State) error) error {
	dir := filepath.Dir(st.Path)
	// Root replaces the state file and creates its lock in dir: it must be a dir other users
	// cannot write (fsutil.CheckTrustedDir), created or not.
	if st.CreateDir {
		if err := fsutil.MkdirTrusted(dir, 0o700); err != nil {
			return fmt.Errorf("backup state dir: %w", fsutil.WithKey(err, "backup.state"))
		}
	} else if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("backup state dir: %w (any 'cfrollback backup' command creates it)", err)
	} else if err := fsutil.CheckTrustedDir(dir); err != nil {
		return fmt.Errorf("backup state dir: %w", fsutil.WithKey(err, "backup.state"))
	}
	timeout := st.LockTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fl := flock.New(st.Path+".lock", flock.SetFlag(os.O_CREATE|os.O_RDONLY|syscall.O_NOFOLLOW))
	ok, err := fl.TryLockContext(lctx, 20*time.Millisecond)
	switch {
	case err != nil && lctx.Err() == nil:
		// the lock file cannot be opened or locked: permissions, a read-only or full
		// filesystem; not a writer that holds it
		return fmt.Errorf("lock backup state %s.lock: %w; check that this user can write %s", st.Path, err, dir)
	case err != nil || !ok:
		return fmt.Errorf("lock backup state %s.lock: another cfrollback has been writing it for over %s; retry", st.Path, timeout)
	}
	defer fl.Unlock()
	s, err := st.Load()
	if err != nil {
		return err
	}
	if err := fn(s); err != nil {
		return err
	}
	s.Version = 1
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileDurable(st.Path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write backup state %s: %w", st.Path, err)
	}
	return nil
}
