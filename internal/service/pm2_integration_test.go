package service

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// These tests drive a real pm2 (the one scripts/setup-deps.sh installs) with a throwaway
// PM2_HOME per test; testenv.PM2Home kills that daemon afterwards. ~/.pm2 is never touched.

// pm2Run runs the pm2 CLI directly, as an operator would have registered the app.
func pm2Run(t *testing.T, pm2, home string, args ...string) {
	t.Helper()
	cmd := exec.Command(pm2, args...)
	cmd.Env = append(os.Environ(), "PM2_HOME="+home)
	cmd.Dir = home
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pm2 %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// pm2App registers and starts `sleep 3600` as app name in a fresh PM2_HOME.
func pm2App(t *testing.T, name string) (pm2, home string) {
	t.Helper()
	pm2 = testenv.PM2(t)
	home = testenv.PM2Home(t, pm2)
	pm2Run(t, pm2, home, "start", "/bin/sleep", "--name", name, "--interpreter", "none", "--", "3600")
	return pm2, home
}

func pm2ManagerFor(t *testing.T, pm2, home, name string) Manager {
	t.Helper()
	m, err := New(context.Background(), Config{Manager: KindPM2, PM2Name: name, PM2Home: home, PM2Bin: pm2,
		StopTimeout: 20 * time.Second, StartTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPM2IntegrationStopStart(t *testing.T) {
	pm2, home := pm2App(t, "cfr-test")
	m := pm2ManagerFor(t, pm2, home, "cfr-test")
	ctx := context.Background()

	st := mustStatus(t, m)
	if !st.Exists || !st.Active || st.State != "online" || st.MainPID <= 0 || st.Name != "cfr-test" {
		t.Fatalf("registered app: %+v", st)
	}
	oldPID := st.MainPID
	if _, err := timed(t, "Stop", func() error { return m.Stop(ctx) }); err != nil {
		t.Fatal(err)
	}
	if st := mustStatus(t, m); st.Active || st.State != "stopped" || st.MainPID != 0 {
		t.Fatalf("after Stop: %+v", st)
	}
	if alive(oldPID) {
		t.Errorf("the app's process %d survived Stop", oldPID)
	}
	if err := m.Stop(ctx); err != nil { // already stopped
		t.Fatal(err)
	}
	if _, err := timed(t, "Start", func() error { return m.Start(ctx) }); err != nil {
		t.Fatal(err)
	}
	st = mustStatus(t, m)
	if !st.Active || st.State != "online" || st.MainPID <= 0 || st.MainPID == oldPID {
		t.Fatalf("after Start: %+v (old pid %d)", st, oldPID)
	}
	if !alive(st.MainPID) {
		t.Errorf("pm2 reports pid %d online but it does not exist", st.MainPID)
	}
	if err := m.Start(ctx); err != nil { // already online: must not restart it
		t.Fatal(err)
	}
	if again := mustStatus(t, m); again.MainPID != st.MainPID || again.Restarts != st.Restarts {
		t.Errorf("second Start restarted the app: %+v -> %+v", st, again)
	}
}

func TestPM2IntegrationStartFailures(t *testing.T) {
	pm2 := testenv.PM2(t)
	home := testenv.PM2Home(t, pm2)
	// Registered, then stopped: Start must report what pm2 reports once it runs them.
	pm2Run(t, pm2, home, "start", "/bin/false", "--name", "cfr-crash", "--interpreter", "none", "--max-restarts", "2")
	pm2Run(t, pm2, home, "start", "/bin/false", "--name", "cfr-once", "--interpreter", "none", "--no-autorestart")
	pm2Run(t, pm2, home, "stop", "cfr-crash", "cfr-once")

	for name, want := range map[string]string{
		"cfr-crash": "start pm2 app cfr-crash: app is errored after 'pm2 start'",
		"cfr-once":  "start pm2 app cfr-once: app is stopped after 'pm2 start'",
	} {
		t.Run(name, func(t *testing.T) {
			err := pm2ManagerFor(t, pm2, home, name).Start(context.Background())
			if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "pm2 logs "+name) {
				t.Errorf("Start = %v\nwant %s...", err, want)
			}
		})
	}
}

func TestPM2IntegrationMissingApp(t *testing.T) {
	pm2, home := pm2App(t, "cfr-test")
	m := pm2ManagerFor(t, pm2, home, "cfr-absent")
	if st := mustStatus(t, m); st.Exists {
		t.Errorf("Status = %+v", st)
	}
	for name, op := range map[string]func(context.Context) error{"stop": m.Stop, "start": m.Start} {
		if err := op(context.Background()); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "not in 'pm2 jlist'") {
			t.Errorf("%s = %v, want ErrNotFound", name, err)
		}
	}
}

// Asking about an app when no pm2 daemon runs must not spawn one.
func TestPM2IntegrationNoDaemon(t *testing.T) {
	pm2 := testenv.PM2(t)
	home := testenv.PM2Home(t, pm2)
	m := pm2ManagerFor(t, pm2, home, "cfr-test")
	if st := mustStatus(t, m); st.Exists {
		t.Errorf("Status = %+v", st)
	}
	if err := m.Stop(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stop = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(home, "pm2.pid")); err == nil {
		t.Errorf("a pm2 daemon was spawned in %s", home)
	}
}

// auto picks pm2 when systemd (a real one, in a sandbox) has no such unit.
func TestPM2IntegrationAuto(t *testing.T) {
	testenv.Systemd(t)
	pm2, home := pm2App(t, "cfr-test")
	m, err := New(context.Background(), Config{Unit: "cfr-test", PM2Name: "cfr-test", PM2Home: home, PM2Bin: pm2})
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind() != KindPM2 || m.Name() != "pm2 app cfr-test" {
		t.Fatalf("auto picked %s", m.Name())
	}
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	_, err = New(context.Background(), Config{Unit: "cfr-test", PM2Name: "cfr-absent", PM2Home: home, PM2Bin: pm2})
	want := "service not found: looked for systemd unit cfr-test.service (systemd has no such unit) and pm2 app cfr-absent (not in 'pm2 jlist')"
	if !errors.Is(err, ErrNotFound) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("New = %v\nwant %s...", err, want)
	}
}
