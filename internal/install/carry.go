package install

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// CarryStats counts what a carry-over copied.
type CarryStats struct {
	Paths   []string `json:"paths"`
	Files   int      `json:"files"`
	Bytes   int64    `json:"bytes"`
	Skipped []string `json:"skipped,omitempty"` // preserved paths absent from the old tree
}

// CarryOver copies preserved paths from the old install (service stopped)
// into the staged tree. A preserved path replaces whatever the backup had
// there. The old tree is only read, so the failed install stays intact for
// investigation. Copies, not hard links: SQLite rewrites pages in place, and
// a shared inode would let the restored service change the failed dir.
func CarryOver(oldRoot, newRoot string, preserve []string) (CarryStats, error) {
	var st CarryStats
	for _, p := range preserve {
		rel := filepath.Clean(p)
		if filepath.IsAbs(rel) || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			return st, fmt.Errorf("carry over %q: not a path inside the install dir", p)
		}
		src := filepath.Join(oldRoot, rel)
		if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
			st.Skipped = append(st.Skipped, rel)
			continue
		} else if err != nil {
			return st, fmt.Errorf("carry over %s: %w", rel, err)
		}
		if err := refuseSymlinkParents(oldRoot, rel); err != nil {
			return st, err
		}
		if err := refuseSymlinkParents(newRoot, rel); err != nil {
			return st, err
		}
		dst := filepath.Join(newRoot, rel)
		if err := os.RemoveAll(dst); err != nil {
			return st, fmt.Errorf("carry over %s: clear the backup's copy: %w", rel, err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return st, fmt.Errorf("carry over %s: %w", rel, err)
		}
		files, n, err := CopyTree(src, dst)
		st.Files += files
		st.Bytes += n
		if err != nil {
			return st, fmt.Errorf("carry over %s: %w", rel, err)
		}
		st.Paths = append(st.Paths, rel)
	}
	return st, nil
}

// Overlay copies every entry of oldRoot that newRoot lacks into newRoot:
// the result equals the seed's `tar -xzf backup --overwrite` run inside the
// old install (backup wins, files the backup lacks are kept).
func Overlay(oldRoot, newRoot string) (CarryStats, error) {
	var st CarryStats
	err := filepath.WalkDir(oldRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(oldRoot, p)
		if rel == "." {
			return nil
		}
		dst := filepath.Join(newRoot, rel)
		info, lerr := os.Lstat(dst)
		switch {
		case lerr == nil && info.IsDir() && d.IsDir():
			return nil // both have the dir: descend and merge
		case lerr == nil:
			if d.IsDir() {
				return fs.SkipDir // backup has a non-dir here: backup wins
			}
			return nil
		case !errors.Is(lerr, fs.ErrNotExist):
			return lerr
		}
		files, n, err := CopyTree(p, dst)
		st.Files += files
		st.Bytes += n
		if err != nil {
			return err
		}
		st.Paths = append(st.Paths, rel)
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("overlay %s onto the backup: %w", oldRoot, err)
	}
	return st, nil
}

func refuseSymlinkParents(root, rel string) error {
	cur := root
	parts := strings.Split(rel, string(filepath.Separator))
	for _, part := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("preserved path %s: %s is a symlink; refusing to follow it", rel, cur)
		}
	}
	return nil
}

// CopyTree copies src (file, symlink or directory) to dst, which must not
// exist, keeping modes, owners and mtimes. Special files are refused.
func CopyTree(src, dst string) (files int, bytes int64, err error) {
	type dirTime struct {
		path string
		info fs.FileInfo
	}
	var dirs []dirTime
	err = filepath.Walk(src, func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch mode := info.Mode(); {
		case mode.IsDir():
			if err := os.Mkdir(target, mode.Perm()|0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{target, info})
			return nil
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			return lchownLike(target, info)
		case mode.IsRegular():
			n, err := copyFile(p, target, info)
			files++
			bytes += n
			return err
		default:
			return fmt.Errorf("%s: %s is not a regular file, directory or symlink; move it away and retry", p, mode.Type())
		}
	})
	if err != nil {
		return files, bytes, err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := os.Chmod(d.path, d.info.Mode().Perm()); err != nil {
			return files, bytes, err
		}
		if err := lchownLike(d.path, d.info); err != nil {
			return files, bytes, err
		}
		if err := os.Chtimes(d.path, d.info.ModTime(), d.info.ModTime()); err != nil {
			return files, bytes, err
		}
	}
	return files, bytes, nil
}

func copyFile(src, dst string, info fs.FileInfo) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close() //nolint:errcheck // opened read-only: nothing to lose
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return 0, err
	}
	// io.Copy uses copy_file_range, which reflinks on filesystems that can.
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if err := os.Chmod(dst, info.Mode().Perm()); err != nil {
		return n, err
	}
	if err := lchownLike(dst, info); err != nil {
		return n, err
	}
	return n, os.Chtimes(dst, info.ModTime(), info.ModTime())
}

func lchownLike(path string, info fs.FileInfo) error {
	st, ok := info.Sys().(*unix.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, int(st.Uid), int(st.Gid))
}

// TreeSize sums the regular-file bytes under root (0 when absent).
func TreeSize(root string) (int64, error) {
	var total int64
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total, err
}

// FreeBytes is the space available to unprivileged users on path's filesystem.
func FreeBytes(path string) (int64, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return int64(s.Bavail) * int64(s.Bsize), nil //nolint:gosec // overflows only past 8 EiB free
}
