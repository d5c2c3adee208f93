package sqlitedb

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
	"golang.org/x/sys/unix"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// DefaultBusyTimeout is used when an options struct leaves BusyTimeout zero.
const DefaultBusyTimeout = 5 * time.Second

// headerMagic starts every SQLite 3 database file.
var headerMagic = []byte("SQLite format 3\x00")

// ErrNotDatabase means the file is not an SQLite database (wrong header, or empty).
var ErrNotDatabase = errors.New("not an SQLite database")

// dsn builds a go-sqlite3 URI for path. The path is escaped so names with '?', '#' or '%'
// cannot be read as URI syntax.
func dsn(path string, params url.Values) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "file", Path: abs, RawQuery: params.Encode()}
	return u.String(), nil
}

func busyMS(d time.Duration) string {
	if d <= 0 {
		d = DefaultBusyTimeout
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// openReadOnly opens path with mode=ro. That is right for a live WAL database: the reader
// uses the existing -wal/-shm like any other reader, and cannot checkpoint, truncate or
// delete them. (immutable=1 would be wrong: it ignores the -wal and so misses commits.)
func openReadOnly(path string, busy time.Duration) (*sql.DB, error) {
	d, err := dsn(path, url.Values{"mode": {"ro"}, "_busy_timeout": {busyMS(busy)}})
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite3", d)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// openReadWrite opens (creating) a file this package owns: a temp file or a copy.
func openReadWrite(path string, busy time.Duration) (*sql.DB, error) {
	d, err := dsn(path, url.Values{"mode": {"rwc"}, "_busy_timeout": {busyMS(busy)}})
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite3", d)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// rawConn runs f with the driver connection behind c.
func rawConn(ctx context.Context, db *sql.DB, f func(*sqlite3.SQLiteConn) error) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		sc, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		return f(sc)
	})
}

// header is what the first 100 bytes of a database file say.
type header struct {
	Size     int64
	PageSize int
	WAL      bool // file format version bytes are 2: the database is in WAL mode
}

// readHeader checks the magic string; a zero-byte file or a wrong magic gives an error
// wrapping ErrNotDatabase.
func readHeader(path string) (header, error) {
	// A FIFO given as a database is refused instead of waited on.
	f, fi, err := fsutil.OpenRegular(path)
	if err != nil {
		return header{}, err
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	h := header{Size: fi.Size()}
	if fi.Size() == 0 {
		return h, fmt.Errorf("%s: empty (0 bytes): %w", path, ErrNotDatabase)
	}
	buf := make([]byte, 100)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return h, err
	}
	if n < 100 || !bytes.Equal(buf[:16], headerMagic) {
		return h, fmt.Errorf("%s: no SQLite header (%d bytes): %w", path, fi.Size(), ErrNotDatabase)
	}
	ps := int(buf[16])<<8 | int(buf[17])
	if ps == 1 {
		ps = 65536
	}
	h.PageSize = ps
	h.WAL = buf[18] == 2 && buf[19] == 2
	return h, nil
}

// syncFile fsyncs a file by name.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// renameNoReplace renames src to dst unless dst exists (RENAME_NOREPLACE), falling back to
// a check-then-rename on filesystems without it.
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if _, serr := os.Lstat(dst); serr == nil {
			return &os.LinkError{Op: "rename", Old: src, New: dst, Err: os.ErrExist}
		}
		return os.Rename(src, dst)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	return nil
}

// tempPath names a temp file next to path; the leading dot keeps it out of globs such as
// memory-backup-*.db.
func tempPath(path, what string) string {
	return filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%s-%d-%d.tmp", filepath.Base(path), what, os.Getpid(), time.Now().UnixNano()))
}

// tempRE matches the names tempPath makes: .<base>.<what>-<pid>-<nanoseconds>.tmp.
// Only this package's words are matched, so another program's temp files are left alone.
var tempRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\..+\.(?:backup|restore|failed|salvage|reindex|sum)-([0-9]+)-[0-9]+\.tmp$`)
})

// removeStaleTemps removes, from dir, the temp files (with their -wal, -shm, -journal)
// that tempPath named for a process that no longer runs: what a killed backup, restore or
// repair left. A temp file never holds the only copy of anything: it is the copy being
// made.
func removeStaleTemps(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		m := tempRE().FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || pid <= 0 {
			continue
		}
		if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
			continue // alive, or not ours to judge (EPERM)
		}
		removeDB(filepath.Join(dir, e.Name()))
	}
}

// removeDB removes a database file this package created, with any -wal, -shm and -journal.
func removeDB(path string) {
	for _, s := range []string{"", "-wal", "-shm", "-journal"} {
		_ = os.Remove(path + s)
	}
}

// copyFile copies src to a new file dst (which must not exist) and fsyncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close() //nolint:errcheck // opened read-only: nothing to lose
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Sync(); err != nil {
		_ = out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}

// untilDone runs fn and returns when it does or, first, when ctx ends. SQLite's busy handler
// sleeps through sqlite3_interrupt: a database another process holds locked (an open write
// transaction, a stuck app) would hold a cancelled command for the whole busy timeout, and
// an operator's Ctrl-C with it. On a cancel fn is abandoned: it goes on, read-only or in its
// own temp file, until the process exits a moment later, as under a kill.
func untilDone[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		select {
		case r := <-ch: // it ended too: keep its own result and error
			return r.v, r.err
		default:
		}
		var zero T
		return zero, ctx.Err()
	}
}

// ErrBadSidecar means a database's -wal, -shm or -journal is not a regular file (a FIFO, a
// device, a directory, a symlink). SQLite fails on it with an error that looks like
// corruption; the database itself may be intact.
var ErrBadSidecar = errors.New("a SQLite sidecar file is not a regular file")

// checkSidecars returns an error naming the first of path's -wal, -shm and -journal that
// exists and is not a regular file, with what to do: nothing should be repaired or
// restored over a database SQLite could not even open.
func checkSidecars(path string) error {
	for _, s := range []string{"-wal", "-shm", "-journal"} {
		p := path + s
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode().IsRegular() {
			continue
		}
		return fmt.Errorf("%w: %s is %s, so SQLite cannot open %s; nothing was checked or changed, and the database itself may be intact: with the service stopped, move it aside (mv %s %s.aside) and check again, do not repair or restore",
			ErrBadSidecar, p, fsutil.Kind(fi.Mode()), path, fsutil.QuotePath(p), fsutil.QuotePath(p))
	}
	return nil
}
