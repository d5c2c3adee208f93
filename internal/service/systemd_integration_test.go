package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// These tests drive a real systemd: testenv.Systemd boots one per test in its own namespaces
// and points DBUS_SYSTEM_BUS_ADDRESS at it. They need root; they skip without it and fail
// with CI=true.

func sandboxUnit(t *testing.T, sb *testenv.SystemdSandbox, name, service string) {
	t.Helper()
	if err := sb.WriteUnit(name, "[Unit]\nDescription=cfrollback test unit\n\n[Service]\n"+service); err != nil {
		t.Fatal(err)
	}
}

func systemdManagerFor(t *testing.T, unit string, stopTimeout time.Duration) Manager {
	t.Helper()
	m, err := New(context.Background(), Config{Manager: KindSystemd, Unit: unit, StopTimeout: stopTimeout, StartTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustStatus(t *testing.T, m Manager) Status {
	t.Helper()
	st, err := m.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// timed runs op and logs how long it took.
func timed(t *testing.T, what string, op func() error) (time.Duration, error) {
	t.Helper()
	begin := time.Now()
	err := op()
	took := time.Since(begin)
	t.Logf("%s took %s", what, took.Round(time.Millisecond))
	return took, err
}

func TestSystemdIntegrationStartStop(t *testing.T) {
	sb := testenv.Systemd(t)
	sandboxUnit(t, sb, "cfr-test.service", "Type=simple\nExecStart=/bin/sleep 3600\n")
	m := systemdManagerFor(t, "cfr-test", 20*time.Second)
	ctx := context.Background()

	if st := mustStatus(t, m); !st.Exists || st.Active || st.State != "inactive" || st.MainPID != 0 {
		t.Fatalf("before Start: %+v", st)
	}
	if _, err := timed(t, "Start", func() error { return m.Start(ctx) }); err != nil {
		t.Fatal(err)
	}
	st := mustStatus(t, m)
	if !st.Active || st.State != "active" || st.SubState != "running" || st.MainPID <= 0 || st.Name != "cfr-test.service" {
		t.Fatalf("after Start: %+v", st)
	}
	if err := m.Start(ctx); err != nil { // already running: a no-op job
		t.Fatal(err)
	}
	if pid := mustStatus(t, m).MainPID; pid != st.MainPID {
		t.Errorf("second Start changed MainPID %d -> %d", st.MainPID, pid)
	}
	if _, err := timed(t, "Stop", func() error { return m.Stop(ctx) }); err != nil {
		t.Fatal(err)
	}
	if st := mustStatus(t, m); st.Active || st.State != "inactive" || st.MainPID != 0 {
		t.Fatalf("after Stop: %+v", st)
	}
	if err := m.Stop(ctx); err != nil { // already down
		t.Fatal(err)
	}
}

// Start promises only that systemd reports the unit started: for Type=exec that is once the
// binary was executed, for Type=oneshot once it finished. A binary that cannot run, or a
// oneshot that fails, is a Start error; a daemon that dies later is a health problem, not a
// Start error.
func TestSystemdIntegrationStartFailures(t *testing.T) {
	sb := testenv.Systemd(t)
	sandboxUnit(t, sb, "cfr-noexec.service", "Type=exec\nExecStart=/nonexistent/cfr-app\n")
	sandboxUnit(t, sb, "cfr-oneshot.service", "Type=oneshot\nExecStart=/bin/false\n")
	sandboxUnit(t, sb, "cfr-dies.service", "Type=exec\nExecStart=/bin/sh -c 'sleep 1; exit 3'\n")

	for unit, want := range map[string]string{
		"cfr-noexec":  "start cfr-noexec.service: job failed; unit is failed/failed (result exit-code)",
		"cfr-oneshot": "start cfr-oneshot.service: job failed; unit is failed/failed (result exit-code)",
	} {
		t.Run(unit, func(t *testing.T) {
			err := systemdManagerFor(t, unit, 0).Start(context.Background())
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Start = %v\nwant %s...", err, want)
			}
		})
	}
	t.Run("cfr-dies", func(t *testing.T) {
		m := systemdManagerFor(t, "cfr-dies", 0)
		if err := m.Start(context.Background()); err != nil {
			t.Fatalf("Start = %v; the binary ran, so the start job succeeded", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for st := mustStatus(t, m); st.State != "failed"; st = mustStatus(t, m) {
			if time.Now().After(deadline) {
				t.Fatalf("unit never failed: %+v", st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func TestSystemdIntegrationStopIgnoresSIGTERM(t *testing.T) {
	sb := testenv.Systemd(t)
	ready := filepath.Join(t.TempDir(), "trap-set")
	sandboxUnit(t, sb, "cfr-stubborn.service", fmt.Sprintf(
		"ExecStart=/bin/sh -c 'trap \"\" TERM; touch %s; while :; do sleep 1; done'\nTimeoutStopSec=2\n", ready))
	ctx := context.Background()
	// startIgnoringTERM starts the unit and waits until its shell ignores SIGTERM: Type=simple
	// counts as started before the trap is set.
	startIgnoringTERM := func(t *testing.T, m Manager) {
		t.Helper()
		_ = os.Remove(ready)
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, err := os.Stat(ready); err != nil; _, err = os.Stat(ready) {
			if time.Now().After(deadline) {
				t.Fatalf("the unit never set its trap: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	t.Run("stop timeout shorter than TimeoutStopSec", func(t *testing.T) {
		m := systemdManagerFor(t, "cfr-stubborn", 500*time.Millisecond)
		startIgnoringTERM(t, m)
		took, err := timed(t, "Stop with 0.5 s timeout", func() error { return m.Stop(ctx) })
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still stopping after") {
			t.Errorf("Stop = %v, want a deadline error", err)
		}
		if took > 2*time.Second {
			t.Errorf("Stop overran its timeout: %s", took)
		}
	})
	t.Run("systemd escalates to SIGKILL", func(t *testing.T) {
		m := systemdManagerFor(t, "cfr-stubborn", 15*time.Second)
		startIgnoringTERM(t, m) // waits for the stop left running by the subtest above
		took, err := timed(t, "Stop of a unit ignoring SIGTERM", func() error { return m.Stop(ctx) })
		if err != nil {
			t.Fatal(err)
		}
		if took < 1500*time.Millisecond || took > 10*time.Second {
			t.Errorf("Stop took %s; expected about TimeoutStopSec=2s", took)
		}
		if st := mustStatus(t, m); st.Active || st.MainPID != 0 || (st.State != "failed" && st.State != "inactive") {
			t.Errorf("after Stop: %+v", st)
		}
	})
}

func TestSystemdIntegrationRestartsAndStartLimit(t *testing.T) {
	sb := testenv.Systemd(t)
	flag := filepath.Join(t.TempDir(), "healthy")
	// Crash until the flag file exists; systemd restarts each a few times, then gives up.
	for _, unit := range []string{"cfr-crashy.service", "cfr-crashy-plain.service"} {
		sandboxUnit(t, sb, unit, fmt.Sprintf("Restart=always\nRestartSec=100ms\n"+
			"ExecStart=/bin/sh -c 'test -f %s || exit 1; exec sleep 3600'\n"+
			"[Unit]\nStartLimitIntervalSec=60\nStartLimitBurst=3\n", flag))
	}
	m := systemdManagerFor(t, "cfr-crashy", 0)
	ctx := context.Background()

	if err := m.Start(ctx); err != nil {
		t.Logf("Start while broken: %v", err) // it may or may not see the first crash
	}
	if _, err := sb.Exec("systemctl", "start", "cfr-crashy-plain.service"); err != nil {
		t.Logf("systemctl start while broken: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	st := mustStatus(t, m)
	for ; st.State != "failed"; st = mustStatus(t, m) {
		if time.Now().After(deadline) {
			t.Fatalf("unit never gave up restarting: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.Restarts < 2 {
		t.Errorf("Restarts = %d after a crash loop, want >= 2 (systemd NRestarts)", st.Restarts)
	}

	// The fix is in place. Start must get past the failed state the crash loop left behind;
	// a plain 'systemctl start' of the twin unit shows what that takes.
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := sb.Exec("systemctl", "start", "cfr-crashy-plain.service")
	t.Logf("plain 'systemctl start' after the crash loop: %v", err)
	out, _ := sb.Exec("systemctl", "show", "-p", "ActiveState,Result,NRestarts", "cfr-crashy-plain.service")
	t.Logf("%s", out)
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Start after the crash loop: %v", err)
	}
	if st := mustStatus(t, m); !st.Active || st.MainPID <= 0 {
		t.Errorf("after Start: %+v", st)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSystemdIntegrationStopDuringAutoRestart(t *testing.T) {
	sb := testenv.Systemd(t)
	sandboxUnit(t, sb, "cfr-loop.service", "Restart=always\nRestartSec=200ms\nExecStart=/bin/sh -c 'sleep 0.2; exit 1'\n"+
		"[Unit]\nStartLimitIntervalSec=0\n")
	m := systemdManagerFor(t, "cfr-loop", 0)
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st := mustStatus(t, m); st.Restarts < 2; st = mustStatus(t, m) {
		if time.Now().After(deadline) {
			t.Fatalf("NRestarts never reached 2: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // longer than RestartSec: a pending restart would show now
	if st := mustStatus(t, m); st.Active || st.MainPID != 0 || st.State == "activating" {
		t.Errorf("after Stop: %+v", st)
	}
}

func TestSystemdIntegrationMissingUnit(t *testing.T) {
	testenv.Systemd(t)
	m := systemdManagerFor(t, "cfr-absent", 0)
	if st := mustStatus(t, m); st.Exists {
		t.Errorf("Status = %+v", st)
	}
	for name, op := range map[string]func(context.Context) error{"stop": m.Stop, "start": m.Start} {
		if err := op(context.Background()); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s = %v, want ErrNotFound", name, err)
		}
	}
}

func TestSystemdIntegrationAuto(t *testing.T) {
	sb := testenv.Systemd(t)
	sandboxUnit(t, sb, "cfr-test.service", "ExecStart=/bin/sleep 3600\n")
	noPM2 := t.TempDir() // a PM2_HOME with no daemon: pm2 is never run

	m, err := New(context.Background(), Config{Unit: "cfr-test", PM2Home: noPM2})
	if err != nil || m.Kind() != KindSystemd || m.Name() != "systemd unit cfr-test.service" {
		t.Fatalf("New(auto) = %v, %v; want the systemd unit", m, err)
	}
	_, err = New(context.Background(), Config{Unit: "cfr-absent", PM2Name: "cfr-absent", PM2Home: noPM2})
	if !errors.Is(err, ErrNotFound) ||
		!strings.Contains(err.Error(), "systemd unit cfr-absent.service (systemd has no such unit) and pm2 app cfr-absent (no pm2 daemon") {
		t.Errorf("New(auto) without unit or app = %v", err)
	}
}

// The systemctl fallback against the real systemd: the bus "cannot be reached", and systemctl
// runs inside the sandbox.
func TestSystemdIntegrationSystemctlFallback(t *testing.T) {
	sb := testenv.Systemd(t)
	sandboxUnit(t, sb, "cfr-test.service", "ExecStart=/bin/sleep 3600\n")
	script := filepath.Join(testenv.RepoRoot(t), "scripts", "systemd-sandbox")
	inSandbox := &fakeRunner{fn: func(name string, args []string) ([]byte, error) {
		return (&execRunner{}).Run(context.Background(), nil, "sh", append([]string{script, "exec", sb.StateDir, name}, args...)...)
	}}
	m := newSystemd(Config{Unit: "cfr-test"}.withDefaults(), deps{run: inSandbox,
		dial: func(context.Context) (systemdConn, error) { return nil, errors.New("bus down for this test") }})
	ctx := context.Background()

	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st := mustStatus(t, m); !st.Active || st.MainPID <= 0 {
		t.Fatalf("after Start: %+v", st)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := mustStatus(t, m); st.Active || st.MainPID != 0 || st.State != "inactive" {
		t.Fatalf("after Stop: %+v", st)
	}
	m.unit = "cfr-absent.service"
	if err := m.Start(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("Start of a missing unit = %v", err)
	}
	for _, call := range inSandbox.called() {
		if !strings.HasPrefix(call, "systemctl ") {
			t.Errorf("ran %q", call)
		}
	}
}

// A Bus (guard's one connection) survives dbus-daemon being restarted and systemd being
// re-executed: the calls after each reconnect transparently, and Stop/Start still work.
func TestSystemdIntegrationBusReconnects(t *testing.T) {
	sb := testenv.Systemd(t)
	sandboxUnit(t, sb, "cfr-test.service", "ExecStart=/bin/sleep 3600\n")
	bus := OpenBus()
	defer bus.Close()
	m, err := New(context.Background(), Config{Manager: KindSystemd, Unit: "cfr-test", Bus: bus, StartTimeout: 20 * time.Second, StopTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	first := mustStatus(t, m)
	conn := bus.conn
	if !first.Active || conn == nil {
		t.Fatalf("after Start: %+v (connection %v)", first, conn)
	}
	for _, disrupt := range [][]string{{"systemctl", "restart", "dbus.service"}, {"systemctl", "daemon-reexec"}} {
		if out, err := sb.Exec(disrupt...); err != nil {
			t.Fatalf("%v: %v\n%s", disrupt, err, out)
		}
		var st Status
		took, err := timed(t, fmt.Sprintf("Status after %v", disrupt), func() (err error) {
			st, err = m.Status(ctx)
			return err
		})
		if err != nil || !st.Active || st.MainPID != first.MainPID {
			t.Fatalf("Status after %v = %+v, %v (took %s); want the running unit, reconnected", disrupt, st, err, took)
		}
	}
	if bus.conn == conn || bus.conn == nil || !bus.conn.Connected() {
		t.Error("the Bus does not hold a new, live connection after dbus-daemon was restarted")
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := mustStatus(t, m); st.Active || st.MainPID != 0 {
		t.Fatalf("after Stop: %+v", st)
	}
}

// dbus-daemon restarted while a stop job runs on guard's Bus: the job's result is lost with
// the connection, and Stop judges by the unit's state on a new one instead of waiting out its
// timeout.
func TestSystemdIntegrationBusBreaksDuringStop(t *testing.T) {
	sb := testenv.Systemd(t)
	dir := t.TempDir()
	stopping, proceed := filepath.Join(dir, "stopping"), filepath.Join(dir, "proceed")
	sandboxUnit(t, sb, "cfr-slowstop.service", fmt.Sprintf("ExecStart=/bin/sleep 3600\n"+
		"ExecStop=/bin/sh -c 'touch %s; i=0; while [ ! -e %s ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done'\n", stopping, proceed))
	bus := OpenBus()
	defer bus.Close()
	m, err := New(context.Background(), Config{Manager: KindSystemd, Unit: "cfr-slowstop", Bus: bus, StartTimeout: 20 * time.Second, StopTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	begin := time.Now()
	go func() { done <- m.Stop(context.Background()) }()
	// the stop job is running (its ExecStop waits for the proceed file): restart the bus now
	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Stat(stopping); err != nil; _, err = os.Stat(stopping) {
		if time.Now().After(deadline) {
			t.Fatal("the stop job never ran ExecStop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, err := sb.Exec("systemctl", "restart", "dbus.service"); err != nil {
		t.Fatalf("restart dbus: %v\n%s", err, out)
	}
	if err := os.WriteFile(proceed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if took := time.Since(begin); err != nil || took > 8*time.Second {
			t.Fatalf("Stop = %v after %s; want nil, well before its 20 s timeout", err, took)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not return within 30 s")
	}
	if st := mustStatus(t, m); st.Active || st.MainPID != 0 {
		t.Fatalf("after Stop: %+v", st)
	}
}
