package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// realDeployScript upgrades the host install with npm (from the cache setup-deps filled) and
// restarts the pm2 app; with "break" as $2 it then loses the web server's express, as a
// deploy that lost a dependency: the app stays online for pm2, only the health URL tells.
const realDeployScript = `#!/bin/sh
set -e
npm install --prefix "$CFROLLBACK_INSTALL_DIR" --prefer-offline --save-exact --no-audit --no-fund --loglevel=error "claude-flow@$1"
if [ "$2" = break ]; then rm -rf "$CFROLLBACK_INSTALL_DIR/node_modules/express"; fi
PM2_HOME="$CFROLLBACK_SERVICE_PM2_HOME" pm2 restart claude-flow-assistant >/dev/null
echo "deployed claude-flow $1 $2"
`

// TestRealClaudeFlowDeployPM2: the real claude-flow under real pm2, deployed with npm by
// cfrollback deploy. The upgrade to the new release stays (the new version answers); the same
// deploy losing a module fails the gate and is rolled back by deploy to the backup it made
// just before it (the new release, healthy again).
func TestRealClaudeFlowDeployPM2(t *testing.T) {
	good, next := testenv.ClaudeFlowGood, testenv.ClaudeFlowNew
	a := newRealApp(t, good)
	testenv.ClaudeFlow(t, next) // its packages are in npm's cache
	svc := pm2Service(t, a)
	a.waitHealthy(t, 90*time.Second)
	script := filepath.Join(a.Dir, "deploy.sh")
	if err := os.WriteFile(script, []byte(realDeployScript), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(svc.env, "HOME="+a.Home, "npm_config_cache="+npmCache(),
		"CFROLLBACK_DEPLOY_GATE_TIMEOUT=60s", "CFROLLBACK_DEPLOY_WATCH=5s", "CFROLLBACK_DEPLOY_WATCH_INTERVAL=500ms")

	t0 := time.Now()
	ok := a.run(env, "deploy", "--json", "--", script, next)
	if ok.Code != 0 || ok.JSON["outcome"] != "ok" {
		t.Fatalf("deploy of %s: exit %d\nstdout:\n%s\nstderr:\n%s", next, ok.Code, ok.Stdout, ok.Stderr)
	}
	t.Logf("FIGURES real claude-flow %s -> %s with cfrollback deploy (backup, npm, gate, 5s watch): %d ms", good, next, time.Since(t0).Milliseconds())
	a.waitHealthy(t, 10*time.Second)
	if v := a.version(t); v != "v"+next {
		t.Fatalf("after the deploy the app says %s, want v%s", v, next)
	}

	t0 = time.Now()
	bad := a.run(env, "deploy", "--json", "--", script, next, "break")
	if bad.Code != 20 || bad.JSON["outcome"] != "rolled_back" || bad.JSON["failed_step"] != "gate" {
		t.Fatalf("deploy losing express: exit %d, want 20\nstdout:\n%s\nstderr:\n%s", bad.Code, bad.Stdout, bad.Stderr)
	}
	t.Logf("FIGURES the broken deploy, its 60s gate and the rollback: %d ms", time.Since(t0).Milliseconds())
	a.waitHealthy(t, 10*time.Second)
	if v := a.version(t); v != "v"+next {
		t.Fatalf("after the rollback the app says %s, want v%s", v, next)
	}
	if _, err := os.Stat(filepath.Join(a.Install, "node_modules", "express")); err != nil {
		t.Fatalf("the rollback did not bring express back: %v", err)
	}
	if h := a.run(nil, "history", "--json"); !strings.Contains(h.Stdout, `"outcome": "rolled_back"`) || !strings.Contains(h.Stdout, a.URL) {
		t.Errorf("history lacks the rolled back deploy and its evidence:\n%s", h.Stdout)
	}
}
