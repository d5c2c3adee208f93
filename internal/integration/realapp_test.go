package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// appService drives the real app's service the way its operator would, outside cfrollback.
type appService struct {
	name    string
	env     []string // cfrollback settings that locate this manager (paths only)
	restart func(t *testing.T)
}

// systemdService runs the real app as the unit claude-flow.service (the default profile's
// unit name) in a fresh systemd sandbox, and starts it.
func systemdService(t *testing.T, a *realApp) appService {
	sd := testenv.Systemd(t)
	unit := fmt.Sprintf(`[Unit]
Description=Claude Flow (cfrollback real-app test)

[Service]
Type=simple
WorkingDirectory=%s
Environment=HOME=%s NO_COLOR=1
ExecStart=%s %s
Restart=no
TimeoutStopSec=15
`, a.Install, a.Home, a.bin(), strings.Join(a.startArgs(), " "))
	if err := sd.WriteUnit("claude-flow.service", unit); err != nil {
		t.Fatal(err)
	}
	ctl := func(t *testing.T, verb string) {
		t.Helper()
		if out, err := sd.Exec("systemctl", verb, "claude-flow.service"); err != nil {
			t.Fatalf("systemctl %s claude-flow: %v %s", verb, err, out)
		}
	}
	ctl(t, "start")
	return appService{name: "systemd", restart: func(t *testing.T) { ctl(t, "restart") }}
}

