package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func fakeSystemd(conn *fakeConn, run *fakeRunner) *systemdManager {
	m := newSystemd(Config{Unit: "app.service", StopTimeout: 2 * time.Second, StartTimeout: 2 * time.Second}.withDefaults(),
		deps{run: run, dial: func(context.Context) (systemdConn, error) { return conn, nil }, journalctl: func() bool { return true }})
	m.interval = time.Millisecond
	return m
}

func TestSystemdStatus(t *testing.T) {
	u := &fakeUnit{load: "loaded", active: "active", sub: "running", mainPID: 42, restarts: 3, result: "success"}
	conn := u.conn()
	st, err := fakeSystemd(conn, nil).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Status{Manager: "systemd", Name: "app.service", Exists: true, Active: true, State: "active",
		SubState: "running", MainPID: 42, Restarts: 3}
	if st != want {
		t.Errorf("Status = %+v, want %+v", st, want)
	}
	if conn.closed != 1 {
		t.Errorf("connection closed %d times, want 1", conn.closed)
	}
}

func TestSystemdStatusNotFound(t *testing.T) {
	u := &fakeUnit{load: "not-found", active: "inactive", sub: "dead"}
	conn := u.conn()
	conn.typeProps = func(string, string) (map[string]any, error) {
		t.Error("service properties read for a unit that does not exist")
		return nil, errors.New("no")
	}
	st, err := fakeSystemd(conn, nil).Status(context.Background())
	if err != nil || st.Exists || st.Active {
		t.Errorf("Status = %+v, %v; want Exists false, no error", st, err)
	}
}

func TestSystemdStopWaitsUntilDown(t *testing.T) {
	u := &fakeUnit{load: "loaded", active: "active", sub: "running", mainPID: 42, stopResult: "done"}
	u.afterStop = func(u *fakeUnit) { u.active, u.sub = "deactivating", "stop-sigterm" }
	// The job is done before the unit's state settles: Stop must keep reading until it has.
	u.onRead = func(u *fakeUnit) {
		if u.active == "deactivating" && u.reads > 4 {
			u.active, u.sub, u.mainPID = "inactive", "dead", 0
		}
	}
	conn := u.conn()
	if err := fakeSystemd(conn, nil).Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if u.active != "inactive" || u.reads < 5 {
		t.Errorf("Stop returned with the unit %s after %d reads", u.active, u.reads)
	}
	if got := strings.Join(conn.log, ","); got != "stop app.service replace" {
		t.Errorf("jobs = %q", got)
	}
}

func TestSystemdStopJobResults(t *testing.T) {
	for _, result := range []string{"failed", "timeout", "canceled", "dependency"} {
		t.Run(result, func(t *testing.T) {
			u := &fakeUnit{load: "loaded", active: "active", sub: "running", mainPID: 1, stopResult: result}
			err := fakeSystemd(u.conn(), nil).Stop(context.Background())
			if want := "stop app.service: job " + result; err == nil || err.Error() != want {
				t.Errorf("Stop = %v, want %q", err, want)
			}
		})
	}
}

func TestSystemdStopTimeout(t *testing.T) {
	u := &fakeUnit{load: "loaded", active: "deactivating", sub: "stop-sigterm", mainPID: 1} // the job never finishes
	m := fakeSystemd(u.conn(), nil)
	m.stopTimeout = 50 * time.Millisecond
	err := m.Stop(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still stopping after") {
		t.Errorf("Stop = %v, want a deadline error saying it is still stopping", err)
	}
}

func TestSystemdStopAndStartNotFound(t *testing.T) {
	u := &fakeUnit{load: "not-found", active: "inactive", sub: "dead"}
	m := fakeSystemd(u.conn(), nil)
	for name, op := range map[string]func(context.Context) error{"stop": m.Stop, "start": m.Start} {
		if err := op(context.Background()); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "service.unit") {
			t.Errorf("%s = %v, want ErrNotFound naming service.unit", name, err)
		}
	}
}

