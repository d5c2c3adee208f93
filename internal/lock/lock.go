package lock

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/sys/unix"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// Holder says which process holds the lock.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	RunID   string    `json:"run_id,omitempty"`
	Since   time.Time `json:"since"`
}

// ErrLocked means another process holds the lock. Acquire returns it as a
// *HeldError.
var ErrLocked = errors.New("another cfrollback run holds the lock")

// HeldError is ErrLocked with what is known about the holder.
type HeldError struct {
	Path string
	// Holder is nil when the lock file did not say (it was being written,
	// or was written by something else).
	Holder *Holder
}

func (e *HeldError) Error() string {
	h := e.Holder
	if h == nil {
		return fmt.Sprintf("%v (holder unknown); lock file %s", ErrLocked, e.Path)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v: pid %d", ErrLocked, h.PID)
	if h.Command != "" {
		fmt.Fprintf(&b, " (%s)", h.Command)
	}
	if h.Host != "" {
		fmt.Fprintf(&b, " on host %s", h.Host)
	}
	if !h.Since.IsZero() {
		fmt.Fprintf(&b, " since %s", h.Since.Format(time.RFC3339))
	}
	if h.RunID != "" {
		fmt.Fprintf(&b, ", run %s", h.RunID)
	}
	fmt.Fprintf(&b, "; lock file %s", e.Path)
	return b.String()
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *HeldError) Is(target error) bool { return target == ErrLocked }

// Lock is a held lock.
type Lock struct {
	mu     sync.Mutex
	path   string
	fl     *flock.Flock // nil once released
	holder Holder
}

// Acquire takes the lock at path without waiting. The parent directory is
// created (0755) if missing, the lock file (0600) too; a parent directory other
// users can write, or owned by another user, is refused (fsutil.CheckTrustedDir).
//
// cfrollback runs as root on hosts with other users, so the lock file is never opened
// through a symlink (O_NOFOLLOW: a link planted at the path would make root truncate its
// target), and a lock file that is not a regular file, is owned by another user, or that
// others may write is refused with a message naming it (checked on the path before the open
// and on the open descriptor after it). Mode 0600 keeps other users from opening it to hold
// a shared flock that would block every rollback.
//
// On success the holder is written into the lock file itself: truncate and
// write, through a second descriptor of the same file (checked to be the same
// inode). It is not fsynced: only a live holder's record is ever read (the
// page cache serves it to the other run), and after a crash nobody holds the
// lock and holderOf asks the kernel instead of a stale record. flock is advisory and belongs to the first descriptor's
// open file description, so writing and closing the second one leaves the
// lock alone. Zero fields of h are filled in: PID with this process, Host
// with the hostname, Since with now.
//
// If another process holds the lock, Acquire returns a *HeldError (errors.Is
// ErrLocked) with the holder read from the file. Within one process a second
// Acquire of the same path fails the same way: each Acquire opens the file
// anew, and an flock belongs to an open file, not to a process.
func Acquire(path string, h Holder) (*Lock, error) {
	// The lock's dir must be one other users cannot write (fsutil.MkdirTrusted): there they
	// could replace the lock file between our checks and our open, or remove it to run a
	// second rollback beside ours.
	if err := fsutil.MkdirTrusted(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock directory: %w", err)
	}
	if h.PID == 0 {
		h.PID = os.Getpid()
	}
	if h.Host == "" {
		h.Host, _ = os.Hostname()
	}
	if h.Since.IsZero() {
		h.Since = time.Now()
	}
	h.Since = h.Since.Round(0)

	// If the lock file is deleted and recreated between flock's open and
	// its lock, we hold a lock on a file nobody else can find: retry on the
	// file that is there now.
	if fi, err := os.Lstat(path); err == nil {
		if err := untrusted(path, fi); err != nil {
			return nil, err
		}
	}
	for range 3 {
		fl := flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW), flock.SetPermissions(0o600))
		ok, err := fl.TryLock()
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("lock file %s is a symbolic link: refused (it could point root at any file); remove it and retry", path)
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if fi, err := fl.Stat(); err == nil {
			if err := untrusted(path, fi); err != nil {
				if ok {
					_ = fl.Unlock()
				} else {
					_ = fl.Close()
				}
				return nil, err
			}
		}
		if !ok {
			return nil, &HeldError{Path: path, Holder: holderOf(path)}
		}
		f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW, 0)
		if errors.Is(err, fs.ErrNotExist) {
			_ = fl.Unlock()
			continue
		}
		if err != nil {
			_ = fl.Unlock()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		same, err := sameFile(fl, f)
		if err != nil || !same {
			_ = f.Close()
			_ = fl.Unlock()
			if err != nil {
				return nil, fmt.Errorf("lock %s: %w", path, err)
			}
			continue
		}
		err = writeHolder(f, h)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = fl.Unlock()
			return nil, fmt.Errorf("lock %s: record the holder: %w", path, err)
		}
		return &Lock{path: path, fl: fl, holder: h}, nil
	}
	return nil, fmt.Errorf("lock %s: the lock file kept being replaced while it was being locked", path)
}

