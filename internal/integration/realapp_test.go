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
// profile puts the good release back, healthy, with that data.
func realEmergency(t *testing.T, a *realApp, svc appService, brk func(*realApp, *testing.T)) {
	good, bad := testenv.ClaudeFlowGood, testenv.ClaudeFlowNew
	a.waitHealthy(t, 90*time.Second)
	if hc := a.run(svc.env, "health-check", "--critical-only"); hc.Code != 0 {
		t.Fatalf("health-check of the healthy real app: exit %d (a false FAIL)\n%s%s", hc.Code, hc.Stdout, hc.Stderr)
	}
	// The floor: a plain restart of the same app, from the command to healthy.
	start := time.Now()
	svc.restart(t)
	a.waitHealthy(t, 90*time.Second)
	restartToHealthy := time.Since(start)

	a.notify(t, "written-by-good-release")
	bk := a.run(svc.env, "backup", "create", "--label", "before "+bad, "--json")
	if bk.Code != 0 || bk.JSON["app_version"] != good {
		t.Fatalf("backup create: exit %d, app_version %v (want %s)\n%s%s", bk.Code, bk.JSON["app_version"], good, bk.Stdout, bk.Stderr)
	}

	a.deploy(t, bad)
	a.notify(t, "written-by-broken-release")
	a.cf(t, "memory", "store", "broken-release-key", "kept across the rollback")
	brk(a, t)
	svc.restart(t)
	// Give it the time a healthy start takes, then it must still fail.
	time.Sleep(restartToHealthy + 2*time.Second)
	a.assertUnhealthy(t)
	hc := a.run(svc.env, "health-check", "--critical-only")
	if hc.Code != 1 {
		t.Fatalf("health-check of the broken deploy: exit %d, want 1 (a false PASS)\n%s%s", hc.Code, hc.Stdout, hc.Stderr)
	}

	start = time.Now()
	r := a.run(svc.env, "emergency", "--json")
	commandToHealthy := time.Since(start)
	if r.Code != 0 || r.JSON["outcome"] != "ok" {
		t.Fatalf("emergency: exit %d, outcome %v\nstdout:\n%s\nstderr:\n%s", r.Code, r.JSON["outcome"], r.Stdout, r.Stderr)
	}
	if svcName, _ := r.JSON["service"].(string); !strings.Contains(svcName, svc.name) {
		t.Fatalf("emergency drove %q, want the %s service", svcName, svc.name)
	}
	a.waitHealthy(t, 5*time.Second)
	if v := a.version(t); v != "v"+good {
		t.Fatalf("after the rollback the app says %s, want v%s", v, good)
	}
	// What the app wrote, good release and broken one, is all there.
	memdb := filepath.Join(a.Install, ".swarm", "memory.db")
	for _, msg := range []string{"written-by-good-release", "written-by-broken-release"} {
		if n := sqliteCount(t, memdb, "SELECT count(*) FROM memory_entries WHERE value LIKE '%"+msg+"%'"); n == "0" {
			t.Fatalf("memory.db lost the row %q", msg)
		}
	}
	if b, err := os.ReadFile(filepath.Join(a.Install, "memory", "memory-store.json")); err != nil || !strings.Contains(string(b), "broken-release-key") {
		t.Fatalf("memory/memory-store.json lost what the broken release stored: %v\n%s", err, b)
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
	var steps []string
	if list, ok := r.JSON["steps"].([]any); ok {
		for _, st := range list {
			if m, ok := st.(map[string]any); ok {
				steps = append(steps, fmt.Sprintf("%v %v ms", m["name"], m["duration_ms"]))
			}
		}
	}
	t.Logf("emergency steps: %s", strings.Join(steps, ", "))
	downtime, _ := r.JSON["downtime_ms"].(float64)
	t.Logf("FIGURES real claude-flow under %s: plain restart -> healthy %d ms; emergency downtime_ms %.0f, command -> healthy %d ms",
		svc.name, restartToHealthy.Milliseconds(), downtime, commandToHealthy.Milliseconds())
}
