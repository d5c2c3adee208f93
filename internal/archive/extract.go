package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ExtractOptions says how to extract. The zero value chowns everything to
// root (UID and GID 0); use -1 to leave an id as the extracting process's.
type ExtractOptions struct {
	Limits   Limits
	UID, GID int // owner of every restored entry, dest included; -1 leaves that id alone
	Progress Progress
	// AfterEntry, when set, is called after each entry is written, with
	// the number written so far. A test hook: crash tests die inside an
	// extraction with it.
	AfterEntry func(n int)
}

// Extract restores the archive at archivePath into dest, which must not exist
// (its parent must). dest is created with mode 0700 so nothing half-written is
// visible to others; at the end it gets the mode of the archive's "./" entry,
// or 0755 when the archive has none.
//
// Every entry is checked as Verify checks it before anything is written, and
// all writes go through an os.Root opened on dest, so nothing outside dest is
// written even if a rule were wrong. On any error, cancellation included, dest
// is removed again: the caller sees either a complete tree or none.
//
// Restored: regular files, directories (empty ones too), symlinks and hard
// links, with permission bits (setuid, setgid and sticky dropped) and
// modification times (symlinks included; directories last, deepest first, so
// that creating their children does not undo them). Small files and symlinks
// are written by several goroutines at once (see extract_parallel.go); all
// of them have finished before hard links are made, directories finished
// and the tree synced. Before returning, one syncfs makes the whole tree
// durable, so the caller can swap it in; a background syncfs every
// writebackBatchBytes has written most data by then (extract_writeback.go).
func Extract(ctx context.Context, archivePath, dest string, opt ExtractOptions) (Summary, error) {
	if dest == "" {
		return Summary{}, errors.New("extract: empty destination path")
	}
	dest = filepath.Clean(dest)
	parent := filepath.Dir(dest)
	if fi, err := os.Stat(parent); err != nil {
		return Summary{}, fmt.Errorf("extract: destination's parent: %w", err)
	} else if !fi.IsDir() {
		return Summary{}, fmt.Errorf("extract: destination's parent %s is not a directory", parent)
	}
	// Mkdir, not MkdirAll, and no removal when it fails: if dest appeared
	// meanwhile it belongs to someone else.
	if err := os.Mkdir(dest, 0o700); err != nil {
		return Summary{}, fmt.Errorf("extract: create destination: %w", err)
	}
	sum, err := extractInto(ctx, archivePath, dest, opt)
	if err != nil {
		if rmErr := removeTree(dest); rmErr != nil {
			return Summary{}, fmt.Errorf("%w (and removing the partial tree %s failed: %v)", err, dest, rmErr) //nolint:errorlint // the failed removal is context; callers match the extraction error
		}
		return Summary{}, err
	}
	return sum, nil
}

func extractInto(ctx context.Context, archivePath, dest string, opt ExtractOptions) (Summary, error) {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return Summary{}, fmt.Errorf("extract: %w", err)
	}
	x := &extractor{
		root:  root,
		uid:   opt.UID,
		gid:   opt.GID,
		chown: opt.UID != -1 || opt.GID != -1,
		dirs:  map[string]*dirMeta{".": {mode: 0o755}},
		umask: readUmask(),
	}
	defer x.close()
	// Opened before any file is written: syncfs reports the writeback
	// errors that happened since its descriptor was opened, and the
	// writeback starts during the extraction (extract_writeback.go).
	if x.syncDir, err = root.Open("."); err != nil {
		return Summary{}, fmt.Errorf("extract: %w", err)
	}
	if err := x.lchown("."); err != nil {
		return Summary{}, err
	}
	if spreadDirs {
		x.topDir = setTopDir(root)
	}
	x.wb = newWriteback(root)
	p := newPipeline(x, extractWriters, opt.AfterEntry)
	sum, err := scan(ctx, archivePath, opt.Limits, opt.Progress, p.visit)
	// Every writer is done before anything else happens: before the hard
	// links (their targets must be complete), before finishDirs, before
	// syncfs, and before Extract removes a partial tree.
	if werr := p.wait(err); werr != nil {
		err = werr
	}
	if err == nil {
		err = p.linkAll()
	}
	x.wb.stop()
	if err != nil {
		return Summary{}, fmt.Errorf("%s: %w", archivePath, err)
	}
	if err := x.finishDirs(); err != nil {
		return Summary{}, err
	}
	if err := x.sync(); err != nil {
		return Summary{}, err
	}
	return sum, nil
}