// untrusted refuses a lock file that another user could have planted or could change.
func untrusted(path string, fi os.FileInfo) error {
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("lock file %s is a symbolic link: refused (it could point root at any file); remove it and retry", path)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("lock file %s is not a regular file (%s): refused; remove it and retry", path, fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("lock file %s is owned by uid %d, not by this user (uid %d): another user may have planted it; remove it, keep setting lock in a directory only you can write (default /run/cfrollback), and retry",
			path, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("lock file %s is writable by others (mode %04o): refused; remove it and retry", path, fi.Mode().Perm())
	}
	return nil
}

func sameFile(fl *flock.Flock, f *os.File) (bool, error) {
	locked, err := fl.Stat() // stats the locked descriptor while locked
	if err != nil {
		return false, err
	}
	opened, err := f.Stat()
	if err != nil {
		return false, err
	}
	return os.SameFile(locked, opened), nil
}

func writeHolder(f *os.File, h Holder) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.WriteAt(append(b, '\n'), 0)
	return err
}

// holderOf says who holds the lock at path: the record in the file, unless there is none
// or its process is gone (a record left by a killed run under a holder that is not
// cfrollback, such as flock(1) in a script) and the kernel's /proc/locks names the
// holder: then that pid and its command line. A live recorded pid that differs from the
// kernel's is kept: it may be a pid of another pid namespace.
func holderOf(path string) *Holder {
	h := readHolderSettled(path)
	if h != nil && (h.PID <= 0 || unix.Kill(h.PID, 0) != unix.ESRCH) {
		return h
	}
	pid := flockPID(path)
	if pid <= 0 {
		return h
	}
	cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return &Holder{PID: pid, Command: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))}
}

// flockPID is the pid /proc/locks gives for the FLOCK on the file at path, or 0. Lines
// look like "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF" (device in hex).
func flockPID(path string) int {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return 0
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// a waiter's line has "->" after the number
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil {
			return pid
		}
	}
	return 0
}

// readHolderSettled reads the holder, giving a run that has only just
// taken the lock a moment to write it.
func readHolderSettled(path string) *Holder {
	for i := range 5 {
		if h, err := ReadHolder(path); err == nil {
			return h
		}
		time.Sleep(time.Duration(i+1) * 10 * time.Millisecond)
	}
	return nil
}

// ReadHolder reads the holder recorded in the lock file at path. It does
// not say whether the lock is held: a run that was killed leaves its record
// behind until the next Acquire overwrites it. A released lock records no
// holder, which is an error.
func ReadHolder(path string) (*Holder, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read lock holder: %w", err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("read lock holder: %s records no holder", path)
	}
	var h Holder
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("read lock holder from %s: %w", path, err)
	}
	return &h, nil
}

// Holder returns the holder this lock recorded, zero fields filled in.
func (l *Lock) Holder() Holder { return l.holder }

// Path returns the lock file's name.
func (l *Lock) Path() string { return l.path }

// Release empties the lock file, so its holder is not taken for a live one,
// and releases the lock. The file stays: deleting it would let a run that
// has it open lock a file that a third run cannot see. Release is
// idempotent.
func (l *Lock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fl == nil {
		return nil
	}
	var clearErr error
	if f, err := os.OpenFile(l.path, os.O_WRONLY|syscall.O_NOFOLLOW, 0); err == nil {
		if same, serr := sameFile(l.fl, f); serr == nil && same {
			clearErr = f.Truncate(0)
		}
		_ = f.Close()
	}
	err := l.fl.Unlock()
	l.fl = nil
	if err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	if clearErr != nil {
		return fmt.Errorf("unlock %s: clear the holder: %w", l.path, clearErr)
	}
	return nil
}