func TestSystemdStart(t *testing.T) {
	tests := []struct {
		name     string
		unit     *fakeUnit
		wantErr  string // "" = success
		wantJobs string
	}{
		{
			name:     "starts",
			unit:     &fakeUnit{active: "inactive", sub: "dead", startResult: "done", afterStart: running},
			wantJobs: "start app.service replace",
		},
		{
			name: "job failed",
			unit: &fakeUnit{active: "inactive", sub: "dead", startResult: "failed",
				afterStart: func(u *fakeUnit) { u.active, u.sub, u.result = "failed", "failed", "exit-code" }},
			wantErr:  "start app.service: job failed; unit is failed/failed (result exit-code); see 'journalctl -u app.service'",
			wantJobs: "start app.service replace",
		},
		{
			name: "died right after starting",
			unit: &fakeUnit{active: "inactive", sub: "dead", startResult: "done",
				afterStart: func(u *fakeUnit) { u.active, u.sub, u.result = "activating", "auto-restart", "exit-code" }},
			wantErr:  "start app.service: start job done but the unit is activating/auto-restart (result exit-code); see 'journalctl -u app.service'",
			wantJobs: "start app.service replace",
		},
		{
			name:     "failed unit is reset first",
			unit:     &fakeUnit{active: "failed", sub: "failed", result: "start-limit-hit", startResult: "done", afterStart: running},
			wantJobs: "reset-failed app.service,start app.service replace",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.unit
			u.load = "loaded"
			conn := u.conn()
			err := fakeSystemd(conn, nil).Start(context.Background())
			if tt.wantErr == "" && err != nil {
				t.Errorf("Start = %v", err)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("Start = %v\nwant %s", err, tt.wantErr)
			}
			if got := strings.Join(conn.log, ","); got != tt.wantJobs {
				t.Errorf("calls = %q, want %q", got, tt.wantJobs)
			}
		})
	}
}

func running(u *fakeUnit) { u.active, u.sub, u.mainPID, u.result = "active", "running", 7, "success" }

func TestSystemdStartTimeout(t *testing.T) {
	u := &fakeUnit{load: "loaded", active: "inactive", sub: "dead"} // the start job never finishes
	m := fakeSystemd(u.conn(), nil)
	m.startTimeout = 50 * time.Millisecond
	err := m.Start(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still starting after") {
		t.Errorf("Start = %v, want a deadline error saying it is still starting", err)
	}
}

// With the system bus unreachable every operation goes through systemctl.
func TestSystemdFallsBackToSystemctl(t *testing.T) {
	state := "ActiveState=active\nSubState=running\nMainPID=42\nNRestarts=0\nResult=success\nLoadState=loaded\n"
	run := &fakeRunner{fn: func(name string, args []string) ([]byte, error) {
		if name != "systemctl" {
			t.Errorf("ran %s", name)
		}
		switch args[len(args)-3] {
		case "stop":
			state = "ActiveState=inactive\nSubState=dead\nMainPID=0\nNRestarts=0\nResult=success\nLoadState=loaded\n"
			return nil, nil
		}
		return []byte(state), nil
	}}
	m := newSystemd(Config{Unit: "app"}.withDefaults(), deps{run: run,
		dial: func(context.Context) (systemdConn, error) {
			return nil, errors.New("dial unix /run/dbus/system_bus_socket: connect: no such file or directory")
		}})
	m.interval = time.Millisecond

	st, err := m.Status(context.Background())
	if err != nil || !st.Active || st.MainPID != 42 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"systemctl show --property=LoadState --property=ActiveState --property=SubState --property=Result --property=MainPID --property=NRestarts -- app.service",
		"systemctl show --property=LoadState --property=ActiveState --property=SubState --property=Result --property=MainPID --property=NRestarts -- app.service",
		"systemctl --no-ask-password stop -- app.service",
		"systemctl show --property=LoadState --property=ActiveState --property=SubState --property=Result --property=MainPID --property=NRestarts -- app.service",
	}
	if got := run.called(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSystemctlErrorSaysWhyItWasUsed(t *testing.T) {
	run := &fakeRunner{fn: func(string, []string) ([]byte, error) {
		return []byte("System has not been booted with systemd as init system (PID 1). Can't operate.\n"), exitError(t, "1")
	}}
	m := newSystemd(Config{Unit: "app"}.withDefaults(), deps{run: run,
		dial: func(context.Context) (systemdConn, error) { return nil, errors.New("no bus") }})
	_, err := m.Status(context.Background())
	want := "status app.service: systemctl show (used because the system bus is unreachable: no bus): exit status 1: System has not been booted with systemd as init system (PID 1). Can't operate."
	if err == nil || err.Error() != want {
		t.Errorf("Status = %v\nwant %s", err, want)
	}
}
