package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// fakeManager is a service manager made of function fields and a state flag.
type fakeManager struct {
	active  bool
	calls   []string
	stopErr error
	onStop  func()
	onStart func() error
}

var _ service.Manager = (*fakeManager)(nil)

func (m *fakeManager) Name() string { return "fake service" }
func (m *fakeManager) Kind() string { return "command" }
func (m *fakeManager) Status(context.Context) (service.Status, error) {
	st := "inactive"
	if m.active {
		st = "active"
	}
	return service.Status{Exists: true, Active: m.active, State: st}, nil
}
func (m *fakeManager) Stop(context.Context) error {
	m.calls = append(m.calls, "stop")
	if m.stopErr != nil {
		return m.stopErr
	}
	m.active = false
	if m.onStop != nil {
		m.onStop()
	}
	return nil
}
func (m *fakeManager) Start(context.Context) error {
	m.calls = append(m.calls, "start")
	if m.onStart != nil {
		if err := m.onStart(); err != nil {
			return err
		}
	}
	m.active = true
	return nil
}

type env struct {
	t   *testing.T
	cfg settings.Config
	m   *fakeManager
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	testenv.DetachMountsAtEnd(t, dir) // a refreshed standby's read-only mount
	cfg := settings.Defaults()
	cfg.InstallDir = filepath.Join(dir, "opt", "app")
	cfg.Backup.Dir = filepath.Join(dir, "backups")
	cfg.Journal = filepath.Join(dir, "log", "journal.jsonl")
	cfg.Lock = filepath.Join(dir, "run", "lock")
	cfg.LogDir = filepath.Join(dir, "log")
	cfg.Backup.State = filepath.Join(dir, "state", "backups.json")
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Database.BackupDir = filepath.Join(dir, "dbbackups")
	cfg.Health.URL = ""
	// One database, memory: these tests follow one file through check_data (the profile's
	// hive.db is exercised by the real-app tests in internal/integration).
	cfg.Databases = []settings.DatabaseRef{{Name: "memory", Path: ".swarm/memory.db"}}
	cfg.Health.Interval = 5 * time.Millisecond
	cfg.Health.Consecutive = 2
	cfg.Health.WaitTimeout = 2 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{cfg.InstallDir, cfg.Backup.Dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &env{t: t, cfg: cfg, m: &fakeManager{active: true}}
}

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// backup makes backup-<stamp>.tar.gz of files with archive.Create.
func (e *env) backup(stamp string, files map[string]string) string {
	src := e.t.TempDir()
	write(e.t, src, files)
	p := filepath.Join(e.cfg.Backup.Dir, "backup-"+stamp+".tar.gz")
	if _, err := archive.Create(context.Background(), src, p, archive.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) run(dry bool) (*Result, error) {
	return Emergency(context.Background(), Options{Config: e.cfg, DryRun: dry}, Deps{Service: e.m})
}

func TestEmergencyRestoresNewestGoodBackup(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1", ".swarm/memory.db": "from backup"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken", "new-in-v2.txt": "x", ".swarm/memory.db": "live"})
	res, err := e.run(false)
	if err != nil {
		t.Fatalf("emergency: %v", err)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1" {
		t.Errorf("app.txt = %q, want v1", got)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, ".swarm/memory.db")); got != "live" {
		t.Errorf("preserved .swarm/memory.db = %q, want the live data", got)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.InstallDir, "new-in-v2.txt")); !os.IsNotExist(err) {
		t.Errorf("replace mode kept a file the backup lacks: %v", err)
	}
	if got := read(t, filepath.Join(res.FailedDir, "app.txt")); got != "v2 broken" {
		t.Errorf("failed dir app.txt = %q", got)
	}
	if got := read(t, filepath.Join(res.FailedDir, ".swarm/memory.db")); got != "live" {
		t.Errorf("failed dir lost its live data: %q", got)
	}
	if strings.Join(e.m.calls, ",") != "stop,start" || !e.m.active {
		t.Errorf("service calls %v active=%v", e.m.calls, e.m.active)
	}
	if res.Outcome != "ok" || res.DowntimeMS < 0 || res.RunID == "" {
		t.Errorf("result %+v", res)
	}
	// "live" is not SQLite: reported, and with no DB backup to replace it, left in place.
	if len(res.DataChecks) != 1 || res.DataChecks[0].Status != "corrupt_kept" {
		t.Errorf("data checks %+v", res.DataChecks)
	}
	recs, err := journal.ReadAll(e.cfg.Journal)
	if err != nil {
		t.Fatal(err)
	}
	runs := journal.Runs(recs)
	if len(runs) != 1 || runs[0].Outcome != "ok" || runs[0].Unfinished() {
		t.Fatalf("journal runs %+v", runs)
	}
	var names []string
	for _, s := range runs[0].Steps {
		names = append(names, s.Name+":"+s.Status)
	}
	// then, after the outcome, the refresh of the warm standby (the run's last reported step)
	want := "preflight:done,stop:done,carry_over:done,check_data:done,swap:done,keep_failed:done,start:done,health:done," +
		"standby_prepare:done,standby_extract:done,standby_swap_in:done,standby_seal:done"
	if strings.Join(names, ",") != want {
		t.Errorf("journaled steps %v, want %s", names, want)
	}
	if problems, err := journal.Verify(e.cfg.Journal); err != nil || len(problems) != 0 {
		t.Errorf("journal verify: %v %v", problems, err)
	}
}

func TestEmergencyDryRunChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	before := snapshot(t, filepath.Dir(e.cfg.Backup.Dir))
	res, err := e.run(true)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if res.Outcome != "planned" || len(res.Plan) != 8 || res.Backup == nil {
		t.Fatalf("dry run result %+v", res)
	}
	if after := snapshot(t, filepath.Dir(e.cfg.Backup.Dir)); after != before {
		t.Fatalf("dry run changed the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if len(e.m.calls) != 0 {
		t.Fatalf("dry run called the service: %v", e.m.calls)
	}
}

func TestEmergencyOnlyBadBackupsIsPreflightFailure(t *testing.T) {
	e := newEnv(t)
	good := e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	b, _ := os.ReadFile(good)
	if err := os.WriteFile(good, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	before := snapshot(t, filepath.Dir(e.cfg.InstallDir))
	res, err := e.run(false)
	if !errors.Is(err, ErrPreflight) || errors.Is(err, ErrAfterStop) {
		t.Fatalf("err = %v, want ErrPreflight", err)
	}
	if len(res.Skipped) != 1 || len(e.m.calls) != 0 || !e.m.active {
		t.Fatalf("skipped %v, service calls %v", res.Skipped, e.m.calls)
	}
	if after := snapshot(t, filepath.Dir(e.cfg.InstallDir)); after != before {
		t.Fatalf("install parent changed:\n%s\n%s", before, after)
	}
}

func TestEmergencyUnhealthyIsExit5WithFailedKept(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	never := health.FuncProbe{Name: "app", F: func(context.Context) health.Result { return health.Result{Detail: "HTTP 500"} }}
	res, err := Emergency(context.Background(), Options{Config: e.cfg}, Deps{Service: e.m, Probes: []health.Prober{never}})
	if !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("err = %v, want ErrUnhealthy", err)
	}
	if res.Outcome != "unhealthy" || read(t, filepath.Join(res.FailedDir, "app.txt")) != "v2" {
		t.Fatalf("result %+v", res)
	}
	found := false
	for _, n := range res.Next {
		found = found || strings.Contains(n, "cfrollback undo "+res.RunID)
	}
	if !found {
		t.Fatalf("no undo command in next steps: %v", res.Next)
	}
	// and undo puts the failed install back, keeping the restored one
	u, err := Undo(context.Background(), res.RunID, Options{Config: e.cfg}, Deps{Service: e.m})
	if err != nil {
		t.Fatalf("undo: %v", err)
	}
	if read(t, filepath.Join(e.cfg.InstallDir, "app.txt")) != "v2" || read(t, filepath.Join(u.KeptDir, "app.txt")) != "v1" {
		t.Fatalf("after undo: install/kept wrong")
	}
}

func TestEmergencyStopFailureRestartsUntouchedInstall(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	e.m.stopErr = errors.New("job timeout")
	_, err := e.run(false)
	if !errors.Is(err, ErrAfterStop) {
		t.Fatalf("err = %v, want ErrAfterStop", err)
	}
	if read(t, filepath.Join(e.cfg.InstallDir, "app.txt")) != "v2" {
		t.Fatal("install changed after a failed stop")
	}
	if m, _ := filepath.Glob(e.cfg.InstallDir + ".staging-*"); len(m) != 0 {
		t.Fatalf("staging left: %v", m)
	}
	if e.m.calls[len(e.m.calls)-1] != "start" {
		t.Fatalf("service not started again: %v", e.m.calls)
	}
}

// lockedEnv is newEnv with a backup (v1) and the run lock held by another "cfrollback
// emergency" (pid 1) until the test ends: a run is refused at its lock.
func lockedEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	l, err := lock.Acquire(e.cfg.Lock, lock.Holder{PID: 1, Command: "cfrollback emergency"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Release() })
	return e
}