// pm2Service runs the real app as the pm2 app claude-flow-assistant (the default profile's
// name) under a fresh PM2_HOME, and starts it.
func pm2Service(t *testing.T, a *realApp) appService {
	pm2 := testenv.PM2(t)
	home := testenv.PM2Home(t, pm2)
	run := func(t *testing.T, args ...string) {
		t.Helper()
		cmd := exec.Command(pm2, args...)
		cmd.Env = append(os.Environ(), "PM2_HOME="+home, "HOME="+a.Home, "NO_COLOR=1")
		cmd.Dir = a.Install
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pm2 %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run(t, append([]string{"start", a.bin(), "--name", "claude-flow-assistant", "--cwd", a.Install, "--"}, a.startArgs()...)...)
	return appService{
		name:    "pm2",
		env:     []string{"CFROLLBACK_SERVICE_PM2_HOME=" + home, "CFROLLBACK_SERVICE_PM2_BIN=" + pm2, "PATH=" + filepath.Dir(pm2) + ":" + os.Getenv("PATH")},
		restart: func(t *testing.T) { run(t, "restart", "claude-flow-assistant") },
	}
}

// A deploy that lost a module, under systemd: the unit stays active, the web server is gone.
func TestRealClaudeFlowEmergencySystemd(t *testing.T) {
	a := newRealApp(t, testenv.ClaudeFlowGood)
	realEmergency(t, a, systemdService(t, a), (*realApp).breakMissingModule)
}

// A deploy that crashes on start, under pm2: pm2 restarts it until it gives up.
func TestRealClaudeFlowEmergencyPM2(t *testing.T) {
	a := newRealApp(t, testenv.ClaudeFlowGood)
	realEmergency(t, a, pm2Service(t, a), (*realApp).breakCrashOnStart)
}

// realEmergency: the known-good release runs and is backed up; the new release is deployed
// with npm, writes data, and is broken by brk; `cfrollback emergency` with the default
// profile puts the good release back, healthy, with that data: first cold (no standby: it
// extracts the backup), then, the same deploy broken again, warm (from the standby that
// `standby refresh` left). A prober polling the health URL every 10 ms times each from the
// command to the first passing probe, against a plain restart of the healthy app.
func realEmergency(t *testing.T, a *realApp, svc appService, brk func(*realApp, *testing.T)) {
	good, bad := testenv.ClaudeFlowGood, testenv.ClaudeFlowNew
	a.waitHealthy(t, 90*time.Second)
	if hc := a.run(svc.env, "health-check", "--critical-only"); hc.Code != 0 {
		t.Fatalf("health-check of the healthy real app: exit %d (a false FAIL)\n%s%s", hc.Code, hc.Stdout, hc.Stderr)
	}
	// The floor: a plain restart of the same app, from the command to healthy.
	p := a.startProber(t, 2*time.Minute)
	svc.restart(t)
	restart := p.untilUp(t, "plain restart")

	a.notify(t, "written-by-good-release")
	// The standby that backup create would refresh is off for it: the first emergency is cold.
	bk := a.run(append(svc.env, "CFROLLBACK_STANDBY_ENABLED=false"), "backup", "create", "--label", "before "+bad, "--json")
	if bk.Code != 0 || bk.JSON["app_version"] != good {
		t.Fatalf("backup create: exit %d, app_version %v (want %s)\n%s%s", bk.Code, bk.JSON["app_version"], good, bk.Stdout, bk.Stderr)
	}

	a.deployBroken(t, svc, brk, "cold", restart.CommandToHealthy)
	cold, cr := a.timedEmergency(t, svc, "cold emergency")
	if sb := standbyUse(cr); sb == nil || sb["used"] != false {
		t.Fatalf("the cold emergency: standby %v, want one not used (nothing refreshed it)", sb)
	}
	a.assertRolledBack(t, svc, cr, "cold")

	// Warm: the same deploy broken the same way; the standby holds the good backup.
	a.deployBroken(t, svc, brk, "warm", restart.CommandToHealthy)
	if sr := a.run(svc.env, "standby", "refresh", "--json"); sr.Code != 0 {
		t.Fatalf("standby refresh: exit %d\n%s%s", sr.Code, sr.Stdout, sr.Stderr)
	}
	warm, wr := a.timedEmergency(t, svc, "warm emergency")
	sb := standbyUse(wr)
	if sb["used"] != true {
		t.Fatalf("the warm emergency did not take the standby: %v\n%s", sb, wr.Stderr)
	}
	a.assertRolledBack(t, svc, wr, "cold", "warm")

	ratio := func(f probeFigures) float64 {
		return float64(f.CommandToHealthy) / float64(restart.CommandToHealthy)
	}
	t.Logf("FIGURES real claude-flow under %s: restart c2h %s; cold c2h %s, downtime_ms %v, command %v ms; "+
		"warm c2h %s, downtime_ms %v, command %v ms, standby proof %v (check %v ms, %v entries); warm/restart %.2fx, cold/restart %.2fx",
		svc.name, restart, cold, cr.JSON["downtime_ms"], cr.JSON["duration_ms"],
		warm, wr.JSON["downtime_ms"], wr.JSON["duration_ms"], sb["proof"], sb["check_ms"], sb["entries"], ratio(warm), ratio(cold))
}

// deployBroken deploys the new release with npm, has it write data (tagged round), breaks it
// with brk and restarts it: it must stay unhealthy past the time a healthy start takes.
func (a *realApp) deployBroken(t *testing.T, svc appService, brk func(*realApp, *testing.T), round string, healthyStart time.Duration) {
	t.Helper()
	a.deploy(t, testenv.ClaudeFlowNew)
	a.notify(t, "written-by-broken-release-"+round)
	a.cf(t, "memory", "store", "broken-release-key-"+round, "kept across the rollback")
	brk(a, t)
	svc.restart(t)
	// Give it the time a healthy start takes, then it must still fail.
	time.Sleep(healthyStart + 2*time.Second)
	a.assertUnhealthy(t)
	if hc := a.run(svc.env, "health-check", "--critical-only"); hc.Code != 1 {
		t.Fatalf("health-check of the broken deploy (%s): exit %d, want 1 (a false PASS)\n%s%s", round, hc.Code, hc.Stdout, hc.Stderr)
	}
}

// timedEmergency runs `emergency --json` with a prober started just before it; the command
// returns after the health gate and the standby refresh, the prober sees the first pass.
func (a *realApp) timedEmergency(t *testing.T, svc appService, what string) (probeFigures, runResult) {
	t.Helper()
	p := a.startProber(t, 5*time.Minute)
	r := a.run(svc.env, "emergency", "--json")
	if r.Code != 0 || r.JSON["outcome"] != "ok" {
		t.Fatalf("%s: exit %d, outcome %v\nstdout:\n%s\nstderr:\n%s", what, r.Code, r.JSON["outcome"], r.Stdout, r.Stderr)
	}
	f := p.untilUp(t, what)
	var steps []string
	if list, ok := r.JSON["steps"].([]any); ok {
		for _, st := range list {
			if m, ok := st.(map[string]any); ok {
				steps = append(steps, fmt.Sprintf("%v %v ms", m["name"], m["duration_ms"]))
			}
		}
	}
	sb := standbyUse(r)
	refresh, _ := sb["refresh"].(map[string]any)
	t.Logf("%s steps: %s; standby used %v (proof %v, check %v ms, reason %v); the refresh after it: %v",
		what, strings.Join(steps, ", "), sb["used"], sb["proof"], sb["check_ms"], sb["reason"], refresh["detail"])
	// Where the time to healthy went, by the run's journal records: from the command to its
	// intent (process start, settings, lock), between the records, and from the start
	// step's end to the prober's first pass (the app's own start).
	recs, err := journal.ReadAll(filepath.Join(a.Dir, "log", "journal.jsonl"))
	if err != nil {
		t.Fatalf("read the journal: %v", err)
	}
	for _, run := range journal.Runs(recs) {
		if run.ID != fmt.Sprint(r.JSON["run_id"]) || len(run.Records) == 0 {
			continue
		}
		started := "no start step"
		for _, rec := range run.Records {
			if rec.Step == "start" && rec.Event == journal.EventStepDone {
				started = fmt.Sprintf("start step done at %d ms, first pass %d ms after it",
					rec.Time.Sub(p.t0).Milliseconds(), (f.CommandToHealthy - rec.Time.Sub(p.t0)).Milliseconds())
			}
		}
		t.Logf("%s timeline: command -> intent %d ms; %s %s", what, run.Records[0].Time.Sub(p.t0).Milliseconds(), stepSplit(run), started)
	}
	return f, r
}

// standbyUse is the emergency result's "standby" object (nil when absent).
func standbyUse(r runResult) map[string]any {
	m, _ := r.JSON["standby"].(map[string]any)
	return m
}

// assertRolledBack: emergency r drove svc's service and put the good release back, healthy,
// with what the app wrote (the good release, and the broken one in each of rounds), and kept
// the broken install as the failed dir.
func (a *realApp) assertRolledBack(t *testing.T, svc appService, r runResult, rounds ...string) {
	t.Helper()
	good, bad := testenv.ClaudeFlowGood, testenv.ClaudeFlowNew
	if svcName, _ := r.JSON["service"].(string); !strings.Contains(svcName, svc.name) {
		t.Fatalf("emergency drove %q, want the %s service", svcName, svc.name)
	}
	a.waitHealthy(t, 5*time.Second)
	if v := a.version(t); v != "v"+good {
		t.Fatalf("after the rollback the app says %s, want v%s", v, good)
	}
	// What the app wrote, good release and broken one, is all there.
	memdb := filepath.Join(a.Install, ".swarm", "memory.db")
	msgs := []string{"written-by-good-release"}
	for _, round := range rounds {
		msgs = append(msgs, "written-by-broken-release-"+round)
	}
	for _, msg := range msgs {
		if n := sqliteCount(t, memdb, "SELECT count(*) FROM memory_entries WHERE value LIKE '%"+msg+"%'"); n == "0" {
			t.Fatalf("memory.db lost the row %q", msg)
		}
	}
	store, err := os.ReadFile(filepath.Join(a.Install, "memory", "memory-store.json"))
	for _, round := range rounds {
		if err != nil || !strings.Contains(string(store), "broken-release-key-"+round) {
			t.Fatalf("memory/memory-store.json lost what the broken release stored (%s): %v\n%s", round, err, store)
		}
	}
	if got := sqliteCount(t, filepath.Join(a.Install, ".hive-mind", "hive.db"), "PRAGMA integrity_check"); got != "ok" {
		t.Fatalf("hive.db integrity_check: %s", got)
	}
	if dc := a.run(svc.env, "database", "check", "--json"); dc.Code != 0 {
		t.Fatalf("database check after the rollback: exit %d\n%s%s", dc.Code, dc.Stdout, dc.Stderr)
	}
	// The failed release is kept as it was.
	failed, _ := r.JSON["failed_dir"].(string)
	var pkg struct{ Version string }
	if b, err := os.ReadFile(filepath.Join(failed, "node_modules", "claude-flow", "package.json")); err != nil || json.Unmarshal(b, &pkg) != nil || pkg.Version != bad {
		t.Fatalf("failed dir %s: claude-flow %q (%v), want %s", failed, pkg.Version, err, bad)
	}
	if b, err := os.ReadFile(filepath.Join(failed, ".cfrollback-test-broken")); err != nil {
		t.Fatalf("failed dir is not the broken install: %v", err)
	} else {
		t.Logf("the failed dir keeps the broken install (%s)", b)
	}
	if hc := a.run(svc.env, "health-check", "--critical-only"); hc.Code != 0 {
		t.Fatalf("health-check after the rollback: exit %d\n%s%s", hc.Code, hc.Stdout, hc.Stderr)
	}
}
