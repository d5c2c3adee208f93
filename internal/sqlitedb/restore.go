package sqlitedb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// killAtEnv is the test hook shared with the runbook and appconfig: set to
// "dbrestore:before-rename", Restore SIGKILLs its own process just before its rename.
const killAtEnv = "CFROLLBACK_TEST_KILL_AT"

// TimestampLayout names failed copies, like the install's failed dirs.
const TimestampLayout = "20060102-150405"

// RestoreOptions tune Restore.
type RestoreOptions struct {
	BusyTimeout time.Duration
	// Now stamps the failed copy's name; nil means time.Now.
	Now func() time.Time
	// Progress, if set, is told each stage ("verify backup", "keep failed copy", ...).
	Progress func(stage string)
}

// RestoreResult describes a finished restore.
type RestoreResult struct {
	Target string `json:"target"`
	Backup string `json:"backup"`
	// ChecksumVerified is true when the backup had a .sha256 sidecar and it matched.
	ChecksumVerified bool        `json:"checksum_verified"`
	JournalMode      string      `json:"journal_mode"` // of the restored file: "wal" or "delete"
	Failed           *FailedCopy `json:"failed_copy,omitempty"`
	// SetAside are the old file's -wal/-journal, renamed next to the failed copy, and
	// Removed its -shm (an index of the -wal with no data of its own).
	SetAside   []string `json:"set_aside,omitempty"`
	Removed    []string `json:"removed,omitempty"`
	DurationMS int64    `json:"duration_ms"`
}

// FailedCopy is the database that a restore replaced, kept for investigation.
type FailedCopy struct {
	Path string `json:"path"`
	// Method is "backup_api" (a self-contained, checkpointed copy that includes the -wal's
	// commits) or "raw_copy" (the backup API could not read it; the main file and -wal were
	// copied byte for byte, the -wal as Path+"-wal").
	Method string `json:"method"`
	// Integrity is "ok", "corrupt" or "unreadable" (quick_check of the copy).
	Integrity string   `json:"integrity"`
	Problems  []string `json:"problems,omitempty"`
}

// Restore replaces the database target with a copy of backupFile. It refuses (an
// *InUseError naming the pids) while any process has target or its -wal/-shm/-journal
// open. In order: the backup is copied to a temp file next to target, given the journal
// mode the replaced file had, and must pass integrity_check; the current target is kept as
// <dir>/<stem>-failed-<ts>.db; its -wal and -journal are set aside and its -shm removed (a
// stale -wal next to the new file would be replayed into it); then the temp file is
// fsynced and renamed over target, and the directory fsynced. Until that rename, target is
// untouched.
func Restore(ctx context.Context, backupFile, target string, opt RestoreOptions) (res RestoreResult, err error) {
	t0 := time.Now()
	if opt.Now == nil {
		opt.Now = time.Now
	}
	stage := func(s string) {
		if opt.Progress != nil {
			opt.Progress(s)
		}
	}
	res = RestoreResult{Target: target, Backup: backupFile}
	if _, err := readHeader(backupFile); err != nil {
		return res, fmt.Errorf("restore %s: backup %w", target, err)
	}
	ok, err := VerifyChecksum(backupFile)
	if err != nil {
		return res, fmt.Errorf("restore %s: %w", target, err)
	}
	res.ChecksumVerified = ok
	if err := refuseOpeners(target); err != nil {
		return res, err
	}
	old, oldErr := os.Stat(target)
	if oldErr != nil && !errors.Is(oldErr, os.ErrNotExist) {
		return res, fmt.Errorf("restore %s: %w", target, oldErr)
	}

	stage("copy and verify the backup")
	removeStaleTemps(filepath.Dir(target))
	tmp := tempPath(target, "restore")
	defer func() {
		if err != nil {
			removeDB(tmp)
		}
	}()
	if err := copyFile(backupFile, tmp); err != nil {
		return res, fmt.Errorf("restore %s: copy %s: %w", target, backupFile, err)
	}
	wantWAL := false
	if oldErr == nil {
		if h, err := readHeader(target); err == nil {
			wantWAL = h.WAL
		}
	} else if h, err := readHeader(tmp); err == nil {
		wantWAL = h.WAL
	}
	if res.JournalMode, err = setJournalMode(ctx, tmp, wantWAL, opt.BusyTimeout); err != nil {
		return res, fmt.Errorf("restore %s: prepare the copy of %s: %w", target, backupFile, err)
	}
	problems, err := checkFile(ctx, tmp, false, opt.BusyTimeout)
	if err != nil {
		return res, fmt.Errorf("restore %s: check the copy of %s: %w", target, backupFile, err)
	}
	if len(problems) > 0 {
		return res, fmt.Errorf("restore %s: %w; nothing was changed, pick another backup",
			target, &CorruptError{Path: backupFile, What: "backup file", Problems: problems})
	}
	if err := matchOwner(tmp, target, old); err != nil {
		return res, fmt.Errorf("restore %s: %w", target, err)
	}
	if err := syncFile(tmp); err != nil {
		return res, fmt.Errorf("restore %s: fsync: %w", target, err)
	}

	if oldErr == nil {
		stage("keep the current database")
		fc, err := keepFailed(ctx, target, opt)
		if err != nil {
			return res, fmt.Errorf("restore %s: keep the current database before replacing it: %w; nothing was changed", target, err)
		}
		res.Failed = fc
	}
	// A process may have opened it while we copied.
	if err := refuseOpeners(target); err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	stage("swap in the restored database")
	failedBase := target + "-restore-" + opt.Now().Format(TimestampLayout)
	if res.Failed != nil {
		failedBase = res.Failed.Path
	}
	for _, s := range []string{"-wal", "-journal"} {
		fi, err := os.Lstat(target + s)
		if err != nil {
			continue
		}
		aside := failedBase + ".old" + s
		if fi.Size() == 0 {
			// An orphaned empty file holds nothing; it only blocks writers.
			if err := os.Remove(target + s); err != nil {
				return res, fmt.Errorf("restore %s: remove the empty %s: %w; the database was not replaced", target, target+s, err)
			}
			res.Removed = append(res.Removed, target+s)
			continue
		}
		if err := renameNoReplace(target+s, aside); err != nil {
			return res, fmt.Errorf("restore %s: set the old %s aside: %w; the database was not replaced", target, s, err)
		}
		res.SetAside = append(res.SetAside, aside)
	}
	if err := os.Remove(target + "-shm"); err == nil {
		res.Removed = append(res.Removed, target+"-shm")
	} else if !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("restore %s: remove the stale -shm: %w; the database was not replaced", target, err)
	}
	if os.Getenv(killAtEnv) == "dbrestore:before-rename" {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
	// A crash before this rename leaves the old file in place without the -wal set aside
	// above: a consistent, older state; every commit is in the failed copy (and the
	// set-aside -wal), and running the restore again finishes it (TestRestoreKilledBeforeRename).
	if err := os.Rename(tmp, target); err != nil {
		return res, fmt.Errorf("restore %s: %w", target, err)
	}
	if err := fsutil.SyncDir(filepath.Dir(target)); err != nil {
		return res, fmt.Errorf("restore %s: fsync the directory: %w", target, err)
	}
	res.DurationMS = time.Since(t0).Milliseconds()
	return res, nil
}