func TestEmergencyLockedIsErrLocked(t *testing.T) {
	e := lockedEnv(t)
	_, err := e.run(false)
	if !errors.Is(err, lock.ErrLocked) || !strings.Contains(err.Error(), "cfrollback emergency") {
		t.Fatalf("err = %v, want ErrLocked naming the holder", err)
	}
}

// TestOverlayMatchesTarOverwrite: restore.mode overlay gives what the seed's
// `cd install && tar -xzf backup --overwrite` gives.
func TestOverlayMatchesTarOverwrite(t *testing.T) {
	tar := testenv.RequireTool(t, "tar")
	e := newEnv(t)
	e.cfg.Restore.Mode = "overlay"
	e.cfg.Restore.Preserve = nil
	bk := e.backup("20250101-000000", map[string]string{"a.txt": "backup a", "dir/c.txt": "backup c"})
	installFiles := map[string]string{"a.txt": "install a", "b.txt": "install b", "dir/d.txt": "install d"}
	write(t, e.cfg.InstallDir, installFiles)
	viaTar := t.TempDir()
	write(t, viaTar, installFiles)
	if out, err := exec.Command(tar, "-C", viaTar, "-xzf", bk, "--overwrite").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	if _, err := e.run(false); err != nil {
		t.Fatal(err)
	}
	if got, want := contents(t, e.cfg.InstallDir), contents(t, viaTar); got != want {
		t.Fatalf("overlay:\n%s\ntar --overwrite:\n%s", got, want)
	}
}

