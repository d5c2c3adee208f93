package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// writtenRow is one row the background writer asked the app to commit.
type writtenRow struct {
	msg  string
	done time.Time // when `hooks notify` returned: committed by then
	err  error
}

// appWriter commits n rows into .swarm/memory.db through the app's own `hooks notify`, one
// after the other, in the background. started is closed after the first `first` rows.
type appWriter struct {
	mu      sync.Mutex
	rows    []writtenRow
	started chan struct{}
	done    chan struct{}
}

func startAppWriter(a *realApp, prefix string, n, first int) *appWriter {
	w := &appWriter{started: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := range n {
			msg := fmt.Sprintf("%s-%02d", prefix, i)
			out, err := a.cfTry("hooks", "notify", "--message", msg, "--level", "info")
			if err == nil && !strings.Contains(out, "memory.db") {
				err = fmt.Errorf("not saved to memory.db: %s", out)
			}
			w.mu.Lock()
			w.rows = append(w.rows, writtenRow{msg: msg, done: time.Now(), err: err})
			w.mu.Unlock()
			if i+1 == first {
				close(w.started)
			}
		}
	}()
	return w
}

// committedBefore are the messages whose notify had returned before t.
func (w *appWriter) committedBefore(t time.Time) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, r := range w.rows {
		if r.err == nil && r.done.Before(t) {
			out = append(out, r.msg)
		}
	}
	return out
}

// wait waits for the writer to finish and fails on any row it could not write.
func (w *appWriter) wait(t *testing.T) []string {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(5 * time.Minute):
		t.Fatal("the background writer did not finish within 5 minutes")
	}
	var msgs []string
	for _, r := range w.rows {
		if r.err != nil {
			t.Fatalf("claude-flow hooks notify --message %s: %v", r.msg, r.err)
		}
		msgs = append(msgs, r.msg)
	}
	return msgs
}

// sidecars lists the -wal, -shm and -journal files in the dirs.
func sidecars(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, d := range dirs {
		for _, suffix := range []string{"-wal", "-shm", "-journal"} {
			out = append(out, glob(t, filepath.Join(d, "*"+suffix))...)
		}
	}
	slices.Sort(out)
	return out
}

// missingRows are the msgs no row of db's memory_entries holds.
func missingRows(t *testing.T, db string, msgs []string) []string {
	t.Helper()
	var missing []string
	for _, m := range msgs {
		if sqliteCount(t, db, "SELECT count(*) FROM memory_entries WHERE value LIKE '%"+m+"%'") == "0" {
			missing = append(missing, m)
		}
	}
	return missing
}

// integrity is every row of PRAGMA integrity_check by the sqlite3 CLI, or its error.
func integrity(t *testing.T, db string) string {
	t.Helper()
	out, err := exec.Command(testenv.RequireTool(t, "sqlite3"), "-readonly", db, "PRAGMA integrity_check").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%v: %s", err, bytes.TrimSpace(out))
	}
	return strings.TrimSpace(string(out))
}

// checkStatuses is name -> status of a `database check --json` result.
func checkStatuses(t *testing.T, r runResult) map[string]string {
	t.Helper()
	st := map[string]string{}
	dbs, _ := r.JSON["databases"].([]any)
	for _, d := range dbs {
		m, _ := d.(map[string]any)
		name, _ := m["name"].(string)
		st[name], _ = m["status"].(string)
	}
	return st
}

