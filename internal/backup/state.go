package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
// each backup was marked.
//
// One file may be shared by several settings files (the default is under
// state_dir, and two installs on a host may keep one state_dir), so entries
// are kept per install (install_dir) and, within an install, by the
// backup's path. The path is the backup's identity: it costs nothing to
// compute (emergency looks marks up under P0 time pressure, and an archive
// digest or a manifest read per backup would cost a read of each), it is
// unique for the life of the file (names carry the second they were made,
// and create never replaces a backup), and prune forgets a path when it
// deletes the file. A copy put back under the same path is the same backup.
//
// Version 1 files kept one map keyed by file name; those entries are read
// as Backups and, when a scoped store loads them, the one named N moves to
// the current install only if N is a file in the current backup.dir; the
// rest stay for the install they belong to. The next write saves version 2.
type State struct {
	Version  int                      `json:"version"`
	Installs map[string]*InstallState `json:"installs,omitempty"`
	// Backups are version 1 entries no install has claimed yet, and what an
	// unscoped State (see unscoped) keeps, by file name.
	Backups map[string]*BackupState `json:"backups,omitempty"`

	// the scope Get and the setters work in (Store.Install, Store.BackupDir);
	// a zero State works by file name alone
	install, dir string
}

// InstallState is what is known about the backups of one install, by path.
type InstallState struct {
	Backups map[string]*BackupState `json:"backups"`
}

// StateVersion is the format Update writes.
const StateVersion = 2

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

// Get returns the state of the backup with file name name in the current
// install and backup dir (never nil).
func (s *State) Get(name string) *BackupState {
	if s == nil {
		return &BackupState{}
	}
	if s.unscoped() {
		if b := s.Backups[name]; b != nil {
			return b
		}
		for _, install := range sortedKeys(s.Installs) {
			in := s.Installs[install]
			for _, k := range sortedKeys(in.Backups) {
				if filepath.Base(k) == name && in.Backups[k] != nil {
					return in.Backups[k]
				}
			}
		}
		return &BackupState{}
	}
	if in := s.Installs[s.install]; in != nil && in.Backups[s.key(name)] != nil {
		return in.Backups[s.key(name)]
	}
	return &BackupState{}
}

// unscoped is a State read without an install and backup dir (library use,
// a zero State): it works by file name, as version 1 did, in Backups, and
// reads the first entry of that name of any install.
func (s *State) unscoped() bool { return s.install == "" && s.dir == "" }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// key is a backup's identity in its install: its path.
func (s *State) key(name string) string {
	if s.dir == "" {
		return name
	}
	return filepath.Join(s.dir, name)
}

func (s *State) entry(name string) *BackupState {
	if s.unscoped() {
		if s.Backups == nil {
			s.Backups = map[string]*BackupState{}
		}
		if s.Backups[name] == nil {
			s.Backups[name] = &BackupState{}
		}
		return s.Backups[name]
	}
	if s.Installs == nil {
		s.Installs = map[string]*InstallState{}
	}
	in := s.Installs[s.install]
	if in == nil {
		in = &InstallState{}
		s.Installs[s.install] = in
	}
	if in.Backups == nil {
		in.Backups = map[string]*BackupState{}
	}
	k := s.key(name)
	if in.Backups[k] == nil {
		in.Backups[k] = &BackupState{}
	}
	return in.Backups[k]
}

// scope points s at one install and backup dir and claims the version 1
// entries that are this install's: a mark of name N applies to N in dir
// only, so a legacy entry moves here only if dir holds a file named N. With
// no install and no dir (library use) nothing moves: see unscoped.
func (s *State) scope(install, dir string) {
	if install != "" {
		install = filepath.Clean(install)
	}
	if dir != "" {
		dir = filepath.Clean(dir)
	}
	s.install, s.dir = install, dir
	if s.unscoped() {
		return
	}
	for name, b := range s.Backups {
		if b == nil {
			delete(s.Backups, name)
			continue
		}
		if dir != "" {
			if strings.ContainsRune(name, '/') || name == "." || name == ".." {
				continue
			}
			if fi, err := os.Lstat(filepath.Join(dir, name)); err != nil || !fi.Mode().IsRegular() {
				continue
			}
		}
		if in := s.Installs[install]; in == nil || in.Backups[s.key(name)] == nil {
			*s.entry(name) = *b
		}
		delete(s.Backups, name)
	}
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
func (s *State) Forget(name string) {
	if s.unscoped() {
		delete(s.Backups, name)
		return
	}
	if in := s.Installs[s.install]; in != nil {
		delete(in.Backups, s.key(name))
	}
}

// Store reads and writes the state file.
type Store struct {
	Path string
	// CreateDir lets Update create the state file's directory (0700). The
	// backup commands set it; an emergency does not create directories it
	// was not told to.
	CreateDir bool
	// LockTimeout bounds the wait for another writer; zero means 10s.
	LockTimeout time.Duration
	// Install (install_dir) and BackupDir (backup.dir) are the scope of the
	// state Load returns: marks and results of other installs sharing the
	// file are kept but not seen.
	Install   string
	BackupDir string
}

// Load reads the state. A missing file is an empty state, not an error.
func (st Store) Load() (*State, error) {
	b, err := fsutil.ReadFile(st.Path, fsutil.MaxLargeFile)
	if errors.Is(err, fs.ErrNotExist) {
		s := &State{Version: StateVersion}
		s.scope(st.Install, st.BackupDir)
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read backup state %s: %w", st.Path, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("backup state %s is damaged (%w); move it aside and run 'cfrollback backup verify --all' to rebuild it", st.Path, err)
	}
	if s.Version > StateVersion {
		return nil, fmt.Errorf("backup state %s is version %d, newer than this cfrollback knows (%d); use the cfrollback that wrote it, or move it aside", st.Path, s.Version, StateVersion)
	}
	s.scope(st.Install, st.BackupDir)
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
	defer fl.Unlock() //nolint:errcheck // the lock file is closed (and the lock released) with the descriptor anyway
	s, err := st.Load()
	if err != nil {
		return err
	}
	if err := fn(s); err != nil {
		return err
	}
	s.Version = StateVersion
	if len(s.Backups) == 0 {
		s.Backups = nil
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.Write(st.Path, append(b, '\n'), 0o600, fsutil.WriteOptions{}); err != nil {
		return fmt.Errorf("backup state: %w", err) // fsutil.Write names the file
	}
	return nil
}