type dirMeta struct {
	mode         fs.FileMode
	atime, mtime time.Time
	hasTimes     bool // false for parents no entry named: their mtime is left alone
}

type extractor struct {
	root     *os.Root
	uid, gid int
	chown    bool
	dirs     map[string]*dirMeta
	umask    int        // the process's, read once; -1 when unknown
	topDir   bool       // dest has FS_TOPDIR_FL set by setTopDir, cleared by finishDir
	wb       *writeback // nil when off; shared with the writers
	syncDir  *os.File   // dest, opened first, for the final syncfs

	// The parent of the last entry, kept open both as an os.Root (to create
	// the entry with one openat instead of a walk from dest per entry) and
	// as a descriptor (for the *at calls). Archives list a directory's
	// entries together, so it rarely changes.
	parentName string
	parentRoot *os.Root
	parentDir  *os.File
}

// makeDirs creates e's missing parents and, for a directory entry, e
// itself. Only the reader calls it, in archive order, so a parent always
// exists before anything is handed to a writer.
func (x *extractor) makeDirs(e entry) error {
	for _, d := range e.newDirs {
		if err := x.mkdir(d); err != nil {
			return err
		}
		// Like GNU tar, a parent the archive does not name gets default
		// permissions.
		x.dirs[d] = &dirMeta{mode: 0o755}
	}
	if e.kind != kindDir {
		return nil
	}
	if x.dirs[e.name] == nil {
		if err := x.mkdir(e.name); err != nil {
			return err
		}
	}
	hdr := e.hdr
	x.dirs[e.name] = &dirMeta{mode: e.mode, atime: hdr.AccessTime, mtime: hdr.ModTime, hasTimes: true}
	return nil
}

// place writes a regular file whose data is in memory, or a symlink. The
// writers call it, each with an extractor of its own (see clone).
func (x *extractor) place(e entry, data []byte) error {
	switch e.kind {
	case kindFile:
		return x.writeFile(e, func(w io.Writer) (int64, error) {
			n, err := w.Write(data)
			return int64(n), err
		})
	case kindSymlink:
		proot, _, base, err := x.parent(e.name)
		if err != nil {
			return err
		}
		if err := proot.Symlink(e.linkname, base); err != nil {
			return fmt.Errorf("extract: %w", err)
		}
		if err := x.lchown(e.name); err != nil {
			return err
		}
		return x.setTimes(e.name, e.hdr.AccessTime, e.hdr.ModTime)
	}
	return fmt.Errorf("extract: entry %q: unexpected kind %d", e.name, e.kind)
}

// link makes a hard link. Mode, owner and times belong to the inode, set
// with its first name, which must be complete: links are made last.
func (x *extractor) link(e entry) error {
	if err := x.root.Link(e.linkname, e.name); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	return nil
}

