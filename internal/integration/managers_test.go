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

// systemdDrillUnit is the drill app as a real systemd unit, cfr-app.service in the systemd
// sandbox: a sandbox with a good backup and a broken install, the unit (written, not started)
// running the drill app on the install at a free loopback port, and the health URL it answers.
func systemdDrillUnit(t *testing.T, description string) (*testenv.SystemdSandbox, *sandbox, string) {
	t.Helper()
	sd := testenv.Systemd(t)
	s := newSandbox(t)
	s.goodBackupBrokenInstall()
	port, err := drillapp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	unit := fmt.Sprintf(`[Unit]
Description=%s

[Service]
Type=simple
ExecStart=%s drill-app --install %s --addr 127.0.0.1:%d
Restart=no
`, description, binary(t), s.Install, port)
	if err := sd.WriteUnit("cfr-app.service", unit); err != nil {
		t.Fatal(err)
	}
	return sd, s, fmt.Sprintf("http://127.0.0.1:%d/health", port)
}

// TestEmergencySystemd: a real systemd unit runs the app; a broken deploy is
// rolled back with service.manager auto (which must find the unit).
func TestEmergencySystemd(t *testing.T) {
	sd, s, url := systemdDrillUnit(t, "cfrollback integration app")
	if out, err := sd.Exec("systemctl", "start", "cfr-app.service"); err != nil {
		t.Fatalf("start unit: %v %s", err, out)
	}
	waitHTTP(t, url, 503, 10*time.Second) // the broken deploy is up and unhealthy

	hc := s.run([]string{"CFROLLBACK_SERVICE_UNIT=cfr-app", "CFROLLBACK_HEALTH_URL=" + url}, "health-check", "--critical-only")
	if hc.Code != 1 || !strings.Contains(hc.Stdout, "HTTP 503") {
		t.Fatalf("health-check of the broken deploy: exit %d\n%s%s", hc.Code, hc.Stdout, hc.Stderr)
	}
	r := s.run([]string{"CFROLLBACK_SERVICE_MANAGER=auto", "CFROLLBACK_SERVICE_UNIT=cfr-app", "CFROLLBACK_HEALTH_URL=" + url},
		"emergency", "--json")
	s.assertRolledBack(r, url)
	if svc, _ := r.JSON["service"].(string); !strings.Contains(svc, "systemd") {
		t.Fatalf("auto picked %q, want the systemd unit", svc)
	}
	out, err := sd.Exec("systemctl", "is-active", "cfr-app.service")
	if err != nil || strings.TrimSpace(string(out)) != "active" {
		t.Fatalf("unit after rollback: %s %v", out, err)
	}
	hc = s.run([]string{"CFROLLBACK_SERVICE_UNIT=cfr-app", "CFROLLBACK_HEALTH_URL=" + url}, "health-check", "--critical-only", "--json")
	if hc.Code != 0 || hc.JSON["healthy"] != true {
		t.Fatalf("health-check after rollback: exit %d %s %s", hc.Code, hc.Stdout, hc.Stderr)
	}
}

// TestEmergencyPM2: a real pm2 daemon (own PM2_HOME) runs the app.
func TestEmergencyPM2(t *testing.T) {
	pm2 := testenv.PM2(t)
	home := testenv.PM2Home(t, pm2)
	s := newSandbox(t)
	s.goodBackupBrokenInstall()
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
	waitHTTP(t, url, 503, 15*time.Second)

	env := []string{"CFROLLBACK_SERVICE_MANAGER=pm2", "CFROLLBACK_SERVICE_PM2_NAME=cfr-app", "CFROLLBACK_SERVICE_PM2_HOME=" + home,
		"CFROLLBACK_SERVICE_PM2_BIN=" + pm2, "CFROLLBACK_HEALTH_URL=" + url, "PATH=" + filepath.Dir(pm2) + ":" + os.Getenv("PATH")}
	dry := s.run(env, "emergency", "--dry-run", "--json")
	if dry.Code != 0 || dry.JSON["outcome"] != "planned" {
		t.Fatalf("dry run: exit %d\n%s\n%s", dry.Code, dry.Stdout, dry.Stderr)
	}
	waitHTTP(t, url, 503, time.Second) // the dry run left the service alone
	r := s.run(env, "emergency", "--json")
	s.assertRolledBack(r, url)
	if svc, _ := r.JSON["service"].(string); !strings.Contains(svc, "pm2") {
		t.Fatalf("service %q, want the pm2 app", svc)
	}
}
