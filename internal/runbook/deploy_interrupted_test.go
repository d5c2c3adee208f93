package runbook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
