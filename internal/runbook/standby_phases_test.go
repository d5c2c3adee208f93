package runbook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/standby"
)

// pausedRefresh starts a standby refresh that stops right after the first entry of its
// extraction (without the lock) until resume is called; done gives its result. Only the
// first extraction of the test pauses.
type pausedRefresh struct {
	t      *testing.T
	e      *env
	resume func()
	done   chan struct{}
	res    *StandbyResult
	err    error
}

func startPausedRefresh(ctx context.Context, t *testing.T, e *env) *pausedRefresh {
	t.Helper()
	reached, release := make(chan struct{}), make(chan struct{})
	var taken atomic.Bool // not a sync.Once: the other extractions must not wait for this one
	testExtracting = func() {
		if !taken.CompareAndSwap(false, true) {
			return
		}
		close(reached)
		select {
		case <-release:
		case <-time.After(time.Minute): // bounded: a test that forgot to resume fails, it does not hang
		}
	}
	t.Cleanup(func() { testExtracting = nil })
	p := &pausedRefresh{t: t, e: e, done: make(chan struct{})}
	resumed := false
	p.resume = func() {
		if !resumed {
			resumed = true
			close(release)
		}
	}
	t.Cleanup(p.resume)
	go func() {
		defer close(p.done)
		p.res, p.err = StandbyRefresh(ctx, Options{Config: e.cfg}, Deps{Service: e.m})
	}()
	select {
	case <-reached:
	case <-p.done:
		t.Fatalf("the refresh ended before it extracted: %v %+v", p.err, p.res)
	case <-time.After(30 * time.Second):
		t.Fatal("the refresh did not reach its extraction in 30s")
	}
	return p
}

func (p *pausedRefresh) wait() (*StandbyResult, error) {
	p.t.Helper()
	p.resume()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatal("the refresh did not end in 30s after it was resumed")
	}
	return p.res, p.err
}

// noStandbyLeft fails (with msg) when a refresh that must not put its tree in place left a
// standby or its work dir, or when history still shows a run without an outcome.
func noStandbyLeft(t *testing.T, e *env, msg string) {
	t.Helper()
	if install.Exists(e.cfg.StandbyPath()) || len(leftovers(e.cfg.StandbyPath())) != 0 {
		t.Fatal(msg)
	}
	noUnfinished(t, e)
}

// noUnfinished fails when history still shows a run without an outcome.
func noUnfinished(t *testing.T, e *env) {
	t.Helper()
	recs, err := journal.ReadAll(e.cfg.Journal)
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range journal.Runs(recs) {
		if run.Unfinished() {
			t.Fatalf("run %s (%s) has no outcome", run.ID, run.Command)
		}
	}
}

// An emergency that comes while a refresh is extracting does not wait for it: it takes the
// lock, ends healthy, and its own refresh leaves the held work dir alone. A verify-style
// record is written at once too. The paused refresh then ends without error, and the
// standby left is a valid one.
func TestEmergencyDuringRefreshExtractionDoesNotWait(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1\n", "lib/a.txt": "a\n"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken\n"})
	p := startPausedRefresh(context.Background(), t, e)
	work := standby.TempPrefix(e.cfg.StandbyPath()) + p.runID()
	if !standby.Held(work) {
		t.Fatalf("the refresh does not hold its work dir %s", work)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := AppendLocked(ctx, e.cfg, "cfrollback verify", "x", journal.EventVerify, map[string]string{"ok": "yes"}); err != nil {
		t.Fatalf("a verify record while a refresh extracts: %v", err)
	}
	res, err := Emergency(ctx, Options{Config: e.cfg}, Deps{Service: e.m})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("the emergency during a refresh's extraction: %v %+v", err, res)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1\n" {
		t.Fatalf("install after the emergency: %q", got)
	}
	sr := res.Standby.Refresh
	if sr == nil || sr.Outcome != "ok" || !strings.Contains(sr.Steps[0].Detail, "left alone") {
		t.Fatalf("the emergency's own refresh: %+v", sr)
	}
	if !install.Exists(work) {
		t.Fatal("the emergency's refresh removed the work dir of a refresh that is still extracting")
	}
	if hl := read(t, res.HumanLog); !strings.Contains(hl, "step standby_seal") {
		t.Fatalf("the emergency's human log %s does not show its standby refresh:\n%s", res.HumanLog, hl)
	}

	pr, err := p.wait()
	if err != nil || (pr.Outcome != "ok" && pr.Outcome != "superseded") {
		t.Fatalf("the paused refresh: %v %+v", err, pr)
	}
	if install.Exists(work) {
		t.Fatalf("the paused refresh left its work dir %s", work)
	}
	if len(leftovers(e.cfg.StandbyPath())) != 0 {
		t.Fatalf("leftovers: %v", leftovers(e.cfg.StandbyPath()))
	}
	b, _ := standby.BackupOf(filepath.Join(e.cfg.Backup.Dir, "backup-20250101-000000.tar.gz"))
	uid, gid, _ := newRunner(Options{Config: e.cfg}, Deps{}).restoreOwner()
	if _, err := standby.Check(context.Background(), e.cfg.StandbyPath(), standby.Want{Backup: b, UID: uid, GID: gid}); err != nil {
		t.Fatalf("the standby left is not valid: %v", err)
	}
	noUnfinished(t, e)
}

