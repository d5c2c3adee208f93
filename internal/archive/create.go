package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/pgzip"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// gzipLevel is the compression level of a backup archive (see Create).
const gzipLevel = 7

// CreateOptions says what to leave out of a backup and whom to tell about
// progress.
type CreateOptions struct {
	// Exclude holds path.Match globs, matched against each path relative to
	// srcDir (slash-separated, no "./") and against its base name. A matching
	// directory is skipped whole.
	Exclude []string
	// Progress, if not nil, is told the files and file bytes written so far,
	// at most about ten times a second and once at the end.
	Progress func(files int, bytes int64)
	// Limits are those the archive must satisfy to be restorable; Create
	// fails rather than write a backup that Extract with these limits would
	// refuse. Zero fields mean the defaults.
	Limits Limits
	// OnFile, if not nil, is told each regular file stored with data: its
	// name relative to srcDir (slash-separated), permission bits, size and
	// the SHA-256 of the bytes stored, hashed as they are written so that a
	// manifest costs no second read of the tree.
	OnFile func(name string, mode fs.FileMode, size int64, sha256 string)
	// Substitute maps regular files (relative to srcDir, slash-separated) to
	// other files whose bytes are stored under the original name, with the
	// original's mode and mtime: a database snapshot taken through SQLite's
	// online backup API stands in for the live file.
	Substitute map[string]string
	// SameDir, if not nil, is what srcDir was when the caller began (os.Stat): Create
	// fails with ErrTreeReplaced if srcDir is another directory by the time it opens it.
	SameDir os.FileInfo
	// BeforeCommit, if not nil, runs after the whole tree is written and before the
	// archive is renamed into place; an error from it leaves nothing at dest.
	BeforeCommit func() error
	// DryRun walks, checks and reads the tree exactly as a backup does (every rule, limit and
	// file read, so a file that cannot be read fails the dry run too) and writes nothing: no
	// temporary file, no archive. The Summary has no SHA256 or CompressedSize.
	DryRun bool
}

// ErrTreeReplaced means the directory being archived was swapped for another while
// the archive was being made (an emergency rollback exchanged the install dir).
var ErrTreeReplaced = errors.New("the directory was replaced while it was being archived")

// Create writes a gzip-compressed tar of srcDir's contents to dest, with
// entries named "./", "./dir/", "./dir/file" as `tar -C srcDir -czf dest .`
// names them, in PAX format with nanosecond mtimes, readable by GNU tar,
// bsdtar and Extract. Compression uses every core (pgzip).
//
// Stored: regular files, directories, symlinks (as symlinks, never followed)
// and hard links within the tree (the second and later names as hard-link
// entries). Sockets, FIFOs and devices are not stored; they are no part of an
// install dir that a restore could bring back, so they are skipped without an
// error and listed in Summary.Skipped for the caller to mention.
//
// Create checks every entry against the same rules as Extract and fails if
// the tree holds something a restore would refuse (an absolute symlink, a
// symlink out of the tree, a name that is not UTF-8, a file over the limits),
// since a backup that cannot be restored is worse than a failed backup.
//
// The archive is written to a temporary file next to dest, synced, renamed
// over dest (an existing dest is replaced atomically) and the directory synced,
// so dest is either the old file or the complete new one. Its mode is 0600.
func Create(ctx context.Context, srcDir, dest string, opt CreateOptions) (Summary, error) {
	for _, pat := range opt.Exclude {
		if _, err := path.Match(pat, ""); err != nil {
			return Summary{}, fmt.Errorf("create: exclude pattern %q: %w", pat, err)
		}
	}
	if inside, err := isInside(dest, srcDir); err != nil {
		return Summary{}, fmt.Errorf("create: %w", err)
	} else if inside {
		return Summary{}, fmt.Errorf("create: the backup %s would be inside the tree %s it backs up", dest, srcDir)
	}
	src, err := os.OpenRoot(srcDir)
	if err != nil {
		return Summary{}, fmt.Errorf("create: %w", err)
	}
	defer src.Close() //nolint:errcheck // the source tree, opened read-only
	if opt.SameDir != nil {
		// Everything below reads through src, so one check of what it opened is enough.
		fi, err := src.Stat(".")
		if err != nil {
			return Summary{}, fmt.Errorf("create: %w", err)
		}
		if !os.SameFile(fi, opt.SameDir) {
			return Summary{}, fmt.Errorf("create: %s: %w", srcDir, ErrTreeReplaced)
		}
	}

	if opt.DryRun {
		return dryRun(ctx, src, opt)
	}
	dir := filepath.Dir(dest)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".*.tmp")
	if err != nil {
		return Summary{}, fmt.Errorf("create: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return Summary{}, fmt.Errorf("create: %w", err)
	}

	out := &hashingWriter{w: tmp, hash: sha256.New()}
	// Blocks of 1 MiB, as many at once as GOMAXPROCS. Level 7, not pgzip's default 5: the
	// archive is 1.1% larger than `tar -czf`'s (gzip -6) instead of 5.2%, for 0.44 s more
	// per 548 MB on 2 cores, still 0.20x tar's time (docs/BENCHMARKS.md).
	gz, err := pgzip.NewWriterLevel(out, gzipLevel)
	if err != nil {
		return Summary{}, fmt.Errorf("create: %w", err)
	}
	c := newCreator(ctx, src, tar.NewWriter(gz), opt)
	if err := c.walk("."); err != nil {
		_ = gz.Close()
		return Summary{}, fmt.Errorf("create %s: %w", dest, err)
	}
	if err := c.chk.finish(); err != nil {
		_ = gz.Close()
		return Summary{}, fmt.Errorf("create %s: the tree could not be restored from this backup: %w", dest, err)
	}
	if err := c.tw.Close(); err != nil {
		_ = gz.Close()
		return Summary{}, fmt.Errorf("create %s: %w", dest, err)
	}
	if err := gz.Close(); err != nil {
		return Summary{}, fmt.Errorf("create %s: %w", dest, err)
	}
	if err := tmp.Sync(); err != nil {
		return Summary{}, fmt.Errorf("create %s: %w", dest, err)
	}
	if err := tmp.Close(); err != nil {
		return Summary{}, fmt.Errorf("create %s: %w", dest, err)
	}
	if opt.BeforeCommit != nil {
		if err := opt.BeforeCommit(); err != nil {
			return Summary{}, fmt.Errorf("create %s: %w", dest, err)
		}
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return Summary{}, fmt.Errorf("create %s: %w", dest, err)
	}
	committed = true
	if err := fsutil.SyncDir(dir); err != nil {
		return Summary{}, fmt.Errorf("create %s: %w", dest, err)
	}
	c.sum.CompressedSize = out.n
	c.sum.SHA256 = hex.EncodeToString(out.hash.Sum(nil))
	c.progress.tick(c.sum.Files, c.sum.Bytes, true)
	return c.sum, nil
}

