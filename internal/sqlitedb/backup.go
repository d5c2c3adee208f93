package sqlitedb

import (
	"context"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
	"golang.org/x/sys/unix"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// Defaults of BackupOptions.
const (
	DefaultStepPages = 4096 // 16 MiB of 4 KiB pages per step
	DefaultStepSleep = 5 * time.Millisecond
	// DefaultMaxRestarts: in rollback-journal mode every commit by another connection
	// restarts a stepped backup; after this many restarts the rest is copied in one step.
	DefaultMaxRestarts = 3
)

// BackupOptions tune Backup. The zero value is right for the service's databases.
type BackupOptions struct {
	BusyTimeout time.Duration
	// StepPages is how many pages one backup step copies.
	StepPages int
	// StepSleep is the pause between steps of a rollback-journal source, where each step
	// holds a shared lock that keeps writers from committing. A WAL source is read from
	// one snapshot that never blocks a writer, so it is copied without pauses.
	StepSleep   time.Duration
	MaxRestarts int
	// Progress, if set, is called after every step with the pages left and the total.
	Progress func(remaining, total int)
}

// BackupResult describes a finished backup.
type BackupResult struct {
	Source            string `json:"source"`
	Path              string `json:"path"`
	ChecksumFile      string `json:"checksum_file"`
	SHA256            string `json:"sha256"`
	SizeBytes         int64  `json:"size_bytes"`
	Pages             int    `json:"pages"`
	SourceJournalMode string `json:"source_journal_mode"`
	// Snapshot is true when the copy was read from one WAL read transaction (writers never
	// blocked); false for a rollback-journal source copied in steps.
	Snapshot       bool   `json:"snapshot"`
	Steps          int    `json:"steps"`
	Restarts       int    `json:"restarts"`
	IntegrityCheck string `json:"integrity_check"`
	// CopyMS is when the page copy ended and DurableMS when its fsync did, both from the
	// start: DurableMS is the part comparable with sqlite3's .backup (copy + fsync).
	// CheckMS and ChecksumMS are the integrity_check and the sha256 of the copy, which
	// run alongside the fsync.
	CopyMS     int64 `json:"copy_ms"`
	DurableMS  int64 `json:"durable_ms"`
	CheckMS    int64 `json:"check_ms"`
	ChecksumMS int64 `json:"checksum_ms"`
	DurationMS int64 `json:"duration_ms"`
}

// CorruptError says a database (or a copy of one) failed integrity_check; Problems holds
// every row it returned.
type CorruptError struct {
	Path     string
	What     string // "backup copy", "backup file", "restored copy"
	Problems []string
}

func (e *CorruptError) Error() string {
	first := ""
	if len(e.Problems) > 0 {
		first = ": " + e.Problems[0]
	}
	more := ""
	if len(e.Problems) > 1 {
		more = fmt.Sprintf(" (and %d more problems)", len(e.Problems)-1)
	}
	return fmt.Sprintf("%s %s failed integrity_check%s%s", e.What, e.Path, first, more)
}

// ErrCorrupt matches every *CorruptError.
var ErrCorrupt = errors.New("database failed integrity_check")

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Backup copies the database src to dst with SQLite's online backup API, safe while the
// service writes to src. dst must not exist. The copy is written to a temp file in dst's
// directory, passes integrity_check (every row read), is fsynced and renamed to dst, and a
// sha256sum-format sidecar dst+".sha256" is written next to it. On error nothing is left
// at dst. The copy is a self-contained rollback-journal file (no -wal needed to read it).
//
// A cancel ends it at once even while it waits for another process's lock (see untilDone);
// the temp file is removed then too.
func Backup(ctx context.Context, src, dst string, opt BackupOptions) (BackupResult, error) {
	tmp := tempPath(dst, "backup")
	res, err := untilDone(ctx, func() (BackupResult, error) { return backup(ctx, src, dst, tmp, opt) })
	if err != nil && ctx.Err() != nil {
		removeDB(tmp) // the abandoned copy may not have got to it
	}
	return res, err
}

func backup(ctx context.Context, src, dst, tmp string, opt BackupOptions) (res BackupResult, err error) {
	t0 := time.Now()
	res = BackupResult{Source: src, Path: dst, ChecksumFile: dst + ".sha256"}
	if err := checkSidecars(src); err != nil {
		return res, err
	}
	if opt.StepPages <= 0 {
		opt.StepPages = DefaultStepPages
	}
	if opt.StepSleep <= 0 {
		opt.StepSleep = DefaultStepSleep
	}
	if opt.MaxRestarts <= 0 {
		opt.MaxRestarts = DefaultMaxRestarts
	}
	if _, err := readHeader(src); err != nil {
		return res, fmt.Errorf("back up %s: %w", src, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return res, fmt.Errorf("back up %s: %s already exists; choose another --output", src, dst)
	}
	removeStaleTemps(filepath.Dir(dst))
	defer func() {
		if err != nil {
			removeDB(tmp)
		}
	}()
	if err := copyPages(ctx, src, tmp, opt, &res); err != nil {
		return res, fmt.Errorf("back up %s: %w", src, err)
	}
	res.CopyMS = time.Since(t0).Milliseconds()

	// The integrity_check, the fsync and the sha256 each only read the finished copy:
	// run all three at once. The copy counts only if all three succeed. (The sha256 is
	// the longest of the three, and it cannot start before the copy ends: SQLite
	// finishes page 1, the first bytes hashed, last.)
	syncErr := make(chan error, 1)
	go func() {
		err := syncFile(tmp)
		res.DurableMS = time.Since(t0).Milliseconds()
		syncErr <- err
	}()
	type digest struct {
		sum  string
		size int64
		err  error
	}
	dc := make(chan digest, 1)
	go func() {
		tsum := time.Now()
		sum, size, err := sha256Mapped(tmp)
		res.ChecksumMS = time.Since(tsum).Milliseconds()
		dc <- digest{sum, size, err}
	}()
	tc := time.Now()
	problems, err := checkFile(ctx, tmp, false, opt.BusyTimeout)
	res.CheckMS = time.Since(tc).Milliseconds()
	d, serr := <-dc, <-syncErr
	if err != nil {
		return res, fmt.Errorf("back up %s: check the copy: %w", src, err)
	}
	if len(problems) > 0 {
		return res, fmt.Errorf("back up %s: %w; the source is probably damaged too: run 'cfrollback database check'",
			src, &CorruptError{Path: dst, What: "backup copy", Problems: problems})
	}
	res.IntegrityCheck = "ok"
	if serr != nil {
		return res, fmt.Errorf("back up %s: fsync %s: %w", src, tmp, serr)
	}
	if d.err != nil {
		return res, fmt.Errorf("back up %s: checksum: %w", src, d.err)
	}
	res.SHA256, res.SizeBytes = d.sum, d.size
	if err := renameNoReplace(tmp, dst); err != nil {
		return res, fmt.Errorf("back up %s: %w", src, err)
	}
	if err := fsutil.SyncDir(filepath.Dir(dst)); err != nil {
		return res, fmt.Errorf("back up %s: fsync %s: %w", src, filepath.Dir(dst), err)
	}
	if err := writeChecksum(dst, d.sum); err != nil {
		return res, fmt.Errorf("back up %s: the backup %s is complete but its checksum file is not: %w", src, dst, err)
	}
	res.DurationMS = time.Since(t0).Milliseconds()
	return res, nil
}

// copyPages runs the backup API from src (opened read-only) into the new file tmp.
func copyPages(ctx context.Context, src, tmp string, opt BackupOptions, res *BackupResult) error {
	srcDB, err := openReadOnly(src, opt.BusyTimeout)
	if err != nil {
		return err
	}
	defer srcDB.Close()
	if err := srcDB.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&res.SourceJournalMode); err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	dstDB, err := openReadWrite(tmp, opt.BusyTimeout)
	if err != nil {
		return err
	}
	defer dstDB.Close()
	// The finished file is fsynced once by Backup; syncing every step only costs time.
	if _, err := dstDB.ExecContext(ctx, "PRAGMA synchronous=OFF"); err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	snapshot := strings.EqualFold(res.SourceJournalMode, "wal")
	res.Snapshot = snapshot
	err = rawConn(ctx, srcDB, func(s *sqlite3.SQLiteConn) error {
		if snapshot {
			// One read transaction for the whole copy: every step reads the same snapshot,
			// so commits by the service neither block on us nor restart the backup.
			if err := beginRead(s); err != nil {
				return fmt.Errorf("begin read transaction on %s: %w", src, err)
			}
			defer s.Exec("ROLLBACK", nil) //nolint:errcheck // a read transaction; nothing to lose
		}
		return rawConn(ctx, dstDB, func(d *sqlite3.SQLiteConn) error {
			wb := newWriteback(tmp)
			defer wb.close()
			return stepBackup(ctx, d, s, opt, res, wb.step)
		})
	})
	if err != nil {
		return err
	}
	// The copied header still says WAL when the source was WAL; a backup file is one
	// self-contained file, so switch it to a rollback journal.
	var mode string
	if err := dstDB.QueryRowContext(ctx, "PRAGMA journal_mode=DELETE").Scan(&mode); err != nil {
		return fmt.Errorf("finish %s: %w", tmp, err)
	}
	return dstDB.Close()
}

func beginRead(s *sqlite3.SQLiteConn) error {
	if _, err := s.Exec("BEGIN", nil); err != nil {
		return err
	}
	rows, err := s.Query("SELECT count(*) FROM sqlite_schema", nil)
	if err != nil {
		return err
	}
	defer rows.Close() //nolint:errcheck // a read query's cursor
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// stepBackup runs the backup b from s to d in steps; afterStep runs after each.
func stepBackup(ctx context.Context, d, s *sqlite3.SQLiteConn, opt BackupOptions, res *BackupResult, afterStep func()) (err error) {
	b, err := d.Backup("main", s, "main")
	if err != nil {
		return fmt.Errorf("start backup: %w", err)
	}
	defer func() {
		if ferr := b.Finish(); ferr != nil && err == nil {
			err = fmt.Errorf("finish backup: %w", ferr)
		}
	}()
	step := opt.StepPages
	lastRemaining := -1
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		done, err := b.Step(step)
		res.Steps++
		if err != nil {
			return fmt.Errorf("backup step: %w", err)
		}
		afterStep()
		remaining, total := b.Remaining(), b.PageCount()
		res.Pages = total
		if opt.Progress != nil {
			opt.Progress(remaining, total)
		}
		if done {
			return nil
		}
		switch {
		case lastRemaining >= 0 && remaining > lastRemaining:
			// Another connection committed and SQLite restarted the copy.
			res.Restarts++
			if res.Restarts >= opt.MaxRestarts {
				step = -1
			}
		case remaining == lastRemaining:
			// SQLITE_BUSY/LOCKED (the driver hides them): wait a little.
			time.Sleep(opt.StepSleep)
		}
		lastRemaining = remaining
		if !res.Snapshot {
			time.Sleep(opt.StepSleep)
		}
	}
}

// mmapLimit bounds the memory map checkFile asks for; SQLite maps at most the file.
const mmapLimit = 1 << 40

// checkFile runs integrity_check (or quick_check) on a file this package wrote and returns
// its problems. It opens the file read-write so that closing a WAL-mode file removes the
// -wal/-shm the check needed; never call it on a file the service uses.
func checkFile(ctx context.Context, path string, quick bool, busy time.Duration) ([]string, error) {
	if _, err := readHeader(path); err != nil {
		if errors.Is(err, ErrNotDatabase) {
			return []string{err.Error()}, nil
		}
		return nil, err
	}
	db, err := openReadWrite(path, busy)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	// Reading a file this package just wrote through a memory map is about a quarter
	// faster. (Never done for the service's own files: an I/O error under a map is a
	// signal, not an error SQLite can report.)
	if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA mmap_size=%d", mmapLimit)); err != nil {
		return nil, err
	}
	return integrity(ctx, db, quick, 0)
}

