package runbook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// deployEnv is an install whose health is its app.txt: anything but "broken" in it passes.
func deployEnv(t *testing.T) (*env, DeployDeps, string) {
	e := newEnv(t)
	e.cfg.Databases = nil
	e.cfg.Deploy.GatePasses = 2
	e.cfg.Deploy.GateTimeout = 500 * time.Millisecond
	e.cfg.Deploy.Watch = 0
	app := filepath.Join(e.cfg.InstallDir, "app.txt")
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v1", "package.json": `{"version": "1.0.0"}`})
	probe := health.FuncProbe{Name: "app", F: func(context.Context) health.Result {
		b, err := os.ReadFile(app)
		return health.Result{Check: "app", OK: err == nil && !strings.Contains(string(b), "broken"), Detail: string(b)}
	}}
	return e, DeployDeps{Deps: Deps{Service: e.m, Probes: []health.Prober{probe}}}, app
}

func deploy(e *env, dd DeployDeps, script string) (*DeployResult, error) {
	return Deploy(context.Background(), DeployOptions{Config: e.cfg, Command: []string{"sh", "-c", script}}, dd)
}

// journalRuns are the runs of the journal by command.
func journalRuns(t *testing.T, e *env) map[string][]journal.Run {
	t.Helper()
	recs, err := journal.ReadAll(e.cfg.Journal)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]journal.Run{}
	for _, r := range journal.Runs(recs) {
		out[r.Command] = append(out[r.Command], r)
	}
	return out
}

