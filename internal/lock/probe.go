package lock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Probe reports, without waiting and without taking it from anyone, whether a
// process holds the lock at path: it tries a shared flock on the file and lets
// go of it at once. A holder's exclusive flock refuses it and is not touched.
// Unlike the pid recorded in the file, this holds across pid namespaces (a
// holder in a container or a sandboxed systemd unit) and for a holder that
// did not record itself. A missing file is not held; the file is opened
// read-only, never through a symlink, never created.
//
// While a free lock is probed (microseconds) an Acquire at that very moment
// finds it taken: a caller that must not lose that race retries once.
func Probe(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if errors.Is(err, unix.ELOOP) {
		return false, fmt.Errorf("probe lock %s: a symbolic link: refused", path)
	}
	if err != nil {
		return false, fmt.Errorf("probe lock %s: %w", path, err)
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false, fmt.Errorf("probe lock %s: not a regular file", path)
	}
	fd := int(f.Fd()) //nolint:gosec // a file descriptor fits in int
	err = unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("probe lock %s: %w", path, err)
	}
	_ = unix.Flock(fd, unix.LOCK_UN)
	return false, nil
}
