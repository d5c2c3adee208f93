package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// realDeployScript is a release of the host install: it writes RELEASE ($1) into the install,
// with "break" as $2 it also loses the web server's express, as a deploy that lost a
// dependency (the app stays online for pm2, only the health URL tells), and restarts the pm2
// app.
const realDeployScript = `#!/bin/sh
set -e
printf '%s\n' "$1" > "$CFROLLBACK_INSTALL_DIR/RELEASE"
if [ "$2" = break ]; then rm -rf "$CFROLLBACK_INSTALL_DIR/node_modules/express"; fi
PM2_HOME="$CFROLLBACK_SERVICE_PM2_HOME" pm2 restart claude-flow-assistant >/dev/null
echo "deployed release $1 $2"
`

// TestRealClaudeFlowDeployPM2: the real claude-flow under real pm2, deployed by cfrollback
// deploy with a script that restarts it. A release that comes back healthy stays; the next
// one, which loses express, fails the gate on /api/health and is rolled back by deploy to
// the backup it made just before (the first release, healthy again, express back).
func TestRealClaudeFlowDeployPM2(t *testing.T) {
	a := newRealApp(t, testenv.ClaudeFlowNew)
	svc := pm2Service(t, a)
	a.waitHealthy(t, 90*time.Second)
	script := filepath.Join(a.Dir, "deploy.sh")
	if err := os.WriteFile(script, []byte(realDeployScript), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(svc.env, "HOME="+a.Home,
		"CFROLLBACK_DEPLOY_GATE_TIMEOUT=60s", "CFROLLBACK_DEPLOY_WATCH=5s", "CFROLLBACK_DEPLOY_WATCH_INTERVAL=500ms")
	release := filepath.Join(a.Install, "RELEASE")

	t0 := time.Now()
	ok := a.run(env, "deploy", "--json", "--", script, "r1")
	if ok.Code != 0 || ok.JSON["outcome"] != "ok" {
		t.Fatalf("deploy of r1: exit %d\nstdout:\n%s\nstderr:\n%s", ok.Code, ok.Stdout, ok.Stderr)
	}
	t.Logf("FIGURES real claude-flow, cfrollback deploy of a release (backup, restart, gate, 5s watch): %d ms", time.Since(t0).Milliseconds())
	a.waitHealthy(t, 10*time.Second)
	if got := readFile(t, release); got != "r1" {
		t.Fatalf("after the deploy RELEASE is %q, want r1", got)
	}

	t0 = time.Now()
	bad := a.run(env, "deploy", "--json", "--", script, "r2", "break")
	if bad.Code != 20 || bad.JSON["outcome"] != "rolled_back" || bad.JSON["failed_step"] != "gate" {
		t.Fatalf("deploy losing express: exit %d, want 20\nstdout:\n%s\nstderr:\n%s", bad.Code, bad.Stdout, bad.Stderr)
	}
	rb, _ := bad.JSON["rollback"].(map[string]any)
	t.Logf("FIGURES the broken release, its failed gate and the rollback: %d ms (rollback downtime %v ms)", time.Since(t0).Milliseconds(), rb["downtime_ms"])
	a.waitHealthy(t, 10*time.Second)
	if got := readFile(t, release); got != "r1" {
		t.Fatalf("after the rollback RELEASE is %q, want r1", got)
	}
	if _, err := os.Stat(filepath.Join(a.Install, "node_modules", "express")); err != nil {
		t.Fatalf("the rollback did not bring express back: %v", err)
	}
	if h := a.run(nil, "history", "--json"); !strings.Contains(h.Stdout, `"outcome": "rolled_back"`) || !strings.Contains(h.Stdout, a.URL) {
		t.Errorf("history lacks the rolled back deploy and its evidence:\n%s", h.Stdout)
	}
}