// TestRealClaudeFlowDatabases: the real app runs under real systemd and writes rows through
// its own CLI while cfrollback backs up, checks and restores its two SQLite databases.
func TestRealClaudeFlowDatabases(t *testing.T) {
	testenv.RequireTool(t, "sqlite3")
	a := newRealApp(t, testenv.ClaudeFlowGood)
	binary(t) // built now, so the timings below are cfrollback's alone
	svc := systemdService(t, a)
	a.waitHealthy(t, 90*time.Second)
	memdb := filepath.Join(a.Install, ".swarm", "memory.db")
	hivedb := filepath.Join(a.Install, ".hive-mind", "hive.db")
	dbDirs := []string{filepath.Dir(memdb), filepath.Dir(hivedb)}
	for i := range 3 {
		a.notify(t, fmt.Sprintf("before-backup-%d", i))
	}
	before := []string{"before-backup-0", "before-backup-1", "before-backup-2"}
	hiveTables := sqliteCount(t, hivedb, "SELECT count(*) FROM sqlite_master WHERE type='table'")

	// Backup while the app writes.
	w := startAppWriter(a, "during-backup", 20, 3)
	<-w.started
	backupStart := time.Now()
	bk := a.run(svc.env, "database", "backup", "--json")
	backupTook := time.Since(backupStart)
	if bk.Code != 0 {
		t.Fatalf("database backup while the app writes: exit %d\n%s%s", bk.Code, bk.Stdout, bk.Stderr)
	}
	committed := append(slices.Clone(before), w.committedBefore(backupStart)...)
	// The check while the app still writes: no false FAIL.
	ck := a.run(svc.env, "database", "check", "--json")
	ckDuringWrites := len(before) + len(w.committedBefore(time.Now()))
	if ck.Code != 0 || ck.JSON["ok"] != true {
		t.Fatalf("database check of the live databases while the app writes: exit %d (a false FAIL)\n%s%s", ck.Code, ck.Stdout, ck.Stderr)
	}
	if st := checkStatuses(t, ck); st["memory"] != "ok" || st["hive"] != "ok" {
		t.Fatalf("database check statuses %v, want memory and hive ok", st)
	}
	backups := map[string]string{}
	var timings []string
	for _, b := range bk.JSON["backups"].([]any) {
		m := b.(map[string]any)
		backups[m["name"].(string)], _ = m["path"].(string)
		timings = append(timings, fmt.Sprintf("%v %v pages copy %v ms, durable %v ms, total %v ms", m["name"], m["pages"], m["copy_ms"], m["durable_ms"], m["duration_ms"]))
		if m["source_journal_mode"] != "wal" || m["integrity_check"] != "ok" {
			t.Errorf("backup of %v: source_journal_mode %v, integrity_check %v", m["name"], m["source_journal_mode"], m["integrity_check"])
		}
	}
	if len(backups) != 2 || backups["memory"] == "" || backups["hive"] == "" {
		t.Fatalf("database backup made %v, want memory and hive", backups)
	}
	for name, p := range backups {
		if got := integrity(t, p); got != "ok" {
			t.Fatalf("sqlite3 %s 'PRAGMA integrity_check' on the %s backup: %s", p, name, got)
		}
	}
	if miss := missingRows(t, backups["memory"], committed); len(miss) > 0 {
		t.Fatalf("the memory backup lacks rows committed before it started: %v (of %d)", miss, len(committed))
	}
	if got := sqliteCount(t, backups["hive"], "SELECT count(*) FROM sqlite_master WHERE type='table'"); got != hiveTables {
		t.Fatalf("the hive backup has %s tables, the live hive.db %s", got, hiveTables)
	}
	rowsInBackup := sqliteCount(t, backups["memory"], "SELECT count(*) FROM memory_entries")

	written := w.wait(t)
	a.notify(t, "after-backup-marker")
	after := append(slices.Clone(written), "after-backup-marker")

	// A check of the live databases leaves no -wal/-shm that was not there.
	side := sidecars(t, dbDirs...)
	if ck := a.run(svc.env, "database", "check"); ck.Code != 0 {
		t.Fatalf("database check of the live databases: exit %d\n%s%s", ck.Code, ck.Stdout, ck.Stderr)
	}
	if got := sidecars(t, dbDirs...); !slices.Equal(got, side) {
		t.Fatalf("database check changed the sidecar files: %v, before %v", got, side)
	}

	// Restore memory from the backup with the service up.
	pids := appPIDs(t, a)
	start := time.Now()
	rs := a.run(svc.env, "database", "restore", "--db", "memory", "--latest", "--stop-service", "--json")
	restoreTook := time.Since(start)
	if rs.Code != 0 || rs.JSON["service_stopped"] != true || rs.JSON["healthy"] != true {
		t.Fatalf("database restore --stop-service: exit %d, service_stopped %v, healthy %v\n%s%s",
			rs.Code, rs.JSON["service_stopped"], rs.JSON["healthy"], rs.Stdout, rs.Stderr)
	}
	if rs.JSON["backup"] != backups["memory"] {
		t.Fatalf("restored from %v, want the backup just made, %s", rs.JSON["backup"], backups["memory"])
	}
	a.waitHealthy(t, 5*time.Second)
	if now := appPIDs(t, a); len(now) == 0 || slices.ContainsFunc(now, func(p int) bool { return slices.Contains(pids, p) }) {
		t.Fatalf("the service was not stopped and started again: pids %v, before %v", now, pids)
	}
	if got := integrity(t, memdb); got != "ok" {
		t.Fatalf("restored memory.db: %s", got)
	}
	if miss := missingRows(t, memdb, committed); len(miss) > 0 {
		t.Fatalf("the restored memory.db lacks rows of the backup: %v", miss)
	}
	if miss := missingRows(t, memdb, []string{"after-backup-marker"}); len(miss) == 0 {
		t.Fatal("memory.db still holds a row written after the backup: it was not replaced")
	}
	failed, _ := rs.JSON["failed_copy"].(map[string]any)
	failedPath, _ := failed["path"].(string)
	if !strings.HasPrefix(filepath.Base(failedPath), "memory-failed-") || !strings.HasSuffix(failedPath, ".db") || failed["integrity"] != "ok" {
		t.Fatalf("failed copy %v, want a memory-failed-*.db that passes quick_check", failed)
	}
	if got := integrity(t, failedPath); got != "ok" {
		t.Fatalf("the kept memory-failed copy: %s", got)
	}
	if miss := missingRows(t, failedPath, append(slices.Clone(before), after...)); len(miss) > 0 {
		t.Fatalf("the kept copy %s lacks rows written before the restore: %v", failedPath, miss)
	}

	// hive.db damaged while the service is stopped: check names it.
	stopApp(t, a)
	if len(sidecars(t, filepath.Dir(hivedb))) > 0 {
		// The app did not checkpoint on exit: fold the -wal in, or it could mask the damage.
		if out, err := exec.Command("sqlite3", hivedb, "PRAGMA wal_checkpoint(TRUNCATE)").CombinedOutput(); err != nil {
			t.Fatalf("checkpoint hive.db: %v %s", err, out)
		}
	}
	side = sidecars(t, dbDirs...)
	if ck := a.run(svc.env, "database", "check", "--json"); ck.Code != 0 {
		t.Fatalf("database check of the stopped app's databases: exit %d\n%s%s", ck.Code, ck.Stdout, ck.Stderr)
	}
	if got := sidecars(t, dbDirs...); !slices.Equal(got, side) {
		t.Fatalf("database check of closed databases left sidecar files: %v, before %v", got, side)
	}
	corruptMiddlePage(t, hivedb)
	if got := integrity(t, hivedb); got == "ok" {
		t.Fatal("hive.db still passes integrity_check after the damage; the test damaged nothing")
	}
	ck = a.run(svc.env, "database", "check", "--json")
	if st := checkStatuses(t, ck); ck.Code != 1 || st["hive"] != "corrupt" || st["memory"] != "ok" {
		t.Fatalf("database check of a damaged hive.db: exit %d, statuses %v; want exit 1, hive corrupt, memory ok\n%s%s", ck.Code, st, ck.Stdout, ck.Stderr)
	}
	human := a.run(svc.env, "database", "check")
	if human.Code != 1 || !strings.Contains(human.Stdout+human.Stderr, "hive") {
		t.Fatalf("database check (text) of a damaged hive.db: exit %d, does not name hive\n%s%s", human.Code, human.Stdout, human.Stderr)
	}
	t.Logf("FIGURES real claude-flow databases: `database backup` of memory+hive while the app writes: command %d ms (%s); memory backup %s rows, %d committed before it started, %d by the first check; restore --stop-service: command %d ms, file swap %v ms",
		backupTook.Milliseconds(), strings.Join(timings, "; "), rowsInBackup, len(committed), ckDuringWrites, restoreTook.Milliseconds(), rs.JSON["duration_ms"])
}

// stopApp stops the service's processes as `systemctl stop` would (SIGTERM, the unit has
// Restart=no) and waits until they are gone.
func stopApp(t *testing.T, a *realApp) {
	t.Helper()
	pids := appPIDs(t, a)
	if len(pids) == 0 {
		t.Fatal("the app is not running")
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(appPIDs(t, a)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the app's processes %v did not exit within 30s of SIGTERM", appPIDs(t, a))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// corruptMiddlePage overwrites the page in the middle of db with garbage.
func corruptMiddlePage(t *testing.T, db string) {
	t.Helper()
	const page = 4096
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	n := fi.Size() / page
	if n < 3 {
		t.Fatalf("%s has %d pages; too small to damage in the middle", db, n)
	}
	f, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5, 0x5A, 0xFF, 0x00}, page/4), n/2*page); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