// snapshot lists every path under root with its size and mode.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b.WriteString(rel + " " + info.Mode().String() + " " + strconv.FormatInt(info.Size(), 10) + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// contents lists every regular file under root with its content.
func contents(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b.WriteString(rel + "=" + read(t, p) + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A damaged journal must not block a P0 rollback; it is kept, not lost.
func TestEmergencyDamagedJournalIsSetAsideNotFatal(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	if _, err := e.run(false); err != nil {
		t.Fatal(err)
	}
	b := []byte(read(t, e.cfg.Journal))
	b[len(b)-40] ^= 0x01 // edit the last record in place
	if err := os.WriteFile(e.cfg.Journal, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var warned []string
	_, err := Emergency(context.Background(), Options{Config: e.cfg}, Deps{Service: e.m, Events: func(ev Event) {
		if ev.Kind == "warn" {
			warned = append(warned, ev.Message)
		}
	}})
	if err != nil {
		t.Fatalf("emergency with a damaged journal: %v", err)
	}
	kept, _ := filepath.Glob(e.cfg.Journal + ".damaged-*")
	if len(kept) == 0 || !strings.Contains(strings.Join(warned, "\n"), "is damaged") {
		t.Fatalf("damaged journal not kept (%v) or not warned about (%v)", kept, warned)
	}
	if string(b) != read(t, kept[0]) {
		t.Fatal("the kept journal differs from the damaged one")
	}
}

// Restored files belong to the owner of the install dir being replaced, not
// to whatever uid/gid the archive recorded.
func TestEmergencyRestoredFilesTakeTheInstallOwner(t *testing.T) {
	testenv.RequireRoot(t) // to chown
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1", "lib/x.js": "x"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	if err := os.Chown(e.cfg.InstallDir, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	if _, err := e.run(false); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{".", "app.txt", "lib", "lib/x.js"} {
		fi, err := os.Lstat(filepath.Join(e.cfg.InstallDir, rel))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 4242 || st.Gid != 4343 {
			t.Errorf("%s owned by %d:%d, want 4242:4343", rel, st.Uid, st.Gid)
		}
	}
}

// A journal with a malformed line in the middle (its end intact, so it is
// not set aside) must not block a P0 rollback: recovery reads around it.
func TestEmergencyJournalDamagedInTheMiddle(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	if _, err := e.run(false); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(read(t, e.cfg.Journal), "\n")
	lines[2] = "{this is not a record\n"
	if err := os.WriteFile(e.cfg.Journal, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if warned := e.rollBackV3Warned(t, "a journal damaged in the middle"); !strings.Contains(warned, "unreadable line(s) (line [3])") {
		t.Fatalf("the damaged line was not named: %v", warned)
	}
}

// rollBackV3Warned puts v3 in the install and runs an emergency (the journal as the caller left
// it, named by what), which must end ok with the backup's v1 in place; it returns the run's
// warnings, one a line.
func (e *env) rollBackV3Warned(t *testing.T, what string) string {
	t.Helper()
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v3"})
	var warned []string
	res, err := Emergency(context.Background(), Options{Config: e.cfg}, Deps{Service: e.m, Events: func(ev Event) {
		if ev.Kind == "warn" {
			warned = append(warned, ev.Message)
		}
	}})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("emergency with %s: %v", what, err)
	}
	if read(t, filepath.Join(e.cfg.InstallDir, "app.txt")) != "v1" {
		t.Fatal("not rolled back")
	}
	return strings.Join(warned, "\n")
}

// editRecord changes one byte of a record's data in the middle of the journal, the way a
// hand edit would: the line still parses, its hash no longer matches.
func editRecord(t *testing.T, path, runID, event string) {
	t.Helper()
	lines := strings.SplitAfter(read(t, path), "\n")
	for i, l := range lines {
		if strings.Contains(l, `"run_id":"`+runID+`"`) && strings.Contains(l, `"event":"`+event+`"`) {
			lines[i] = strings.Replace(l, `"time":"2`, `"time":"1`, 1)
			if lines[i] == l {
				t.Fatalf("nothing to edit in %s", l)
			}
			if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no %s record of run %s in the journal", event, runID)
}

// A record edited in the middle of the journal: an emergency still runs (and says so);
// undo, which renames the dirs a run's records name, refuses a run the chain no longer
// vouches for and changes nothing.
func TestJournalChainBrokenEmergencyRunsUndoRefuses(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	first, err := e.run(false)
	if err != nil {
		t.Fatal(err)
	}
	editRecord(t, e.cfg.Journal, first.RunID, "intent")

	before := contents(t, filepath.Dir(e.cfg.InstallDir))
	_, err = Undo(context.Background(), first.RunID, Options{Config: e.cfg}, Deps{Service: e.m})
	if err == nil || !strings.Contains(err.Error(), "not vouched for by the journal's hash chain") {
		t.Fatalf("undo of an edited run: %v, want a refusal naming the hash chain", err)
	}
	if after := contents(t, filepath.Dir(e.cfg.InstallDir)); after != before {
		t.Fatalf("the refused undo changed the install's dir:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	if warned := e.rollBackV3Warned(t, "an edited journal"); !strings.Contains(warned, "fails its hash chain") {
		t.Fatalf("the broken chain was not named: %v", warned)
	}
}

// outcomeFails fails the journal write of an outcome record, and lets every other through.
type outcomeFails struct{ journalWriter }

func (o outcomeFails) Append(runID, event, step string, data any) (journal.Record, error) {
	if event == journal.EventOutcome {
		return journal.Record{}, fmt.Errorf("append %s: %w", event, syscall.ENOSPC)
	}
	return o.journalWriter.Append(runID, event, step, data)
}

// The outcome of a rollback that worked cannot be journaled: the rollback keeps its outcome
// (the service is healthy on the backup), the result and a warning say what the journal lacks,
// and the next emergency takes the run up (completes it) instead of rolling back again.
func TestEmergencyOutcomeNotJournaled(t *testing.T) {
	e := newEnv(t)
	e.cfg.Standby.Enabled = false
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken"})
	var warns []string
	res, err := Emergency(context.Background(), Options{Config: e.cfg, Command: "emergency"}, Deps{
		Service: e.m,
		Events: func(ev Event) {
			if ev.Kind == "warn" {
				warns = append(warns, ev.Message)
			}
		},
		wrapJournal: func(j journalWriter) journalWriter { return outcomeFails{j} },
	})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("emergency: %v, outcome %q", err, res.Outcome)
	}
	if !strings.Contains(res.JournalError, "the outcome of this run (ok) was not journaled") || !strings.Contains(res.JournalError, "no space left") {
		t.Errorf("journal error %q", res.JournalError)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "shows that run as interrupted") {
		t.Errorf("warnings %q", warns)
	}
	recs, err := journal.ReadAll(e.cfg.Journal)
	if err != nil {
		t.Fatal(err)
	}
	if runs := journal.Runs(recs); len(runs) != 1 || !runs[0].Unfinished() {
		t.Fatalf("runs %+v, want one unfinished", runs)
	}

	// the next run finds the swap done: it completes that run, it does not roll back again
	e.m.calls = nil
	res2, err := e.run(false)
	if err != nil || res2.Recovered == nil || res2.Recovered.RunID != res.RunID || res2.Recovered.Action != "completed" {
		t.Fatalf("second run: %v, recovered %+v", err, res2.Recovered)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1" {
		t.Errorf("app.txt = %q after the second run", got)
	}
	if got := read(t, filepath.Join(res.FailedDir, "app.txt")); got != "v2 broken" {
		t.Errorf("the failed dir holds %q", got)
	}
	recs, err = journal.ReadAll(e.cfg.Journal)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range journal.Runs(recs) {
		if r.Unfinished() {
			t.Errorf("run %s (%s) still unfinished", r.ID, r.Command)
		}
	}
}