func TestDeployHealthyStays(t *testing.T) {
	e, dd, app := deployEnv(t)
	old := e.backup("20200101-000000", map[string]string{"app.txt": "v0"})
	res, err := deploy(e, dd, "printf v2 > "+app)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if got := read(t, app); got != "v2" || res.Outcome != "ok" || res.FailedStep != "" || res.Rollback != nil {
		t.Fatalf("app.txt %q, result %+v", got, res)
	}
	if len(e.m.calls) != 0 {
		t.Errorf("the service was driven: %v", e.m.calls)
	}
	// The backup of 2020 is too old: a new one of v1 was made, and verified.
	if res.Backup == nil || !res.Backup.Created || res.Backup.Path == old || !strings.Contains(res.Backup.Reason, "deploy.backup_max_age") {
		t.Fatalf("backup %+v", res.Backup)
	}
	state, err := (backup.Store{Path: e.cfg.Backup.State, Install: e.cfg.InstallDir, BackupDir: e.cfg.Backup.Dir}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if st := state.Get(filepath.Base(res.Backup.Path)).Verify; st == nil || !st.OK {
		t.Errorf("the new backup's verification was not recorded: %+v", st)
	}
	runs := journalRuns(t, e)
	if len(runs[DeployCommand]) != 1 || runs[DeployCommand][0].Outcome != "ok" || len(runs["emergency"]) != 0 {
		t.Fatalf("journal runs %+v", runs)
	}
}

func TestDeployGateFailureRollsBack(t *testing.T) {
	e, dd, app := deployEnv(t)
	res, err := deploy(e, dd, "printf 'v2 broken' > "+app)
	if !errors.Is(err, ErrDeployRolledBack) {
		t.Fatalf("err = %v, want ErrDeployRolledBack", err)
	}
	if got := read(t, app); got != "v1" {
		t.Fatalf("after the rollback app.txt = %q, want v1", got)
	}
	if res.Outcome != "rolled_back" || res.FailedStep != "gate" || res.Rollback == nil || res.Rollback.Outcome != "ok" {
		t.Fatalf("result %+v", res)
	}
	if len(res.Gate) == 0 || res.Gate[len(res.Gate)-1].OK {
		t.Errorf("no failing gate evidence: %+v", res.Gate)
	}
	if strings.Join(e.m.calls, ",") != "stop,start" {
		t.Errorf("service calls %v", e.m.calls)
	}
	if got := read(t, filepath.Join(res.Rollback.FailedDir, "app.txt")); got != "v2 broken" {
		t.Errorf("the failed install is not kept: %q", got)
	}
	runs := journalRuns(t, e)
	if len(runs[DeployCommand]) != 1 || runs[DeployCommand][0].Outcome != "rolled_back" || len(runs["emergency"]) != 1 || runs["emergency"][0].Outcome != "ok" {
		t.Fatalf("journal runs %+v", runs)
	}
	var ev deployFailure
	for _, rec := range runs[DeployCommand][0].Records {
		if rec.Event == EventDeployFailed {
			if err := json.Unmarshal(rec.Data, &ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ev.Step != "gate" || len(ev.Gate) == 0 || !strings.Contains(ev.Error, "v2 broken") {
		t.Errorf("journaled evidence %+v", ev)
	}
}

func TestDeployCommandFailureRollsBack(t *testing.T) {
	e, dd, app := deployEnv(t)
	res, err := deploy(e, dd, "printf v2 > "+app+"; exit 7")
	if !errors.Is(err, ErrDeployRolledBack) || res.FailedStep != "deploy" || res.ExitCode == nil || *res.ExitCode != 7 {
		t.Fatalf("err %v, result %+v", err, res)
	}
	if got := read(t, app); got != "v1" {
		t.Fatalf("app.txt = %q, want v1", got)
	}
}

func TestDeployCommandTimeoutKillsItsGroup(t *testing.T) {
	e, dd, app := deployEnv(t)
	e.cfg.Deploy.CommandTimeout = 3 * time.Second // long enough for a loaded machine to start the child that writes its pid
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	start := time.Now()
	// A child that ignores SIGTERM: the group still ends, by SIGKILL, within the grace.
	res, err := deploy(e, dd, "printf v2 > "+app+"; sh -c 'trap \"\" TERM; echo $$ > "+pidFile+"; while :; do sleep 0.05; done' & wait")
	if !errors.Is(err, ErrDeployRolledBack) || res.FailedStep != "deploy" || !strings.Contains(res.Error, "deploy.command_timeout") {
		t.Fatalf("err %v, result %+v", err, res)
	}
	if took := time.Since(start); took > commandGrace+10*time.Second {
		t.Errorf("took %s", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	if _, err := os.Stat("/proc/" + pid); err == nil {
		if st, _ := os.ReadFile("/proc/" + pid + "/stat"); !strings.Contains(string(st), ") Z ") {
			t.Errorf("the deploy command's child %s outlived it", pid)
		}
	}
}

// fakeSampler returns its samples in turn (then the last one again).
type fakeSampler struct {
	samples []assess.Sample
	n       int
}

func (f *fakeSampler) Take(context.Context) assess.Sample {
	s := f.samples[min(f.n, len(f.samples)-1)]
	f.n++
	s.Time = time.Now().UTC()
	return s
}

func TestDeployWatchFailureRollsBack(t *testing.T) {
	e, dd, app := deployEnv(t)
	e.cfg.Deploy.Watch = 10 * time.Second
	e.cfg.Deploy.WatchInterval = 5 * time.Millisecond
	up := assess.Sample{Active: assess.Ptr(true), State: "active", Restarts: assess.Ptr(0)}
	down := assess.Sample{Active: assess.Ptr(false), State: "failed", Restarts: assess.Ptr(0)}
	dd.Sampler = &fakeSampler{samples: []assess.Sample{up, up, up, down}}
	res, err := deploy(e, dd, "printf v2 > "+app)
	if !errors.Is(err, ErrDeployRolledBack) || res.FailedStep != "watch" {
		t.Fatalf("err %v, result %+v", err, res)
	}
	if res.Watch == nil || res.Watch.Samples != 4 || res.Watch.Assessment.Severity != assess.P0 {
		t.Fatalf("watch %+v", res.Watch)
	}
	if got := read(t, app); got != "v1" {
		t.Fatalf("app.txt = %q, want v1", got)
	}
}

func TestDeployWatchPassesWhenQuiet(t *testing.T) {
	e, dd, app := deployEnv(t)
	e.cfg.Deploy.Watch = 100 * time.Millisecond
	e.cfg.Deploy.WatchInterval = 10 * time.Millisecond
	up := assess.Sample{Active: assess.Ptr(true), State: "active", Restarts: assess.Ptr(2), Probe: &assess.Probe{OK: true, LatencyMS: 3}}
	dd.Sampler = &fakeSampler{samples: []assess.Sample{up}}
	res, err := deploy(e, dd, "printf v2 > "+app)
	if err != nil || res.Outcome != "ok" || res.Watch == nil || res.Watch.Samples < 5 {
		t.Fatalf("err %v, result %+v watch %+v", err, res, res.Watch)
	}
	if s := res.Watch.Assessment.Severity; s != assess.Inconclusive {
		t.Errorf("severity %s (no baseline: response time cannot be judged)", s)
	}
}

func TestDeployRollbackFailureIsItsOwnError(t *testing.T) {
	e, dd, app := deployEnv(t)
	e.m.onStart = func() error { return errors.New("unit failed to start") }
	res, err := deploy(e, dd, "printf 'v2 broken' > "+app)
	if !errors.Is(err, ErrDeployRollbackFailed) || errors.Is(err, ErrDeployRolledBack) || res.Outcome != "rollback_failed" {
		t.Fatalf("err %v, outcome %s", err, res.Outcome)
	}
	if res.Rollback == nil || res.Rollback.Outcome != "unhealthy" {
		t.Fatalf("rollback %+v", res.Rollback)
	}
}

// The lock is held while the command runs and while the rollback runs: no other run can
// come in between the failed gate and the rollback.
func TestDeployHoldsTheLockThroughTheRollback(t *testing.T) {
	e, dd, app := deployEnv(t)
	var during []error
	tryLock := func() {
		lk, err := lock.Acquire(e.cfg.Lock, lock.Holder{Command: "another run"})
		if err == nil {
			_ = lk.Release()
		}
		during = append(during, err)
	}
	dd.Run = func(ctx context.Context, argv []string, stdout, stderr io.Writer) (int, error) {
		tryLock()
		return runCommand(ctx, argv, stdout, stderr)
	}
	e.m.onStart = func() error { tryLock(); return nil }
	if _, err := deploy(e, dd, "printf 'v2 broken' > "+app); !errors.Is(err, ErrDeployRolledBack) {
		t.Fatal(err)
	}
	if len(during) != 2 {
		t.Fatalf("lock tried %d times", len(during))
	}
	for i, err := range during {
		if !errors.Is(err, lock.ErrLocked) {
			t.Errorf("try %d: another run got the lock (%v)", i, err)
		}
	}
	lk, err := lock.Acquire(e.cfg.Lock, lock.Holder{})
	if err != nil {
		t.Fatalf("the lock is not released after the deploy: %v", err)
	}
	_ = lk.Release()
}

func TestDeployDryRunRunsNothing(t *testing.T) {
	e, dd, app := deployEnv(t)
	marker := filepath.Join(t.TempDir(), "ran")
	res, err := Deploy(context.Background(), DeployOptions{Config: e.cfg, DryRun: true, Command: []string{"touch", marker}}, dd)
	if err != nil || res.Outcome != "planned" || len(res.Plan) != 6 || !strings.HasPrefix(res.Plan[0], "check_runs: no unresolved interrupted run") {
		t.Fatalf("err %v, result %+v", err, res)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the dry run ran the command: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(e.cfg.Backup.Dir, "*")); len(m) != 0 {
		t.Errorf("the dry run wrote %v", m)
	}
	if _, err := os.Stat(e.cfg.Journal); !os.IsNotExist(err) {
		t.Errorf("the dry run wrote the journal: %v", err)
	}
	if read(t, app) != "v1" || !strings.Contains(strings.Join(res.Plan, "\n"), "would run touch") {
		t.Errorf("plan %q", res.Plan)
	}
}

// A backup of the running install, young and verified, is used; once the install changed
// (its package.json is newer than the backup) a new one is made.
func TestDeployReusesAFreshBackupOfTheRunningInstall(t *testing.T) {
	e, dd, app := deployEnv(t)
	at := func(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }
	dd.Now = at(0)
	first, err := deploy(e, dd, "printf v2 > "+app+"; printf '{\"version\": \"2.0.0\"}' > "+filepath.Join(e.cfg.InstallDir, "package.json"))
	if err != nil || !first.Backup.Created {
		t.Fatalf("first deploy: %v %+v", err, first.Backup)
	}
	dd.Now = at(2 * time.Second)
	second, err := deploy(e, dd, "true")
	if err != nil || !second.Backup.Created || !strings.Contains(second.Backup.Reason, "the install changed after the newest backup") {
		t.Fatalf("second deploy: %v %+v", err, second.Backup)
	}
	dd.Now = at(4 * time.Second)
	third, err := deploy(e, dd, "true")
	if err != nil || third.Backup.Created || third.Backup.Path != second.Backup.Path {
		t.Fatalf("third deploy: %v %+v (the second's backup: %s)", err, third.Backup, second.Backup.Path)
	}
}

func TestDeployRefusesAnEmptyCommand(t *testing.T) {
	e, dd, _ := deployEnv(t)
	for _, argv := range [][]string{nil, {""}, {"  "}} {
		_, err := Deploy(context.Background(), DeployOptions{Config: e.cfg, Command: argv}, dd)
		if !errors.Is(err, ErrPreflight) {
			t.Errorf("%q: err %v", argv, err)
		}
	}
	if _, err := os.Stat(e.cfg.Journal); !os.IsNotExist(err) {
		t.Errorf("a refused deploy wrote the journal: %v", err)
	}
}

func TestJudgeWatch(t *testing.T) {
	dc := settings.DefaultDeploy()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	series := func(n int, f func(i int, s *assess.Sample)) []assess.Sample {
		out := make([]assess.Sample, n)
		for i := range out {
			out[i] = assess.Sample{Time: start.Add(time.Duration(i) * time.Second), Active: assess.Ptr(true), State: "active",
				Restarts: assess.Ptr(0), Probe: &assess.Probe{OK: true, LatencyMS: 10}}
			f(i, &out[i])
		}
		return out
	}
	base := &assess.Baseline{Latency: assess.Latency{Count: 20, P95MS: 10}}
	for _, tc := range []struct {
		name    string
		samples []assess.Sample
		want    assess.Severity
		met     string
	}{
		{"quiet", series(20, func(int, *assess.Sample) {}), assess.Inconclusive, ""},
		{"one restart", series(20, func(i int, s *assess.Sample) {
			if i >= 10 {
				s.Restarts = assess.Ptr(1)
			}
		}), assess.P0, "service_down"},
		{"2 of 20 requests failed", series(20, func(i int, s *assess.Sample) {
			if i%10 == 3 {
				s.Probe = &assess.Probe{StatusCode: 503}
			}
		}), assess.P2, "error_rate"},
		{"p95 3x the baseline", series(20, func(i int, s *assess.Sample) { s.Probe.LatencyMS = 30 }), assess.P2, "response_time"},
		{"too few samples for a rate", series(5, func(i int, s *assess.Sample) {
			if i == 3 {
				s.Probe = &assess.Probe{StatusCode: 503}
			}
		}), assess.Inconclusive, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.samples[len(tc.samples)-1].Time
			a := JudgeWatch(tc.samples, start, now, base, nil, dc)
			if a.Severity != tc.want || (tc.met != "" && !strings.Contains(strings.Join(a.Met, ","), tc.met)) {
				t.Fatalf("severity %s met %v, want %s %s\n%+v", a.Severity, a.Met, tc.want, tc.met, a.Conditions)
			}
		})
	}
}

// Ctrl-C while the command runs: its group is stopped, nothing is rolled back, the outcome
// says so and names the backup to roll back to.
func TestDeployInterruptedIsNotRolledBack(t *testing.T) {
	e, dd, app := deployEnv(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	dd.Run = func(cctx context.Context, argv []string, stdout, stderr io.Writer) (int, error) {
		go func() {
			// the operator presses Ctrl-C once the command has begun
			for i := 0; i < 500; i++ {
				if b, _ := os.ReadFile(app); string(b) == "v2 broken" {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel(&Interrupt{Signal: syscall.SIGINT})
		}()
		return runCommand(cctx, argv, stdout, stderr)
	}
	start := time.Now()
	res, err := Deploy(ctx, DeployOptions{Config: e.cfg, Command: []string{"sh", "-c", "printf 'v2 broken' > " + app + "; sleep 30"}}, dd)
	if !errors.Is(err, ErrDeployNotRolledBack) || !errors.Is(err, ErrInterrupted) || res.Outcome != "not_rolled_back" {
		t.Fatalf("err %v, outcome %s", err, res.Outcome)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the interrupted command ran on: %s", took)
	}
	if res.Rollback != nil || len(e.m.calls) != 0 || read(t, app) != "v2 broken" {
		t.Errorf("rolled back anyway: %+v, calls %v", res.Rollback, e.m.calls)
	}
	if !strings.Contains(strings.Join(res.Next, "\n"), "cfrollback emergency --backup "+res.Backup.Path) {
		t.Errorf("next %q", res.Next)
	}
	if runs := journalRuns(t, e); len(runs[DeployCommand]) != 1 || runs[DeployCommand][0].Outcome != "not_rolled_back" {
		t.Errorf("journal %+v", runs)
	}
}
