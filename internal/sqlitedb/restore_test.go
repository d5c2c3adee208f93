package sqlitedb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// leaveStaleWAL makes target a WAL database whose -wal/-shm beside it hold frames from an
// earlier state: the situation after the seed's `cp backup memory.db` next to a live -wal.
func leaveStaleWAL(t *testing.T, target string, rows int) {
	t.Helper()
	w := openWriter(t, target, false)
	insertRows(t, w, 0, rows)
	wal, _ := os.ReadFile(target + "-wal")
	shm, _ := os.ReadFile(target + "-shm")
	if len(wal) == 0 {
		t.Fatal("no -wal to make stale")
	}
	w.Close() // checkpoints and removes the -wal
	if err := os.WriteFile(target+"-wal", wal, 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(target+"-shm", shm, 0o644)
}

func TestRestoreStaleWALAndFailedCopy(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "live.db")
	w := openWriter(t, src, false)
	insertRows(t, w, 0, 300) // only in live.db-wal
	backup := filepath.Join(dir, "memory-backup.db")
	mustBackup(t, src, backup)

	target := filepath.Join(dir, "memory.db")
	leaveStaleWAL(t, target, 2000)
	wantFailed := countRows(t, target)

	// Stale -wal still beside target; make sure it is really there.
	if fi, err := os.Stat(target + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("setup: no stale -wal: %v", err)
	}
	now := time.Date(2025, 1, 4, 14, 0, 0, 0, time.UTC)
	res, err := Restore(context.Background(), backup, target, RestoreOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !res.ChecksumVerified {
		t.Errorf("checksum sidecar not verified")
	}
	if n := countRows(t, target); n != 300 {
		t.Errorf("restored db has %d rows, want 300 (the backup's)", n)
	}
	if got := sqlite3CLI(t, target, "PRAGMA integrity_check"); got != "ok" {
		t.Errorf("sqlite3 integrity_check of the restored db: %q", got)
	}
	if got := sqlite3CLI(t, target, "SELECT count(*) FROM memory"); got != "300" {
		t.Errorf("sqlite3 count: %s", got)
	}
	if res.JournalMode != "wal" {
		t.Errorf("journal mode %q, want wal (the replaced file's)", res.JournalMode)
	}
	fc := res.Failed
	if fc == nil || fc.Path != filepath.Join(dir, "memory-failed-20250104-140000.db") || fc.Method != "backup_api" || fc.Integrity != "ok" {
		t.Fatalf("failed copy %+v", fc)
	}
	if n := countRows(t, fc.Path); n != wantFailed {
		t.Errorf("failed copy has %d rows, want %d (with the -wal's commits)", n, wantFailed)
	}
	if len(res.SetAside) != 1 || !exists(fc.Path+".old-wal") {
		t.Errorf("old -wal not set aside: %+v", res)
	}
	assertNoTemps(t, dir)
}

// A file made by `sqlite3 DB ".backup FILE"` (WAL header, no sidecar) restores.
func TestRestoreSQLite3CLIBackup(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "config-src.db")
	sqlite3CLI(t, src, "PRAGMA journal_mode=WAL; CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT); INSERT INTO kv VALUES('a','1'),('b','2');")
	backup := filepath.Join(dir, "config-backup-20250101-000000.db")
	sqlite3CLI(t, src, ".backup "+backup)
	target := filepath.Join(dir, "config.db") // does not exist yet
	res, err := Restore(context.Background(), backup, target, RestoreOptions{})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if res.Failed != nil || res.ChecksumVerified {
		t.Errorf("result %+v", res)
	}
	if got := sqlite3CLI(t, target, "SELECT group_concat(k||'='||v) FROM kv"); got != "a=1,b=2" {
		t.Errorf("restored content %q", got)
	}
	// and the reverse: our backup opens in the CLI
	ours := filepath.Join(dir, "ours.db")
	mustBackup(t, target, ours)
	if got := sqlite3CLI(t, ours, "PRAGMA integrity_check; SELECT count(*) FROM kv;"); got != "ok\n2" {
		t.Errorf("sqlite3 on our backup: %q", got)
	}
}

// A running process holding the target open makes Restore refuse, naming its pid.
func TestRestoreRefusedWhileOpen(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "memory.db")
	sqlite3CLI(t, target, "PRAGMA journal_mode=WAL; CREATE TABLE memory(id INTEGER PRIMARY KEY, key TEXT, value TEXT); INSERT INTO memory(key) VALUES('live');")
	backup := filepath.Join(dir, "b.db")
	mustBackup(t, target, backup)
	before, _ := os.ReadFile(target)

	cmd := exec.Command("sqlite3", target)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	io.WriteString(stdin, "SELECT key FROM memory;\n")
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "live" {
		t.Fatalf("sqlite3 child said %q", line)
	}

	_, err := Restore(context.Background(), backup, target, RestoreOptions{})
	var iu *InUseError
	if !errors.As(err, &iu) || !errors.Is(err, ErrInUse) {
		t.Fatalf("Restore: %v, want an InUseError", err)
	}
	found := false
	for _, o := range iu.Openers {
		if o.PID == cmd.Process.Pid && strings.Contains(o.Command, "sqlite3") && o.File == "memory.db" {
			found = true
		}
	}
	if !found || !strings.Contains(err.Error(), "pid ") {
		t.Errorf("openers %+v do not name pid %d", iu.Openers, cmd.Process.Pid)
	}
	// one process, named once with every file it holds
	if n := strings.Count(err.Error(), fmt.Sprintf("pid %d ", cmd.Process.Pid)); n != 1 {
		t.Errorf("the error names pid %d %d times: %v", cmd.Process.Pid, n, err)
	}
	if !strings.Contains(err.Error(), "has memory.db") {
		t.Errorf("the error does not say which file: %v", err)
	}
	after, _ := os.ReadFile(target)
	if string(after) != string(before) {
		t.Errorf("target changed")
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*failed*"))
	if len(m) > 0 {
		t.Errorf("refused restore left %v", m)
	}
	assertNoTemps(t, dir)
}

