package fsutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Size caps of ReadFile for the inputs cfrollback reads whole.
const (
	MaxSmallFile = 16 << 20  // settings, manifests' sidecars, app configs, package.json, checkpoints
	MaxLargeFile = 256 << 20 // backup manifests (a sha256 per file) and agent bundles
)

// ErrNotRegular is returned for a FIFO, socket, device or directory where a file is expected.
var ErrNotRegular = errors.New("not a regular file")

// ReadFile reads the regular file at path, at most limit bytes. A FIFO, a device such as
// /dev/zero (also through a symlink), a socket or a directory is refused without blocking:
// the file is opened O_NONBLOCK (a FIFO's open does not wait for a writer) and checked with
// fstat on the descriptor read, so it cannot be swapped between the check and the read. A
// file over limit is an error, not a truncated read. Errors name the path; a missing file
// still matches fs.ErrNotExist.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, fi, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d this file may have", path, fi.Size(), limit)
	}
	// One buffer of the size fstat gave (plus one byte, to see the end), as os.ReadFile
	// does: io.ReadAll would start at 512 bytes and double, zeroing and copying a
	// multi-megabyte seal or manifest a dozen times.
	b := make([]byte, 0, max(fi.Size()+1, 512))
	for {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return nil, fmt.Errorf("%s: grew past %d bytes while being read", path, limit)
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) { // it grew since fstat: more room
			b = append(b, 0)[:len(b)]
		}
	}
}

// OpenRegular opens path for reading, without blocking, and returns it only if it is a
// regular file (following symlinks): a FIFO's open does not wait for a writer (O_NONBLOCK,
// which changes nothing for a regular file's reads), and the check is fstat on the returned
// descriptor, so the file cannot be swapped between the check and the read.
func OpenRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	return f, fi, nil
}

// RequireRegular checks, without blocking, that path is a regular file (following
// symlinks): for files handed to code that opens them itself (SQLite, tar readers).
func RequireRegular(path string) error {
	f, _, err := OpenRegular(path)
	if err != nil {
		return err
	}
	return f.Close()
}

func kind(m os.FileMode) string { return Kind(m) }

// Kind names a file type for messages: "a FIFO", "a symlink", "a directory", ...
func Kind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "a symlink"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	case m.IsRegular():
		return "a regular file"
	}
	return "not a regular file (" + m.Type().String() + ")"
}
