package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What pm2 7 prints for 'pm2 jlist' when it has to spawn its daemon first (trimmed banner).
const pm2SpawnNoise = "\n                        -------------\n\n__/\\\\\\\\\\\\\\\\\\\\\\\\\\____/\\\\\\\\____________/\\\\\\\\____/\\\\\\\\\\\\\\\\\\_____\n" +
	"                          Runtime Edition\n\n        PM2 is a Production Process Manager for Node.js applications\n" +
	"                Start and Daemonize any application:\n                $ pm2 start app.js\n\n" +
	"\x1b[32m[PM2] \x1b[39mSpawning PM2 daemon with pm2_home=/tmp/pm2hyOjN\n" +
	"\x1b[32m[PM2] \x1b[39mPM2 Successfully daemonized\n"

func jlistEntry(name string, pid int, status string, restarts int) string {
	return fmt.Sprintf(`{"pid":%d,"name":%q,"pm2_env":{"name":%q,"status":%q,"restart_time":%d,"env":{"A":"[x]"}},"pm_id":0,"monit":{"memory":1}}`,
		pid, name, name, status, restarts)
}

func TestParseJlist(t *testing.T) {
	app := jlistEntry("app", 4151, "online", 2)
	tests := []struct {
		name, out string
		want      []string // name/pid/status/restarts
		wantErr   bool
	}{
		{name: "plain", out: "[" + app + "]\n", want: []string{"app/4151/online/2"}},
		{name: "empty list", out: "[]\n", want: nil},
		{name: "after daemon spawn banner", out: pm2SpawnNoise + "[]\n", want: nil},
		{name: "after uncoloured [PM2] lines", out: "[PM2] Spawning PM2 daemon with pm2_home=/x\n[PM2] PM2 Successfully daemonized\n[" + app + "]\n", want: []string{"app/4151/online/2"}},
		{name: "update warning before", out: ">>>> In-memory PM2 is out-of-date, do:\n>>>> $ pm2 update\n[" + app + "," + jlistEntry("other", 0, "stopped", 0) + "]", want: []string{"app/4151/online/2", "other/0/stopped/0"}},
		{name: "warning after", out: "[" + app + "]\n[PM2][WARN] something\n", want: []string{"app/4151/online/2"}},
		{name: "no json", out: "\x1b[31m[PM2][ERROR] \x1b[39mDaemon not launched\n", wantErr: true},
		{name: "nothing", out: "", wantErr: true},
		{name: "truncated", out: "[" + app[:40], wantErr: true},
		{name: "not a process list", out: "[1,2,3]\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			procs, err := parseJlist([]byte(tt.out))
			if tt.wantErr {
				if err == nil {
					t.Errorf("parsed %+v, want an error", procs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range procs {
				got = append(got, fmt.Sprintf("%s/%d/%s/%d", p.Name, p.PID, p.Env.Status, p.Env.RestartTime))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseJlist(f *testing.F) {
	f.Add([]byte(pm2SpawnNoise + "[" + jlistEntry("app", 1, "online", 0) + "]\n"))
	f.Add([]byte("[\n[\n[]"))
	f.Add([]byte("[PM2] x\n[{\"pid\":\"x\"}]\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		_, _ = parseJlist(out) // must not panic or hang
	})
}

func TestPM2StatusSumsInstances(t *testing.T) {
	procs := func(entries ...string) []pm2Process {
		p, err := parseJlist([]byte("[" + strings.Join(entries, ",") + "]"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		procs []pm2Process
		want  Status
	}{
		{"missing", nil, Status{Manager: "pm2", Name: "app"}},
		{"online", procs(jlistEntry("app", 10, "online", 1)),
			Status{Manager: "pm2", Name: "app", Exists: true, Active: true, State: "online", MainPID: 10, Restarts: 1}},
		{"cluster, one errored", procs(jlistEntry("app", 10, "online", 1), jlistEntry("app", 0, "errored", 15)),
			Status{Manager: "pm2", Name: "app", Exists: true, State: "errored", MainPID: 10, Restarts: 16}},
		{"stopped", procs(jlistEntry("app", 0, "stopped", 0)),
			Status{Manager: "pm2", Name: "app", Exists: true, State: "stopped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pm2Status("app", tt.procs); got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// fakePM2 simulates the pm2 CLI: jlist prints the app in its current state; stop and start
// change it. next is what 'pm2 start' leads to.
type fakePM2 struct {
	t      *testing.T
	status string
	pid    int
	next   string
	run    *fakeRunner
}

func newFakePM2(t *testing.T, status string, pid int) *fakePM2 {
	f := &fakePM2{t: t, status: status, pid: pid, next: "online"}
	f.run = &fakeRunner{fn: func(name string, args []string) ([]byte, error) {
		switch strings.Join(args, " ") {
		case "jlist":
			return []byte("[" + jlistEntry("app", f.pid, f.status, 0) + "," + jlistEntry("other", 5, "online", 0) + "]\n"), nil
		case "stop app":
			f.status, f.pid = "stopped", 0
			return []byte("[PM2] [app](0) ✓\n"), nil
		case "start app":
			f.status = f.next
			if f.status == "online" {
				f.pid = 99
			}
			return nil, nil
		}
		t.Errorf("unexpected pm2 %v", args)
		return nil, errors.New("unexpected")
	}}
	return f
}

func (f *fakePM2) manager() *pm2Manager {
	m := newPM2(Config{PM2Name: "app", PM2Home: "/srv/pm2", PM2Bin: "/opt/pm2"}.withDefaults(), deps{run: f.run})
	m.daemonUp = func() (bool, string) { return true, "/srv/pm2" }
	m.interval = time.Millisecond
	return m
}

func TestPM2StopAndStart(t *testing.T) {
	f := newFakePM2(t, "online", 42)
	m := f.manager()
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(context.Background()); err != nil { // already stopped: no 'pm2 stop'
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil { // already online: no 'pm2 start'
		t.Fatal(err)
	}
	want := []string{
		"PM2_HOME=/srv/pm2 /opt/pm2 jlist", "PM2_HOME=/srv/pm2 /opt/pm2 stop app", "PM2_HOME=/srv/pm2 /opt/pm2 jlist",
		"PM2_HOME=/srv/pm2 /opt/pm2 jlist",
		"PM2_HOME=/srv/pm2 /opt/pm2 jlist", "PM2_HOME=/srv/pm2 /opt/pm2 start app", "PM2_HOME=/srv/pm2 /opt/pm2 jlist",
		"PM2_HOME=/srv/pm2 /opt/pm2 jlist",
	}
	if got := f.run.called(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPM2StartFails(t *testing.T) {
	for _, next := range []string{"errored", "stopped"} {
		t.Run(next, func(t *testing.T) {
			f := newFakePM2(t, "stopped", 0)
			f.next = next
			err := f.manager().Start(context.Background())
			want := "start pm2 app app: app is " + next + " after 'pm2 start' (0 restarts); see 'PM2_HOME=/srv/pm2 pm2 logs app --lines 50'"
			if err == nil || err.Error() != want {
				t.Errorf("Start = %v\nwant %s", err, want)
			}
		})
	}
}

func TestPM2StartTimeout(t *testing.T) {
	f := newFakePM2(t, "stopped", 0)
	f.next = "launching"
	m := f.manager()
	m.startTimeout = 50 * time.Millisecond
	err := m.Start(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still launching after") {
		t.Errorf("Start = %v, want a deadline error naming the state", err)
	}
}

func TestPM2CommandFailsWithOutput(t *testing.T) {
	f := newFakePM2(t, "online", 42)
	f.run.fn = func(name string, args []string) ([]byte, error) {
		if args[0] == "jlist" {
			return []byte("[" + jlistEntry("app", 42, "online", 0) + "]"), nil
		}
		return []byte("\x1b[31m[PM2][ERROR] \x1b[39mboom\n"), exitError(t, "1")
	}
	err := f.manager().Stop(context.Background())
	if want := "stop pm2 app app: pm2 stop: exit status 1: [PM2][ERROR] boom"; err == nil || err.Error() != want {
		t.Errorf("Stop = %v\nwant %s", err, want)
	}
}

func TestPM2AppMissing(t *testing.T) {
	f := newFakePM2(t, "online", 42)
	m := f.manager()
	m.app = "nope"
	st, err := m.Status(context.Background())
	if err != nil || st.Exists {
		t.Errorf("Status = %+v, %v; want Exists false", st, err)
	}
	for name, op := range map[string]func(context.Context) error{"stop": m.Stop, "start": m.Start} {
		if err := op(context.Background()); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "not in 'pm2 jlist'") {
			t.Errorf("%s = %v, want ErrNotFound", name, err)
		}
	}
}

// Without a daemon nothing runs pm2, which would spawn one.
func TestPM2NoDaemon(t *testing.T) {
	run := &fakeRunner{}
	m := newPM2(Config{}.withDefaults(), deps{run: run})
	m.daemonUp = func() (bool, string) { return false, "/root/.pm2" }
	st, err := m.Status(context.Background())
	if err != nil || st.Exists {
		t.Errorf("Status = %+v, %v", st, err)
	}
	err = m.Stop(context.Background())
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no pm2 daemon is running for PM2_HOME=/root/.pm2") {
		t.Errorf("Stop = %v", err)
	}
	if calls := run.called(); len(calls) > 0 {
		t.Errorf("ran %v", calls)
	}
}

func TestPM2DaemonRunning(t *testing.T) {
	exited := exec.Command("/bin/true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, pidFile string
		want          bool
	}{
		{"live pid", strconv.Itoa(os.Getpid()) + "\n", true},
		{"dead pid", strconv.Itoa(exited.Process.Pid), false},
		{"garbage", "abc", false},
		{"no pid file", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			if tt.pidFile != "" {
				if err := os.WriteFile(filepath.Join(home, "pm2.pid"), []byte(tt.pidFile), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := pm2DaemonRunning(home); got != tt.want {
				t.Errorf("pm2DaemonRunning = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResolvePM2Home(t *testing.T) {
	t.Setenv("HOME", "/home/op")
	t.Setenv("PM2_HOME", "")
	if got := resolvePM2Home(""); got != "/home/op/.pm2" {
		t.Errorf("default = %q", got)
	}
	t.Setenv("PM2_HOME", "/env/pm2")
	if got := resolvePM2Home(""); got != "/env/pm2" {
		t.Errorf("from env = %q", got)
	}
	if got := resolvePM2Home("/cfg/pm2"); got != "/cfg/pm2" {
		t.Errorf("configured = %q", got)
	}
}

func TestPM2JlistProblems(t *testing.T) {
	t.Run("pm2 not installed", func(t *testing.T) {
		m := newPM2(Config{PM2Bin: "/nonexistent/pm2"}.withDefaults(), deps{run: &execRunner{}})
		m.daemonUp = func() (bool, string) { return true, "/x" }
		_, err := m.Status(context.Background())
		if err == nil || !strings.HasSuffix(err.Error(), "; set service.pm2_bin to pm2's full path") {
			t.Errorf("Status = %v", err)
		}
	})
	t.Run("daemon hangs", func(t *testing.T) {
		m := newPM2(Config{}.withDefaults(), deps{run: runnerFunc(func(ctx context.Context) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})})
		m.daemonUp = func() (bool, string) { return true, "/x" }
		m.listTimeout = 50 * time.Millisecond
		_, err := m.Status(context.Background())
		want := "status pm2 app claude-flow-assistant: pm2 jlist did not answer within 50ms; the pm2 daemon may be hung (try 'pm2 ping'): context deadline exceeded"
		if !errors.Is(err, context.DeadlineExceeded) || err.Error() != want {
			t.Errorf("Status = %v\nwant %s", err, want)
		}
	})
}

// runnerFunc is a runner that ignores what it is asked to run.
var _ runner = runnerFunc(nil)

type runnerFunc func(ctx context.Context) ([]byte, error)

func (f runnerFunc) Run(ctx context.Context, _ []string, _ string, _ ...string) ([]byte, error) {
	return f(ctx)
}