// writeFile creates e's file, fills it with fill (which returns the number
// of bytes written), then sets its owner, mode and times.
//
// Plain system calls on the parent's descriptor rather than os.Root and
// os.File: base is one component (no "/", no ".."), the parent was opened
// through the root, and O_NOFOLLOW|O_EXCL refuse an existing name of any
// kind, so this is what os.Root would do, without the poller registration
// and fcntl calls that os.File makes for every file (half of the system
// calls of a small file). O_EXCL: the checker already refuses duplicates,
// but should it ever be wrong, an existing file or symlink is an error
// rather than a target.
func (x *extractor) writeFile(e entry, fill func(w io.Writer) (int64, error)) error {
	_, pfd, base, err := x.parent(e.name)
	if err != nil {
		return err
	}
	// Created with its final mode when the umask leaves it whole (0644 and
	// 0755 under the usual 022): that saves an fchmod per file. Nobody else
	// can reach it meanwhile: dest is 0700 until the end.
	createMode, chmod := uint32(0o600), true
	if x.umask >= 0 && uint32(e.mode)&^uint32(x.umask) == uint32(e.mode) { //nolint:gosec // umask is 0-0777, read by readUmask
		createMode, chmod = uint32(e.mode), false
	}
	fd, err := openFile(pfd, base, createMode)
	if err != nil {
		return fmt.Errorf("extract: create %s: %w", e.name, err)
	}
	n, err := fill(writebackWriter{fd: fd, wb: x.wb})
	if err == nil && n != e.hdr.Size {
		err = shortData(e, n)
	}
	if err == nil && x.chown {
		err = unix.Fchown(fd, x.uid, x.gid)
	}
	if err == nil && chmod {
		// After chown, which may clear set-id bits; e.mode has none anyway.
		err = unix.Fchmod(fd, uint32(e.mode))
	}
	if err == nil {
		// Last: the writes above change mtime, chown and chmod do not.
		if terr := futimens(fd, timespecs(e.hdr.AccessTime, e.hdr.ModTime)); terr != nil {
			err = fmt.Errorf("set times: %w", terr)
		}
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		if errors.Is(err, ErrCorrupt) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return fmt.Errorf("extract %s: %w", e.name, err)
	}
	return nil
}

// futimens is utimensat(fd, NULL, ts, 0), which x/sys/unix does not export:
// the times of the open file itself, with no path lookup.
func futimens(fd int, ts []unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0) //nolint:gosec // ts has two elements and outlives the call, as in unix.UtimesNanoAt
	if errno != 0 {
		return errno
	}
	return nil
}

func openFile(dirfd int, base string, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// readUmask reads the umask without changing it (umask(2) can only set it,
// which would race with other goroutines creating files), or returns -1.
func readUmask() int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return int(n)
			}
		}
	}
	return -1
}

// fdWriter writes to a descriptor, all of p or an error.
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(int(w), p[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrShortWrite
		}
		n += m
	}
	return n, nil
}

func shortData(e entry, n int64) error {
	return corrupt(fmt.Sprintf("entry %q has %d bytes of data, its header says %d", e.hdr.Name, n, e.hdr.Size), nil)
}

func (x *extractor) mkdir(name string) error {
	// 0700 until finishDirs: the archive's mode (0555, say) could stop us
	// from creating the children, and others have no business in a
	// half-built tree.
	proot, _, base, err := x.parent(name)
	if err != nil {
		return err
	}
	if err := proot.Mkdir(base, 0o700); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	return x.lchown(name)
}

// parent returns the directory holding name, as an os.Root and as a
// descriptor, and name's last component. For "." it returns dest itself and
// ".", which the *at calls accept.
func (x *extractor) parent(name string) (*os.Root, int, string, error) {
	dir, base := path.Dir(name), path.Base(name)
	if x.parentDir == nil || x.parentName != dir {
		x.closeParent()
		r, err := x.root.OpenRoot(dir)
		if err != nil {
			return nil, -1, "", fmt.Errorf("extract: %w", err)
		}
		f, err := r.Open(".")
		if err != nil {
			_ = r.Close()
			return nil, -1, "", fmt.Errorf("extract: %w", err)
		}
		x.parentName, x.parentRoot, x.parentDir = dir, r, f
	}
	return x.parentRoot, int(x.parentDir.Fd()), base, nil
}

func (x *extractor) closeParent() {
	if x.parentDir != nil {
		_ = x.parentDir.Close() // directories opened read-only
		_ = x.parentRoot.Close()
		x.parentDir, x.parentRoot = nil, nil
	}
}