func TestRestoreRefusesCorruptBackup(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	makeBigDB(t, good, 3000)
	bad := filepath.Join(dir, "bad.db")
	copyFile(good, bad)
	corruptPages(t, bad)
	target := filepath.Join(dir, "memory.db")
	copyFile(good, target)
	before, _ := os.ReadFile(target)
	_, err := Restore(context.Background(), bad, target, RestoreOptions{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Restore of a corrupt backup: %v", err)
	}
	after, _ := os.ReadFile(target)
	if string(after) != string(before) {
		t.Errorf("target changed")
	}
	assertNoTemps(t, dir)
}

// TestMain lets a test run Restore in a child process (the test binary itself) that
// kills itself at a chosen point.
func TestMain(m *testing.M) {
	if os.Getenv("CFROLLBACK_TEST_RESTORE_CHILD") == "1" {
		_, err := Restore(context.Background(), os.Args[len(os.Args)-2], os.Args[len(os.Args)-1], RestoreOptions{})
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Killed between setting the old -wal aside and renaming the new file in: the database
// left in place is sound (an older state), every committed row is in the failed copy, and
// running the restore again completes it.
func TestRestoreKilledBeforeRename(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "memory.db")
	w := openWriter(t, target, false)
	insertRows(t, w, 0, 100)
	backup := filepath.Join(dir, "memory-backup.db")
	mustBackup(t, target, backup)
	insertRows(t, w, 100, 250) // 350 rows, the last 250 only in memory.db-wal
	w.Exec("PRAGMA wal_checkpoint(PASSIVE)")
	insertRows(t, w, 350, 50) // 400 rows; some of them only in the -wal
	// Leave the -wal as a killed service would: copy the files while the writer has them.
	killedDB := filepath.Join(dir, "killed.db")
	for _, s := range []string{"", "-wal"} {
		if err := copyFile(target+s, killedDB+s); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	for _, s := range []string{"", "-wal"} {
		os.Remove(target + s)
		if err := os.Rename(killedDB+s, target+s); err != nil {
			t.Fatal(err)
		}
	}
	if n := countRows(t, target); n != 400 {
		t.Fatalf("setup: %d rows, want 400", n)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$", backup, target)
	cmd.Env = append(os.Environ(), "CFROLLBACK_TEST_RESTORE_CHILD=1", killAtEnv+"=dbrestore:before-rename")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("child: %v, want killed by a signal\n%s", err, out)
	}
	failed, _ := filepath.Glob(filepath.Join(dir, "memory-failed-*.db"))
	if len(failed) != 1 {
		t.Fatalf("failed copies %v, want 1", failed)
	}
	if n := countRows(t, failed[0]); n != 400 {
		t.Errorf("the failed copy holds %d rows, want all 400", n)
	}
	aside, _ := filepath.Glob(failed[0] + ".old-wal")
	if len(aside) != 1 {
		t.Errorf("the old -wal was not set aside next to the failed copy")
	}
	if res, err := Check(context.Background(), target, CheckOptions{}); err != nil || !res.OK {
		t.Fatalf("the database left in place after the kill: %+v %v", res, err)
	}
	left := countRows(t, target)
	if left > 400 || left < 100 {
		t.Errorf("the database left in place holds %d rows", left)
	}
	t.Logf("killed before the rename: %d rows left in place (the checkpointed part), 400 in the failed copy", left)

	// Running it again finishes the job; the interrupted state is kept too.
	// a stamp a minute on, as a later run would have: its failed copy gets a name of its own
	later := func() time.Time { return time.Now().Add(time.Minute) }
	res, err := Restore(context.Background(), backup, target, RestoreOptions{Now: later})
	if err != nil {
		t.Fatalf("second restore: %v", err)
	}
	if n := countRows(t, target); n != 100 {
		t.Errorf("after the second restore: %d rows, want the backup's 100", n)
	}
	if res.Failed == nil || res.Failed.Path == failed[0] || countRows(t, res.Failed.Path) != left {
		t.Errorf("the second restore did not keep the interrupted state: %+v", res.Failed)
	}
	assertNoTemps(t, dir)
}

// Only temp files of this package's making whose process is gone are removed.
func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := dead.Process.Pid
	names := map[string]bool{ // name: removed?
		".memory.db.restore-" + strconv.Itoa(deadPID) + "-1.tmp":     true,
		".memory.db.restore-" + strconv.Itoa(deadPID) + "-1.tmp-wal": true,
		".b.db.backup-" + strconv.Itoa(deadPID) + "-2.tmp":           true,
		".memory.db.restore-" + strconv.Itoa(os.Getpid()) + "-3.tmp": false, // ours, in use
		".memory.db.restore-1-4.tmp":                                 false, // pid 1 runs
		".other.cache-" + strconv.Itoa(deadPID) + "-5.tmp":           false, // not our word
		"memory.db":                        false,
		"memory-failed-20250101-000000.db": false,
		".memory.db.restore-" + strconv.Itoa(deadPID) + "-6.tmp.notatemp": false,
	}
	for n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removeStaleTemps(dir)
	for n, gone := range names {
		if exists(filepath.Join(dir, n)) == gone {
			t.Errorf("%s: removed=%v, want %v", n, !gone, gone)
		}
	}
}
