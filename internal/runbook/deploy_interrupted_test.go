package runbook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/journal"
)

// interruptedAfterSwap leaves in e's journal an emergency run killed after its swap, as
// the journal tells it (TestEmergencyOutcomeNotJournaled): the install is v0 from the backup
// and the run has no outcome, so the next emergency completes it instead of rolling back.
func interruptedAfterSwap(t *testing.T, e *env) *Result {
	t.Helper()
	e.cfg.Standby.Enabled = false
	e.backup("20200101-000000", map[string]string{"app.txt": "v0", "package.json": `{"version": "0.9.0"}`})
	res, err := Emergency(context.Background(), Options{Config: e.cfg, Command: "emergency"}, Deps{
		Service:     e.m,
		wrapJournal: func(j journalWriter) journalWriter { return outcomeFails{j} },
	})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("the emergency to interrupt: %v, %+v", err, res)
	}
	if runs := journalRuns(t, e); len(runs) != 1 || len(runs["emergency"]) != 1 || !runs["emergency"][0].Unfinished() {
		t.Fatalf("runs %+v, want one unfinished emergency", runs)
	}
	e.m.calls = nil
	return res
}

// A deploy over an emergency left interrupted: before the fix its rollback went through the
// emergency's resumption, which completed THAT run (start, health) and left the deploy's
// version in place while the deploy said "rolled back". The deploy refuses to start instead,
// changing nothing, and says to resolve the run first; --dry-run says the same.
func TestDeployRefusesOverAnInterruptedEmergency(t *testing.T) {
	e, dd, app := deployEnv(t)
	em := interruptedAfterSwap(t, e)
	if got := read(t, app); got != "v0" {
		t.Fatalf("app.txt %q after the interrupted emergency", got)
	}
	backups, _ := filepath.Glob(filepath.Join(e.cfg.Backup.Dir, "*.tar.gz"))
	for _, dry := range []bool{false, true} {
		// the deploy command would fail (exit 7) after installing a healthy-looking v2: a
		// rollback that does not restore the deploy's backup would leave v2 and say ok
		res, err := Deploy(context.Background(), DeployOptions{Config: e.cfg, DryRun: dry,
			Command: []string{"sh", "-c", "printf v2 > " + app + "; exit 7"}}, dd)
		if got := read(t, app); got != "v0" {
			t.Fatalf("dry=%v: app.txt = %q: the deploy ran over the interrupted run %s (err %v, result %+v, rollback %+v)",
				dry, got, em.RunID, err, res, res.Rollback)
		}
		want := "preflight_failed"
		if dry {
			want = "preflight_would_fail"
		}
		if !errors.Is(err, ErrPreflight) || res.Outcome != want || res.ExitCode != nil || res.Rollback != nil {
			t.Fatalf("dry=%v: err %v, outcome %s, exit %v", dry, err, res.Outcome, res.ExitCode)
		}
		var se *StepError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), em.RunID) || !strings.Contains(se.Hint, "cfrollback emergency") ||
			!strings.Contains(se.Hint, "cfrollback history") {
			t.Errorf("dry=%v: the error does not name the run and what to run: %v (hint %q)", dry, err, hintOf(err))
		}
		if next := strings.Join(res.Next, "\n"); !strings.Contains(next, "cfrollback emergency --dry-run") || !strings.Contains(next, "cfrollback history") {
			t.Errorf("dry=%v: next %q", dry, res.Next)
		}
		if len(e.m.calls) != 0 {
			t.Errorf("dry=%v: the service was driven: %v", dry, e.m.calls)
		}
		if now, _ := filepath.Glob(filepath.Join(e.cfg.Backup.Dir, "*.tar.gz")); len(now) != len(backups) {
			t.Errorf("dry=%v: a backup was made: %v", dry, now)
		}
	}
	// resolving it with 'cfrollback emergency' lets the next deploy run (and roll back to
	// its own backup, v0)
	if res, err := e.run(false); err != nil || res.Recovered == nil || res.Recovered.Action != "completed" {
		t.Fatalf("emergency to resolve it: %v %+v", err, res)
	}
	res, err := Deploy(context.Background(), DeployOptions{Config: e.cfg, Command: []string{"sh", "-c", "printf v2 > " + app + "; exit 7"}}, dd)
	if !errors.Is(err, ErrDeployRolledBack) || res.Rollback == nil || res.Rollback.Recovered != nil {
		t.Fatalf("deploy after the run was resolved: %v, %+v", err, res)
	}
	if got := read(t, app); got != "v0" {
		t.Errorf("app.txt = %q after the rollback, want the deploy's backup's v0", got)
	}
}

