package standby

import (
	"context"
	"fmt"
	"os"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// walk calls fn for dir itself (path ".") and every entry under it, depth first, a
// directory before its entries, the entries of a directory in byte order of their names:
// the order filepath.WalkDir visits them in, which the seal's entries are stored in.
//
// It stats each entry relative to its open parent directory (fstatat) rather than by its
// whole path: the kernel then resolves one name instead of every component from the root,
// and no path is built, cleaned and made relative again per entry. On a standby of 72,000
// entries that halved the check (docs/BENCHMARKS.md). A directory is opened with
// O_NOFOLLOW and its descriptor must be the inode the stat saw, so an entry swapped for
// another (or for a symlink) while the walk runs is an error, never walked in its place.
func walk(ctx context.Context, dir string, fn func(Entry, uint64) error) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	if err := fn(entryOf(".", &st), st.Dev); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	fd, err := openDir(unix.AT_FDCWD, dir, &st)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	w := walker{ctx: ctx, root: dir, fn: fn}
	return w.dir(fd, "")
}

type walker struct {
	ctx  context.Context
	root string
	fn   func(Entry, uint64) error
	n    int
}

// dir walks the entries of the open directory fd (rel: its path under the root, "" for
// the root); it closes fd.
func (w *walker) dir(fd int, rel string) error {
	f := os.NewFile(uintptr(fd), rel) //nolint:gosec // fd comes from openDir
	defer f.Close()                   //nolint:errcheck // read-only directory
	names, err := f.Readdirnames(-1)
	if err != nil {
		return &os.PathError{Op: "readdir", Path: w.path(rel), Err: err}
	}
	slices.Sort(names)
	for _, name := range names {
		if w.n++; w.n%1024 == 0 {
			if err := w.ctx.Err(); err != nil {
				return err
			}
		}
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lstat", Path: w.path(p), Err: err}
		}
		if err := w.fn(entryOf(p, &st), st.Dev); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		cfd, err := openDir(fd, name, &st)
		if err != nil {
			return &os.PathError{Op: "open", Path: w.path(p), Err: err}
		}
		if err := w.dir(cfd, p); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) path(rel string) string {
	if rel == "" {
		return w.root
	}
	return w.root + "/" + rel
}

// openDir opens the directory name (relative to dirfd) without following a symlink and
// checks that it is the inode st describes.
func openDir(dirfd int, name string, st *unix.Stat_t) (int, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return -1, err
	}
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	if got.Dev != st.Dev || got.Ino != st.Ino {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("replaced while it was checked (inode %d, now %d): %w", st.Ino, got.Ino, syscall.ESTALE)
	}
	return fd, nil
}

func entryOf(p string, st *unix.Stat_t) Entry {
	return Entry{
		Path: p, Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size,
		MtimeNS: st.Mtim.Nano(), CtimeNS: st.Ctim.Nano(), Ino: st.Ino, Nlink: uint64(st.Nlink),
	}
}