// dryRun is Create's walk into a tar stream that goes nowhere.
func dryRun(ctx context.Context, src *os.Root, opt CreateOptions) (Summary, error) {
	c := newCreator(ctx, src, tar.NewWriter(io.Discard), opt)
	if err := c.walk("."); err != nil {
		return Summary{}, fmt.Errorf("dry run: %w", err)
	}
	if err := c.chk.finish(); err != nil {
		return Summary{}, fmt.Errorf("dry run: the tree could not be restored from a backup of it: %w", err)
	}
	c.progress.tick(c.sum.Files, c.sum.Bytes, true)
	return c.sum, nil
}

func newCreator(ctx context.Context, src *os.Root, tw *tar.Writer, opt CreateOptions) *creator {
	return &creator{
		ctx:      ctx,
		src:      src,
		tw:       tw,
		chk:      newChecker(opt.Limits),
		exclude:  opt.Exclude,
		progress: createThrottle{fn: opt.Progress},
		links:    map[fileID]string{},
		buf:      make([]byte, readBufSize),
		onFile:   opt.OnFile,
		subst:    opt.Substitute,
	}
}

type fileID struct{ dev, ino uint64 }

type creator struct {
	ctx      context.Context
	src      *os.Root
	tw       *tar.Writer
	chk      *checker
	exclude  []string
	progress createThrottle
	links    map[fileID]string // first archive name of each multiply-linked file
	buf      []byte
	sum      Summary
	onFile   func(name string, mode fs.FileMode, size int64, sha256 string)
	subst    map[string]string
}

// walk adds rel (a directory, "." for the top) and everything below it, in
// name order so that the same tree always gives the same archive.
func (c *creator) walk(rel string) error {
	if err := c.add(rel); err != nil {
		return err
	}
	d, err := c.src.Open(rel)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	_ = d.Close()
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		child := path.Join(rel, name)
		if c.excluded(child, name) {
			continue
		}
		fi, err := c.src.Lstat(child)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since Readdirnames; tar says the same and goes on
		} else if err != nil {
			return err
		}
		if fi.IsDir() {
			if err := c.walk(child); err != nil {
				return err
			}
			continue
		}
		if err := c.add(child); err != nil {
			return err
		}
	}
	return nil
}

func (c *creator) excluded(rel, base string) bool {
	for _, pat := range c.exclude {
		if ok, _ := path.Match(pat, rel); ok {
			return true
		}
		if ok, _ := path.Match(pat, base); ok {
			return true
		}
	}
	return false
}