func refuseOpeners(target string) error {
	op, _, err := Openers(target)
	if err != nil {
		return fmt.Errorf("restore %s: %w", target, err)
	}
	if len(op) > 0 {
		return &InUseError{Path: target, Openers: op}
	}
	return nil
}

// setJournalMode gives the file the journal mode the replaced database had, so the
// service finds what it left (Claude Flow sets WAL itself, but a reader may not).
func setJournalMode(ctx context.Context, path string, wal bool, busy time.Duration) (string, error) {
	h, err := readHeader(path)
	if err != nil {
		return "", err
	}
	if h.WAL == wal {
		if wal {
			return "wal", nil
		}
		return "delete", nil
	}
	db, err := openReadWrite(path, busy)
	if err != nil {
		return "", err
	}
	defer db.Close()
	want := "DELETE"
	if wal {
		want = "WAL"
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode="+want).Scan(&mode); err != nil {
		return "", err
	}
	if !strings.EqualFold(mode, want) {
		return mode, fmt.Errorf("journal_mode is %s, want %s", mode, want)
	}
	return strings.ToLower(mode), db.Close()
}

// matchOwner gives tmp the owner and mode of the file it replaces, so the service (which
// may not run as root) can still write to it.
func matchOwner(tmp, target string, old os.FileInfo) error {
	mode := os.FileMode(0o644)
	uid, gid := -1, -1
	if old != nil {
		mode = old.Mode().Perm()
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	} else if fi, err := os.Stat(filepath.Dir(target)); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	if uid >= 0 && os.Geteuid() == 0 {
		return os.Chown(tmp, uid, gid)
	}
	return nil
}

// keepFailed copies target (with its -wal's commits) to <dir>/<stem>-failed-<ts>.db.
func keepFailed(ctx context.Context, target string, opt RestoreOptions) (*FailedCopy, error) {
	stem := strings.TrimSuffix(filepath.Base(target), filepath.Ext(target))
	ts := opt.Now().Format(TimestampLayout)
	var path string
	for i := 1; ; i++ {
		name := fmt.Sprintf("%s-failed-%s.db", stem, ts)
		if i > 1 {
			name = fmt.Sprintf("%s-failed-%s-%d.db", stem, ts, i)
		}
		path = filepath.Join(filepath.Dir(target), name)
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	fc := &FailedCopy{Path: path, Method: "backup_api"}
	tmp := tempPath(path, "failed")
	var res BackupResult
	err := copyPages(ctx, target, tmp, BackupOptions{BusyTimeout: opt.BusyTimeout, StepPages: DefaultStepPages,
		StepSleep: DefaultStepSleep, MaxRestarts: DefaultMaxRestarts}, &res)
	if err != nil {
		if ctx.Err() != nil {
			removeDB(tmp)
			return nil, ctx.Err()
		}
		// Unreadable through SQLite: keep the bytes as they are, the -wal beside them
		// under the name SQLite would look for.
		removeDB(tmp)
		fc.Method = "raw_copy"
		if err := copyFile(target, tmp); err != nil {
			removeDB(tmp)
			return nil, err
		}
		if _, err := os.Stat(target + "-wal"); err == nil {
			if err := copyFile(target+"-wal", path+"-wal"); err != nil {
				removeDB(tmp)
				return nil, err
			}
		}
	}
	if err := syncFile(tmp); err != nil {
		removeDB(tmp)
		return nil, err
	}
	if err := renameNoReplace(tmp, path); err != nil {
		removeDB(tmp)
		return nil, err
	}
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	problems, err := checkFile(ctx, path, true, opt.BusyTimeout)
	switch {
	case err != nil:
		fc.Integrity, fc.Problems = "unreadable", []string{err.Error()}
	case len(problems) == 0:
		fc.Integrity = "ok"
	default:
		fc.Integrity, fc.Problems = "corrupt", problems
	}
	return fc, nil
}