// sha256Mapped is sha256File for a file this package just wrote, read through a memory
// map (about an eighth faster than read(2); the same caveat as checkFile's map).
func sha256Mapped(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if fi.Size() == 0 || fi.Size() != int64(int(fi.Size())) {
		return sha256File(path)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return sha256File(path)
	}
	defer unix.Munmap(b) //nolint:errcheck // read-only map
	_ = unix.Madvise(b, unix.MADV_SEQUENTIAL)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), fi.Size(), nil
}

func sha256File(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// writeChecksum writes path+".sha256" in sha256sum format, durably.
func writeChecksum(path, sum string) error {
	side := path + ".sha256"
	// a new temp file, named as tempPath names them (removeStaleTemps clears a killed
	// write's); the rename replaces, never follows, a link planted at side
	pattern := fmt.Sprintf(".%s.sum-%d-*.tmp", filepath.Base(side), os.Getpid())
	return fsutil.Write(side, []byte(sum+"  "+filepath.Base(path)+"\n"), 0o600, fsutil.WriteOptions{TempPattern: pattern})
}

// VerifyChecksum compares path with its sidecar path+".sha256"; ok is false and err nil
// when there is no sidecar.
func VerifyChecksum(path string) (ok bool, err error) {
	b, err := fsutil.ReadFile(path+".sha256", fsutil.MaxSmallFile)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	want, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	got, _, err := sha256File(path)
	if err != nil {
		return false, err
	}
	if got != want {
		return false, fmt.Errorf("%s: sha256 %s does not match %s.sha256 (%s): the file changed after it was written", path, got, path, want)
	}
	return true, nil
}