func (c *creator) add(rel string) error {
	fi, err := c.src.Lstat(rel)
	if err != nil {
		return err
	}
	var target string
	switch mode := fi.Mode(); {
	case mode.IsDir(), mode.IsRegular():
	case mode&fs.ModeSymlink != 0:
		if target, err = c.src.Readlink(rel); err != nil {
			return err
		}
	default:
		c.sum.Skipped = append(c.sum.Skipped, rel)
		return nil
	}
	hdr, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return err
	}
	var alt fs.FileInfo
	if p, ok := c.subst[rel]; ok && fi.Mode().IsRegular() {
		if alt, err = os.Lstat(p); err != nil {
			return err
		}
		if !alt.Mode().IsRegular() {
			return fmt.Errorf("substitute for %s: %s is not a regular file", rel, p)
		}
		hdr.Size = alt.Size()
	}
	hdr.Format = tar.FormatPAX
	// Access and change times vary with every read of the tree; storing them
	// would make two backups of the same tree differ for nothing.
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	hdr.Uname, hdr.Gname = "", ""
	switch {
	case rel == ".":
		hdr.Name = "./"
	case fi.IsDir():
		hdr.Name = "./" + rel + "/"
	default:
		hdr.Name = "./" + rel
	}

	var id fileID
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && alt == nil && fi.Mode().IsRegular() && st.Nlink > 1 {
		id = fileID{dev: uint64(st.Dev), ino: st.Ino}
		if first, seen := c.links[id]; seen {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			c.links[id] = hdr.Name
		}
	}
	e, err := c.chk.check(hdr)
	if err != nil {
		return fmt.Errorf("the tree could not be restored from this backup: %w", err)
	}
	if e.kind == kindFile {
		if alt != nil {
			err = c.addFileFrom(c.subst[rel], rel, hdr, alt)
		} else {
			err = c.addFile(rel, hdr, fi)
		}
		if err != nil {
			return err
		}
	} else if err := c.tw.WriteHeader(hdr); err != nil {
		return err
	}
	c.sum.Entries++
	switch e.kind {
	case kindFile:
		c.sum.Files++
		c.sum.Bytes += hdr.Size
	case kindDir:
		c.sum.Dirs++
	case kindSymlink:
		c.sum.Symlinks++
	case kindHardlink:
		c.sum.Hardlinks++
	}
	c.progress.tick(c.sum.Files, c.sum.Bytes, false)
	return nil
}

func (c *creator) addFile(rel string, hdr *tar.Header, fi fs.FileInfo) error {
	// Open through the root (a symlink swapped in cannot lead out of the
	// tree), then make sure it is still the file that was stat'ed.
	f, err := c.src.Open(rel)
	if err != nil {
		return err
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	ofi, err := f.Stat()
	if err != nil {
		return err
	}
	if !os.SameFile(fi, ofi) {
		return fmt.Errorf("%s was replaced while the backup was being made", rel)
	}
	return c.copyFile(f, rel, hdr)
}

// addFileFrom stores the file at altPath under rel's name.
func (c *creator) addFileFrom(altPath, rel string, hdr *tar.Header, alt fs.FileInfo) error {
	f, err := os.Open(altPath)
	if err != nil {
		return err
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	ofi, err := f.Stat()
	if err != nil {
		return err
	}
	if !os.SameFile(alt, ofi) {
		return fmt.Errorf("%s (stored as %s) was replaced while the backup was being made", altPath, rel)
	}
	return c.copyFile(f, rel, hdr)
}

func (c *creator) copyFile(f *os.File, rel string, hdr *tar.Header) error {
	if err := c.tw.WriteHeader(hdr); err != nil {
		return err
	}
	var w io.Writer = c.tw
	var h hash.Hash
	if c.onFile != nil {
		h = sha256.New()
		w = io.MultiWriter(c.tw, h)
	}
	// Exactly hdr.Size bytes: a file that grows meanwhile is stored as it was
	// when stat'ed (as GNU tar does); one that shrinks cannot be stored
	// consistently and fails the backup.
	n, err := io.CopyBuffer(struct{ io.Writer }{w}, &ctxReader{ctx: c.ctx, r: io.LimitReader(f, hdr.Size)}, c.buf)
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return fmt.Errorf("%s shrank from %d to %d bytes while the backup was being made", rel, hdr.Size, n)
	}
	if c.onFile != nil {
		c.onFile(rel, fs.FileMode(hdr.Mode).Perm(), n, hex.EncodeToString(h.Sum(nil))) //nolint:gosec // hdr.Mode was made here from the file's mode; only its permission bits are used
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

type hashingWriter struct {
	w    io.Writer
	hash hash.Hash
	n    int64
}

func (h *hashingWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.hash.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// isInside reports whether p is srcDir or below it, lexically after making
// both absolute: enough to catch the mistake of backing a tree up into itself.
func isInside(p, srcDir string) (bool, error) {
	ap, err := filepath.Abs(p)
	if err != nil {
		return false, err
	}
	as, err := filepath.Abs(srcDir)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(as, ap)
	if err != nil {
		return false, nil
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, "../")), nil
}
