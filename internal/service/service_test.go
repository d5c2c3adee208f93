package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestUnitName(t *testing.T) {
	for in, want := range map[string]string{
		"claude-flow":         "claude-flow.service",
		"claude-flow.service": "claude-flow.service",
		"app@1":               "app@1.service",
		"web.socket":          "web.socket",
		"multi-user.target":   "multi-user.target",
		"my.app":              "my.app.service",
	} {
		if got := unitName(in); got != want {
			t.Errorf("unitName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	want := Config{Manager: "auto", Unit: "claude-flow.service", PM2Name: "claude-flow-assistant", PM2Bin: "pm2",
		StopTimeout: 90 * time.Second, StartTimeout: 90 * time.Second}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestNewUnknownManager(t *testing.T) {
	_, err := New(context.Background(), Config{Manager: "upstart"})
	if err == nil || err.Error() != `service.manager "upstart" is not one of auto, systemd, pm2, command` {
		t.Errorf("New = %v", err)
	}
}

func TestNewExplicitManagersDoNotProbe(t *testing.T) {
	d := deps{run: &fakeRunner{}, dial: func(context.Context) (systemdConn, error) {
		t.Error("dialled the bus")
		return nil, errors.New("no")
	}}
	for kind, name := range map[string]string{"systemd": "systemd unit x.service", "pm2": "pm2 app claude-flow-assistant"} {
		m, err := newManager(context.Background(), Config{Manager: kind, Unit: "x"}, d)
		if err != nil || m.Kind() != kind || m.Name() != name {
			t.Errorf("%s: got %v, %v", kind, m, err)
		}
	}
}

// autoDeps builds fakes for auto-detection: the systemd unit's LoadState ("" = bus
// unreachable, systemctl failing too) and pm2's app list.
func autoDeps(t *testing.T, loadState string, pm2Apps ...string) (deps, *fakeRunner) {
	run := &fakeRunner{fn: func(name string, args []string) ([]byte, error) {
		switch name {
		case "pm2":
			var entries []string
			for _, a := range pm2Apps {
				entries = append(entries, jlistEntry(a, 1, "online", 0))
			}
			return []byte("[" + strings.Join(entries, ",") + "]"), nil
		case "systemctl":
			return []byte("System has not been booted with systemd as init system (PID 1). Can't operate.\n"), exitError(t, "1")
		}
		t.Errorf("unexpected %s", name)
		return nil, errors.New("unexpected")
	}}
	dial := func(context.Context) (systemdConn, error) {
		if loadState == "" {
			return nil, errors.New("dial unix /run/dbus/system_bus_socket: connect: no such file or directory")
		}
		u := &fakeUnit{load: loadState, active: "inactive", sub: "dead"}
		return u.conn(), nil
	}
	return deps{run: run, dial: dial}, run
}

func TestAutoDetect(t *testing.T) {
	// A live pm2 daemon for the pm2 side: this process's pid in a pm2.pid.
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "pm2.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		loadState string
		pm2Apps   []string
		want      string // kind, or the error
	}{
		{"unit exists", "loaded", []string{"claude-flow-assistant"}, "systemd"},
		{"unit exists but is broken", "bad-setting", nil, "systemd"},
		{"no unit, pm2 app", "not-found", []string{"other", "claude-flow-assistant"}, "pm2"},
		{"bus and systemctl unusable, pm2 app", "", []string{"claude-flow-assistant"}, "pm2"},
		{"neither", "not-found", []string{"other"},
			"service not found: looked for systemd unit claude-flow.service (systemd has no such unit) and " +
				"pm2 app claude-flow-assistant (not in 'pm2 jlist'); set service.manager to systemd, pm2 or command, " +
				"or point service.unit / service.pm2_name at the service"},
		{"neither, systemd unusable", "", nil,
			"service not found: looked for systemd unit claude-flow.service (systemctl show (used because the system bus is unreachable: " +
				"dial unix /run/dbus/system_bus_socket: connect: no such file or directory): exit status 1: " +
				"System has not been booted with systemd as init system (PID 1). Can't operate.) and " +
				"pm2 app claude-flow-assistant (not in 'pm2 jlist'); set service.manager to systemd, pm2 or command, " +
				"or point service.unit / service.pm2_name at the service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := autoDeps(t, tt.loadState, tt.pm2Apps...)
			m, err := newManager(context.Background(), Config{PM2Home: home}, d)
			if err != nil {
				if !errors.Is(err, ErrNotFound) || err.Error() != tt.want {
					t.Errorf("New = %v\nwant %s", err, tt.want)
				}
				return
			}
			if m.Kind() != tt.want {
				t.Errorf("picked %s, want %s", m.Kind(), tt.want)
			}
		})
	}
}

func TestAutoDetectWithoutPM2Daemon(t *testing.T) {
	d, run := autoDeps(t, "not-found")
	_, err := newManager(context.Background(), Config{PM2Home: t.TempDir()}, d)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "(no pm2 daemon is running for PM2_HOME=") {
		t.Errorf("New = %v", err)
	}
	if calls := run.called(); len(calls) > 0 {
		t.Errorf("ran %v", calls)
	}
}

func TestOutputTail(t *testing.T) {
	if got := outputTail([]byte("\n\x1b[31m[PM2][ERROR] \x1b[39mProcess x not found\n\n")); got != "[PM2][ERROR] Process x not found" {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("a", 5000) + "END"
	if got := outputTail([]byte(long)); len(got) != 4096 || !strings.HasSuffix(got, "END") {
		t.Errorf("got %d bytes", len(got))
	}
}

func TestExecRunner(t *testing.T) {
	r := &execRunner{dir: "/"}
	out, err := r.Run(context.Background(), []string{"CFR_X=1"}, "/bin/sh", "-c", `echo "$CFR_X $(pwd)"; echo err >&2; exit 4`)
	if got := string(out); got != "1 /\nerr\n" {
		t.Errorf("output %q", got)
	}
	if err == nil || err.Error() != "exit status 4" {
		t.Errorf("err = %v", err)
	}
}