// Belt and braces: should the emergency of a deploy's rollback still take up another run
// (completing it instead of restoring the deploy's backup), the deploy does not call that a
// rollback: exit 21 (rollback failed), naming the run it completed and the backup to restore.
func TestDeployRollbackThatCompletedAnotherRunFails(t *testing.T) {
	e, dd, app := deployEnv(t)
	var called Options
	dd.Emergency = func(ctx context.Context, opt Options, deps Deps) (*Result, error) {
		called = opt
		return &Result{RunID: "20260101-000000-other", Outcome: "ok",
			Recovered: &Recovery{RunID: "20250101-000000-old", Action: "completed", Detail: "the restored install was already in place"}}, nil
	}
	res, err := deploy(e, dd, "printf v2 > "+app+"; exit 7")
	if called.BackupPath == "" || called.BackupPath != res.Backup.Path {
		t.Fatalf("the rollback was not asked for the deploy's backup: %+v (backup %+v)", called, res.Backup)
	}
	if !errors.Is(err, ErrDeployRollbackFailed) || errors.Is(err, ErrDeployRolledBack) || res.Outcome != "rollback_failed" {
		t.Fatalf("err %v, outcome %s", err, res.Outcome)
	}
	if !strings.Contains(err.Error(), "20250101-000000-old") || !strings.Contains(err.Error(), res.Backup.Path) {
		t.Errorf("the error does not say what happened: %v", err)
	}
	if !strings.Contains(strings.Join(res.Next, "\n"), "cfrollback emergency --backup "+res.Backup.Path) {
		t.Errorf("next %q", res.Next)
	}
	if b, _ := os.ReadFile(app); string(b) != "v2" {
		t.Fatalf("app.txt %q", b)
	}
}

func hintOf(err error) string {
	var se *StepError
	if errors.As(err, &se) {
		return se.Hint
	}
	return ""
}

// killedAfter is a journal that stops writing once a record (event, step) has been written:
// what a SIGKILL right after it leaves. Every later write "succeeds" and is lost.
type killedAfter struct {
	journalWriter
	event, step string
	dead        *bool
}

func (k killedAfter) Append(runID, event, step string, data any) (journal.Record, error) {
	if *k.dead {
		return journal.Record{}, nil
	}
	rec, err := k.journalWriter.Append(runID, event, step, data)
	if event == k.event && step == k.step {
		*k.dead = true
	}
	return rec, err
}

// interruptedDeploy runs a deploy of script whose journal ends after (event, step), as a
// kill there leaves it, and returns its result.
func interruptedDeploy(t *testing.T, e *env, dd DeployDeps, script, event, step string) *DeployResult {
	t.Helper()
	dead := false
	dd.wrapJournal = func(j journalWriter) journalWriter { return killedAfter{j, event, step, &dead} }
	res, err := deploy(e, dd, script)
	if err != nil || !dead {
		t.Fatalf("the deploy to interrupt: %v (journal cut: %v) %+v", err, dead, res)
	}
	if runs := journalRuns(t, e); len(runs["deploy"]) == 0 || !runs["deploy"][len(runs["deploy"])-1].Unfinished() {
		t.Fatalf("runs %+v, want an unfinished deploy", runs)
	}
	e.m.calls = nil
	return res
}

// A deploy killed after its command ran (before its gate or watch ended) leaves an install
// that nothing verified. Before the fix the next deploy took its "fresh verified backup" of
// that version and, failing, rolled back to it: the unverified v2 stayed, called good. The
// deploy refuses instead (nothing run, no backup), naming the run and the emergency that puts
// the interrupted deploy's own backup back; after that emergency the next deploy runs, and the
// interrupted run is closed.
func TestDeployRefusesOverAnInterruptedDeploy(t *testing.T) {
	e, dd, app := deployEnv(t)
	first := interruptedDeploy(t, e, dd, "printf v2 > "+app, journal.EventStepDone, "deploy")
	if got := read(t, app); got != "v2" || first.Backup == nil {
		t.Fatalf("app.txt %q, backup %+v", got, first.Backup)
	}
	backups, _ := filepath.Glob(filepath.Join(e.cfg.Backup.Dir, "*.tar.gz"))
	for _, dry := range []bool{false, true} {
		res, err := Deploy(context.Background(), DeployOptions{Config: e.cfg, DryRun: dry,
			Command: []string{"sh", "-c", "printf v3 > " + app + "; exit 7"}}, dd)
		if got := read(t, app); got != "v2" {
			t.Fatalf("dry=%v: app.txt = %q: the deploy ran over the interrupted deploy %s (err %v, outcome %s)", dry, got, first.RunID, err, res.Outcome)
		}
		if !errors.Is(err, ErrPreflight) || res.ExitCode != nil || res.Rollback != nil {
			t.Fatalf("dry=%v: err %v, outcome %s, exit %v, rollback %+v", dry, err, res.Outcome, res.ExitCode, res.Rollback)
		}
		want := "cfrollback emergency --backup " + first.Backup.Path
		if !strings.Contains(err.Error(), first.RunID) || !strings.Contains(err.Error(), "deploy run") ||
			!strings.Contains(hintOf(err), want) || !strings.Contains(strings.Join(res.Next, "\n"), want) {
			t.Errorf("dry=%v: the error does not name the run and what to run: %v (hint %q, next %q)", dry, err, hintOf(err), res.Next)
		}
		if len(e.m.calls) != 0 {
			t.Errorf("dry=%v: the service was driven: %v", dry, e.m.calls)
		}
		if now, _ := filepath.Glob(filepath.Join(e.cfg.Backup.Dir, "*.tar.gz")); len(now) != len(backups) {
			t.Errorf("dry=%v: a backup was made: %v", dry, now)
		}
	}
	// 'backup prune' keeps the backup that way out names while the deploy is unresolved
	if inUse, err := backup.InUse(e.cfg.Journal, e.cfg.Lock); err != nil || inUse[first.Backup.Path] != first.RunID {
		t.Errorf("backup.InUse does not hold the interrupted deploy's backup %s: %v %v", first.Backup.Path, inUse, err)
	}
	// the way out: roll back to the backup the interrupted deploy made, then deploy again
	em, err := Emergency(context.Background(), Options{Config: e.cfg, Command: "emergency", BackupPath: first.Backup.Path}, Deps{Service: e.m})
	if err != nil || em.Outcome != "ok" || read(t, app) != "v1" {
		t.Fatalf("emergency --backup %s: %v %+v, app %q", first.Backup.Path, err, em, read(t, app))
	}
	res, err := deploy(e, dd, "printf v3 > "+app+"; exit 7")
	if !errors.Is(err, ErrDeployRolledBack) || read(t, app) != "v1" {
		t.Fatalf("deploy after the rollback: %v, %+v, app %q", err, res, read(t, app))
	}
	d := journalRuns(t, e)["deploy"]
	if d[0].ID != first.RunID || d[0].Unfinished() || !strings.Contains(d[0].Outcome, em.RunID) {
		t.Errorf("the interrupted deploy is not closed by the emergency that resolved it: %+v", d[0])
	}
}

