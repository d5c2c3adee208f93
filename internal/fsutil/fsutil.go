// Package fsutil holds the durable-write helpers every cfrollback package
// shares: a file is replaced whole or not at all, and a rename survives a
// power loss.
package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// WriteOptions vary a durable write (Write, WriteTemp). The zero value writes into an
// existing dir, names the temp file ".<name>.tmp-*" and keeps the owner the process has.
type WriteOptions struct {
	// MkdirPerm, when not 0, creates the missing parent dirs with this mode; else a missing
	// dir is an error.
	MkdirPerm fs.FileMode
	// TempPattern names the temp file in path's dir (an os.CreateTemp pattern: the last
	// "*" becomes a random number). Callers that clean up what a killed write left use
	// their own pattern; "" is ".<name>.tmp-*".
	TempPattern string
	// Chown gives the new file UID:GID before it is renamed into place (to keep the owner
	// of a file being replaced).
	Chown    bool
	UID, GID int
	// NoSymlink refuses (ErrSymlink) to replace a symbolic link at path, as OpenAppend
	// refuses to open one; without it the rename replaces the link itself, never its target.
	NoSymlink bool
	// BeforeRename runs once the temp file is durable and before it is renamed over
	// path (a test's kill point); an error stops the write and removes the temp file.
	BeforeRename func(tmp string) error
}

// WriteFile writes data to path durably: a temp file in the same directory
// (created with the parent dirs if needed, 0755), fsync, rename over path,
// fsync the directory. A crash leaves the old file or the new one, never a
// mix, and no temp file on success or on error.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return Write(path, data, perm, WriteOptions{MkdirPerm: 0o755})
}

// Write is the one durable write every package uses: the temp file is written, given
// perm (and o's owner), fsynced and closed (WriteTemp), renamed over path, and path's dir
// is fsynced (SyncDir). On an error nothing is left but the old file. Errors name path.
func Write(path string, data []byte, perm fs.FileMode, o WriteOptions) error {
	dir := filepath.Dir(path)
	if o.MkdirPerm != 0 {
		if err := os.MkdirAll(dir, o.MkdirPerm); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if o.NoSymlink {
		if err := refuseSymlink(path); err != nil {
			return err
		}
	}
	if o.TempPattern == "" {
		o.TempPattern = "." + filepath.Base(path) + ".tmp-*"
	}
	tmp, err := WriteTemp(dir, data, perm, o)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if o.BeforeRename != nil {
		err = o.BeforeRename(tmp)
	}
	if err == nil && o.NoSymlink {
		err = refuseSymlink(path)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteTemp is the first half of Write, for callers that put the file in place
// themselves (a rename that must not replace anything): a new temp file in dir named
// by o.TempPattern (required), holding data with perm (and o's owner), fsynced and
// closed. It returns the temp file's path; on an error no temp file is left.
func WriteTemp(dir string, data []byte, perm fs.FileMode, o WriteOptions) (string, error) {
	if o.TempPattern == "" {
		return "", errors.New("write temp: no name pattern")
	}
	f, err := os.CreateTemp(dir, o.TempPattern)
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && o.Chown {
		if err = f.Chown(o.UID, o.GID); err != nil {
			err = fmt.Errorf("keep owner %d:%d: %w", o.UID, o.GID, err)
		}
	}
	if err == nil {
		// after the chown, which may clear set-id bits
		err = f.Chmod(perm)
	}
	if err == nil {
		err = syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

func refuseSymlink(path string) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s %w; remove it and retry", path, ErrSymlink)
	}
	return nil
}

// syncFile is (*os.File).Sync, swapped in tests to play a filesystem that cannot sync a
// dir (EINVAL) or a disk that fails (EIO).
var syncFile = (*os.File).Sync

// SyncDir fsyncs a directory so that entries created or renamed in it are
// durable. Filesystems that cannot sync a directory (EINVAL) are accepted.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close() //nolint:errcheck // a directory opened for fsync, which is checked
	if err := syncFile(d); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// QuotePath quotes a path (or any word) for a shell command printed for people to paste:
// as it is when it holds only characters no shell treats specially, else in single quotes.
func QuotePath(s string) string {
	if s != "" && strings.IndexFunc(s, func(c rune) bool {
		return !(c == '/' || c == '-' || c == '_' || c == '.' || c == ':' || c == '=' || c == '@' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
