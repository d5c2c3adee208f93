package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// deployScript is a deploy script as a person would write one: it lays out VERSION with the
// health the drill app will have ($2: yes or no), restarts the pm2 app and exits $3.
const deployScript = `#!/bin/sh
set -e
printf '%s\n' "$1" > "$CFROLLBACK_INSTALL_DIR/app/VERSION"
printf '%s\n' "$2" > "$CFROLLBACK_INSTALL_DIR/app/healthy"
echo "deploying $1"
PM2_HOME="$CFROLLBACK_SERVICE_PM2_HOME" "$CFROLLBACK_SERVICE_PM2_BIN" restart cfr-app >/dev/null
exit "${3:-0}"
`

// TestDeployPM2: cfrollback deploy drives a real pm2 app (the drill app) through a deploy
// script. A healthy deploy stays; one that fails its health gate and one whose script exits
// non-zero are rolled back by deploy itself to the backup it made just before, with exit 20
// and the evidence printed and in history.
func TestDeployPM2(t *testing.T) {
	pm2 := testenv.PM2(t)
	home := testenv.PM2Home(t, pm2)
	s := newSandbox(t)
	if err := drillapp.WriteInstall(s.Install, "1.0.0", true); err != nil {
		t.Fatal(err)
	}
	port, err := drillapp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	start := exec.Command(pm2, "start", binary(t), "--name", "cfr-app", "--interpreter", "none", "--no-autorestart",
		"--", "drill-app", "--install", s.Install, "--addr", fmt.Sprintf("127.0.0.1:%d", port))
	start.Env = append(os.Environ(), "PM2_HOME="+home)
	start.Dir = s.Dir
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("pm2 start: %v\n%s", err, out)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	waitHTTP(t, url, 200, 15*time.Second)
	script := filepath.Join(s.Dir, "deploy.sh")
	if err := os.WriteFile(script, []byte(deployScript), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"CFROLLBACK_SERVICE_MANAGER=pm2", "CFROLLBACK_SERVICE_PM2_NAME=cfr-app", "CFROLLBACK_SERVICE_PM2_HOME=" + home,
		"CFROLLBACK_SERVICE_PM2_BIN=" + pm2, "CFROLLBACK_HEALTH_URL=" + url, "PATH=" + filepath.Dir(pm2) + ":" + os.Getenv("PATH"),
		"CFROLLBACK_DEPLOY_GATE_TIMEOUT=20s", "CFROLLBACK_DEPLOY_WATCH=3s", "CFROLLBACK_DEPLOY_WATCH_INTERVAL=200ms",
		"CFROLLBACK_DEPLOY_MIN_SAMPLES=5"}
	deploy := func(args ...string) (runResult, time.Duration) {
		t0 := time.Now()
		r := s.run(env, append([]string{"deploy", "--json", "--", script}, args...)...)
		return r, time.Since(t0)
	}

	// A healthy deploy stays: v2 runs, the backup made first holds v1.
	ok, took := deploy("2.0.0", "yes")
	if ok.Code != 0 || ok.JSON["outcome"] != "ok" {
		t.Fatalf("healthy deploy: exit %d\nstdout:\n%s\nstderr:\n%s", ok.Code, ok.Stdout, ok.Stderr)
	}
	if !strings.Contains(ok.Stderr, "deploying 2.0.0") {
		t.Errorf("the script's output was not passed through (stderr under --json):\n%s", ok.Stderr)
	}
	if body := waitHTTP(t, url, 200, 5*time.Second); !strings.Contains(body, `"version":"2.0.0"`) {
		t.Fatalf("after the healthy deploy: %s", body)
	}
	// The watch ran its whole window (a sample under pm2 takes a second or two on a busy machine).
	w, _ := ok.JSON["watch"].(map[string]any)
	if n, _ := w["samples"].(float64); n < 2 || w["duration_ms"].(float64) < 3000 {
		t.Errorf("the watch took %v samples over %v ms, want 2 or more over its 3s: %v", w["samples"], w["duration_ms"], w)
	}
	t.Logf("FIGURES healthy deploy (gate + 3s watch) under pm2: %d ms", took.Milliseconds())

	// The new version answers 503: the gate fails and deploy rolls back to v2 by itself.
	bad, took := deploy("3.0.0", "no")
	if bad.Code != 20 || bad.JSON["outcome"] != "rolled_back" || bad.JSON["failed_step"] != "gate" {
		t.Fatalf("deploy failing its gate: exit %d, want 20\nstdout:\n%s\nstderr:\n%s", bad.Code, bad.Stdout, bad.Stderr)
	}
	if !strings.Contains(bad.Stdout, "HTTP 503") {
		t.Errorf("no probe evidence in the result:\n%s", bad.Stdout)
	}
	if body := waitHTTP(t, url, 200, 5*time.Second); !strings.Contains(body, `"version":"2.0.0"`) {
		t.Fatalf("after the rollback: %s", body)
	}
	rb, _ := bad.JSON["rollback"].(map[string]any)
	failed, _ := rb["failed_dir"].(string)
	if got := readFile(t, filepath.Join(failed, drillapp.VersionFile)); got != "3.0.0" || rb["outcome"] != "ok" {
		t.Fatalf("rollback %v: failed dir holds %q", rb["outcome"], got)
	}
	t.Logf("FIGURES deploy failing its gate (20s) and rolled back under pm2: %d ms, rollback downtime %v ms", took.Milliseconds(), rb["downtime_ms"])

	// The script fails after it changed the install: rolled back although v4 would be healthy.
	fails, _ := deploy("4.0.0", "yes", "3")
	if fails.Code != 20 || fails.JSON["failed_step"] != "deploy" || fails.JSON["command_exit_code"] != float64(3) {
		t.Fatalf("deploy whose script exits 3: exit %d\nstdout:\n%s\nstderr:\n%s", fails.Code, fails.Stdout, fails.Stderr)
	}
	if body := waitHTTP(t, url, 200, 5*time.Second); !strings.Contains(body, `"version":"2.0.0"`) {
		t.Fatalf("after the rollback of the failed script: %s", body)
	}

	// The evidence is in history, and the journal is intact.
	h := s.run(nil, "history", "--json")
	for _, want := range []string{`"command": "deploy"`, `"outcome": "rolled_back"`, "HTTP 503", "exited 3", `"command": "emergency"`} {
		if !strings.Contains(h.Stdout, want) {
			t.Errorf("history lacks %s:\n%s", want, h.Stdout)
		}
	}
	if v := s.run(nil, "journal", "verify"); v.Code != 0 {
		t.Fatalf("journal verify: %s %s", v.Stdout, v.Stderr)
	}
}