// A deploy killed before its command began (while it made its backup) changed nothing: the
// next deploy closes it, with a warning, and goes on.
func TestDeployOverADeployKilledBeforeItsCommand(t *testing.T) {
	e, dd, app := deployEnv(t)
	var warns []string
	dd.Events = func(ev Event) {
		if ev.Kind == "warn" {
			warns = append(warns, ev.Message)
		}
	}
	first := interruptedDeploy(t, e, dd, "printf v2 > "+app, journal.EventStepStart, "backup")
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v1"}) // as a kill before the command leaves it
	if _, err := deploy(e, dd, "printf v3 > "+app); err != nil || read(t, app) != "v3" {
		t.Fatalf("deploy after a deploy killed before its command: %v, app %q", err, read(t, app))
	}
	d := journalRuns(t, e)["deploy"]
	if d[0].ID != first.RunID || d[0].Unfinished() || !strings.HasPrefix(d[0].Outcome, "abandoned") {
		t.Errorf("the interrupted deploy is not closed: %+v", d[0])
	}
	if !strings.Contains(strings.Join(warns, "\n"), first.RunID) {
		t.Errorf("no warning names %s: %q", first.RunID, warns)
	}
}

// A rollback --to-version killed after its stop (the version half installed) blocks a deploy
// too: the deploy names 'cfrollback rollback --to-version V' that takes over from it. A later
// emergency that ended ok resolves it as well.
func TestDeployRefusesOverAnInterruptedVersionRollback(t *testing.T) {
	e, dd, app := deployEnv(t)
	j, err := journal.Open(e.cfg.Journal)
	if err != nil {
		t.Fatal(err)
	}
	const id = "20260101-000000-version"
	for _, r := range []struct {
		event, step string
		data        any
	}{
		{journal.EventIntent, "", map[string]any{"command": VersionCommand, "user": "ops", "install_dir": e.cfg.InstallDir, "to_version": "0.9.0"}},
		{journal.EventStepStart, "preflight", nil}, {journal.EventStepDone, "preflight", nil},
		{journal.EventStepStart, "stop", nil}, {journal.EventStepDone, "stop", nil}, {journal.EventStepStart, "install", nil},
	} {
		if _, err := j.Append(id, r.event, r.step, r.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := deploy(e, dd, "printf v3 > "+app)
	if !errors.Is(err, ErrPreflight) || read(t, app) != "v1" || res.ExitCode != nil {
		t.Fatalf("deploy over an interrupted rollback --to-version: %v, app %q", err, read(t, app))
	}
	if !strings.Contains(err.Error(), id) || !strings.Contains(hintOf(err), "cfrollback rollback --to-version 0.9.0") {
		t.Errorf("the error does not name the run and what to run: %v (hint %q)", err, hintOf(err))
	}
	e.backup("20200101-000000", map[string]string{"app.txt": "v0"})
	if em, err := e.run(false); err != nil || em.Outcome != "ok" {
		t.Fatalf("emergency: %v %+v", err, em)
	}
	if _, err := deploy(e, dd, "printf v3 > "+app); err != nil || read(t, app) != "v3" {
		t.Fatalf("deploy after an emergency resolved it: %v, app %q", err, read(t, app))
	}
}
