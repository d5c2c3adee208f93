package install

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// FileID identifies a directory across renames: a swap is detected by the
// install path now having the inode the staging dir had.
type FileID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// IDOf returns the device and inode of path (not following a final symlink).
func IDOf(path string) (FileID, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return FileID{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return FileID{Dev: uint64(st.Dev), Ino: st.Ino}, nil
}

// Exchange atomically swaps the directory entries a and b, which must be on
// the same filesystem. If the kernel or filesystem cannot exchange, it falls
// back to renaming a to fallbackAside, then b to a, and reports fellBack.
// In that fallback, b's old name is left empty: the caller must treat
// fallbackAside as where a's old content went.
func Exchange(a, b, fallbackAside string) (fellBack bool, err error) {
	return ExchangeWith(a, b, fallbackAside, ExchangeOptions{})
}

// ExchangeOptions are test hooks: crash tests need the two-rename fallback on
// a filesystem that can exchange, and a point between its renames to die at.
type ExchangeOptions struct {
	// TwoRenames skips RENAME_EXCHANGE, as if the filesystem refused it.
	TwoRenames bool
	// BetweenRenames, when set, runs in the fallback after a has been
	// renamed to fallbackAside and before b is renamed to a: the moment
	// the path a does not exist.
	BetweenRenames func()
}

// ExchangeWith is Exchange with test hooks.
func ExchangeWith(a, b, fallbackAside string, opt ExchangeOptions) (fellBack bool, err error) {
	if !opt.TwoRenames {
		err = unix.Renameat2(unix.AT_FDCWD, b, unix.AT_FDCWD, a, unix.RENAME_EXCHANGE)
		if err == nil {
			return false, fsutil.SyncDir(filepath.Dir(a))
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
			return false, fmt.Errorf("exchange %s with %s: %w", a, b, err)
		}
	}
	if err := Rename(a, fallbackAside); err != nil {
		return true, err
	}
	if opt.BetweenRenames != nil {
		opt.BetweenRenames()
	}
	if err := Rename(b, a); err != nil {
		return true, err
	}
	return true, nil
}

// Rename renames old to new, refusing to replace an existing new, and fsyncs
// the parent directories so the rename survives a power loss.
func Rename(oldPath, newPath string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, unix.RENAME_NOREPLACE); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			if _, serr := os.Lstat(newPath); serr == nil {
				return fmt.Errorf("rename %s to %s: %w", oldPath, newPath, os.ErrExist)
			}
			err = os.Rename(oldPath, newPath)
		}
		if err != nil {
			return fmt.Errorf("rename %s to %s: %w", oldPath, newPath, err)
		}
	}
	if err := fsutil.SyncDir(filepath.Dir(newPath)); err != nil {
		return err
	}
	if filepath.Dir(oldPath) != filepath.Dir(newPath) {
		return fsutil.SyncDir(filepath.Dir(oldPath))
	}
	return nil
}

// Exists reports whether path exists (without following a final symlink).
func Exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