// lchown and setTimes work on the parent's descriptor with
// AT_SYMLINK_NOFOLLOW: they never follow a symlink, so they apply to symlinks
// themselves and cannot be redirected by one.
func (x *extractor) lchown(name string) error {
	if !x.chown {
		return nil
	}
	_, fd, base, err := x.parent(name)
	if err != nil {
		return err
	}
	if err := unix.Fchownat(fd, base, x.uid, x.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("extract: chown %s: %w", name, err)
	}
	return nil
}

func (x *extractor) setTimes(name string, atime, mtime time.Time) error {
	_, fd, base, err := x.parent(name)
	if err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(fd, base, timespecs(atime, mtime), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("extract: set times of %s: %w", name, err)
	}
	return nil
}

// timespecs leaves atime alone when the archive has none (most do not: GNU
// tar and Create only store it in PAX form when asked).
func timespecs(atime, mtime time.Time) []unix.Timespec {
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Sec: mtime.Unix(), Nsec: int64(mtime.Nanosecond())}}
	if !atime.IsZero() {
		ts[0] = unix.Timespec{Sec: atime.Unix(), Nsec: int64(atime.Nanosecond())}
	}
	return ts
}

// finishDirs gives every directory its mode and times, deepest first: a
// child's entries change its parent's mtime, and a read-only parent would
// stop the child from being finished.
func (x *extractor) finishDirs() error {
	names := make([]string, 0, len(x.dirs))
	for name := range x.dirs {
		names = append(names, name)
	}
	depth := func(n string) int {
		if n == "." {
			return -1
		}
		return strings.Count(n, "/")
	}
	sort.Slice(names, func(i, j int) bool {
		if di, dj := depth(names[i]), depth(names[j]); di != dj {
			return di > dj
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		if err := x.finishDir(name, x.dirs[name]); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) finishDir(name string, m *dirMeta) error {
	_, pfd, base, err := x.parent(name)
	if err != nil {
		return err
	}
	// Opened without following a symlink, then changed through its own
	// descriptor: os.Root's Chmod/Chtimes take a path and could be raced.
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("extract: open directory %s: %w", name, err)
	}
	defer unix.Close(fd) //nolint:errcheck // a directory opened read-only
	if name == "." && x.topDir {
		if err := setDirFlags(fd, 0, fsTopDirFl); err != nil {
			return fmt.Errorf("extract: clear the top-directory flag of %s: %w", name, err)
		}
	}
	if err := unix.Fchmod(fd, uint32(m.mode)); err != nil {
		return fmt.Errorf("extract: chmod %s: %w", name, err)
	}
	if m.hasTimes {
		if err := unix.UtimesNanoAt(fd, ".", timespecs(m.atime, m.mtime), 0); err != nil {
			return fmt.Errorf("extract: set times of %s: %w", name, err)
		}
	}
	return nil
}

// sync makes the tree durable with one syncfs instead of an fsync per file:
// the caller is about to rename it over the live install dir, and after a
// crash it must not find empty files there. The files' writeback was
// started as each was written (extract_writeback.go), which is no
// guarantee: this call is.
func (x *extractor) sync() error {
	if err := syncfs(int(x.syncDir.Fd())); err != nil {
		return fmt.Errorf("extract: syncfs: %w", err)
	}
	return nil
}

// syncfs is unix.Syncfs; the benchmark's child swaps it to time it, tests
// to count the calls.
var syncfs = unix.Syncfs

// clone returns an extractor for a writer goroutine: the same root and
// owner, its own cached parent directory. Close it with closeParent.
func (x *extractor) clone() *extractor {
	return &extractor{root: x.root, uid: x.uid, gid: x.gid, chown: x.chown, umask: x.umask, wb: x.wb}
}

func (x *extractor) close() {
	x.closeParent()
	if x.syncDir != nil {
		_ = x.syncDir.Close() // opened read-only: syncfs reported the errors
	}
	_ = x.root.Close()
}

// removeTree removes a partial extraction. Directories were left 0700 until
// the last step, but if that step failed half-way some may be read-only, which
// stops a non-root caller's RemoveAll: make them writable and retry.
func removeTree(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, werr error) error {
		if werr == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