// runID reads the paused refresh's run id from its intent in the journal.
func (p *pausedRefresh) runID() string {
	p.t.Helper()
	recs, err := journal.ReadAll(p.e.cfg.Journal)
	if err != nil {
		p.t.Fatal(err)
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Event == journal.EventIntent && strings.Contains(string(recs[i].Data), StandbyRefreshCommand) {
			return recs[i].RunID
		}
	}
	p.t.Fatal("no refresh intent in the journal")
	return ""
}

// A refresh that finds the lock held when its tree is ready waits at most swapLockWait, then
// gives up (outcome busy, an error that is lock.ErrLocked): no standby, no work dir left, and
// the next refresh gives the given-up run its outcome.
func TestRefreshGivesUpWhenTheLockStaysHeld(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1\n"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2\n"})
	defer func(d time.Duration) { swapLockWait = d }(swapLockWait)
	swapLockWait = 300 * time.Millisecond
	p := startPausedRefresh(context.Background(), t, e)
	lk, err := lock.Acquire(e.cfg.Lock, lock.Holder{Command: "test holder"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	res, err := p.wait()
	if !errors.Is(err, lock.ErrLocked) || res.Outcome != "busy" || !strings.Contains(res.Error, "not refreshed") {
		t.Fatalf("a refresh whose swap finds the lock held: %v %+v", err, res)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Fatalf("the refresh waited %s for the lock, more than its bound", d)
	}
	if install.Exists(e.cfg.StandbyPath()) || install.Exists(standby.SealPath(e.cfg.StandbyPath())) || len(leftovers(e.cfg.StandbyPath())) != 0 {
		t.Fatal("a refresh that gave up left a standby, a seal or its work dir")
	}
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	if res, err := e.refresh(); err != nil || res.Outcome != "ok" {
		t.Fatalf("the next refresh: %v %+v", err, res)
	}
	noUnfinished(t, e)
}

// A refresh whose backup is no longer the one an emergency would take when its tree is
// ready (a newer backup was written meanwhile) does not put it in place: outcome superseded.
func TestRefreshSupersededByNewerBackup(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1\n"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v3\n"})
	p := startPausedRefresh(context.Background(), t, e)
	e.backup("20250102-000000", map[string]string{"app.txt": "v2\n"})
	res, err := p.wait()
	if err != nil || res.Outcome != "superseded" || !strings.Contains(res.Detail, "backup-20250102-000000") {
		t.Fatalf("a refresh overtaken by a newer backup: %v %+v", err, res)
	}
	noStandbyLeft(t, e, "a superseded refresh put its tree in place or left its work dir")
}

// Ctrl-C during the extraction (without the lock): the refresh ends failed and journaled, its
// work dir removed, no standby.
func TestRefreshInterruptedDuringExtraction(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1\n"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2\n"})
	ctx, cancel := context.WithCancel(context.Background())
	p := startPausedRefresh(ctx, t, e)
	cancel()
	res, err := p.wait()
	if !errors.Is(err, context.Canceled) || !strings.HasSuffix(res.Outcome, "failed") {
		t.Fatalf("an interrupted refresh: %v %+v", err, res)
	}
	noStandbyLeft(t, e, "an interrupted refresh left a standby or its work dir")
}

// Ctrl-C during the refresh an emergency runs after its outcome cancels only the refresh: the
// emergency's result stays ok (no error), the refresh is reported failed and leaves no work
// dir and no standby.
func TestEmergencyInterruptedInItsRefresh(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1\n"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken\n"})
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	reached := make(chan struct{})
	var once sync.Once
	testExtracting = func() {
		once.Do(func() {
			close(reached)
			cancel(&Interrupt{Signal: os.Interrupt})
		})
	}
	t.Cleanup(func() { testExtracting = nil })
	res, err := Emergency(ctx, Options{Config: e.cfg}, Deps{Service: e.m})
	select {
	case <-reached:
	default:
		t.Fatal("the emergency's refresh never reached its extraction")
	}
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("an emergency interrupted in its refresh: %v %+v", err, res)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1\n" {
		t.Fatalf("install: %q", got)
	}
	sr := res.Standby.Refresh
	if sr == nil || !strings.HasSuffix(sr.Outcome, "failed") || !strings.Contains(sr.Error, "interrupt") {
		t.Fatalf("the interrupted refresh: %+v", sr)
	}
	noStandbyLeft(t, e, "an interrupted refresh left a standby or its work dir")
}

// A refresh whose backup file changed while it was extracted (here: chmod, a new ctime) does
// not put its tree in place: the identity checked under the lock is not the one it extracted.
func TestRefreshSupersededWhenTheBackupFileChanged(t *testing.T) {
	e := newEnv(t)
	bk := e.backup("20250101-000000", map[string]string{"app.txt": "v1\n"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2\n"})
	p := startPausedRefresh(context.Background(), t, e)
	if err := os.Chmod(bk, 0o640); err != nil {
		t.Fatal(err)
	}
	res, err := p.wait()
	if err != nil || res.Outcome != "superseded" || !strings.Contains(res.Detail, "changed while it was extracted") {
		t.Fatalf("a refresh whose backup file changed: %v %+v", err, res)
	}
	noStandbyLeft(t, e, "the refresh put its tree in place or left its work dir")
}
