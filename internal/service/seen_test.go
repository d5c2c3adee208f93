package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeCommandService answers the command manager's /bin/sh calls ("status", "stop",
// "start" are the scripts) from its up flag; stopFails makes the stop command fail after
// taking the service down, as a kill of a pid that died meanwhile does.
type fakeCommandService struct {
	t         *testing.T
	up        bool
	stopFails bool
	run       *fakeRunner
}

func newFakeCommandService(t *testing.T, up bool) (*fakeCommandService, *commandManager) {
	f := &fakeCommandService{t: t, up: up}
	f.run = &fakeRunner{fn: func(name string, args []string) ([]byte, error) {
		switch args[1] {
		case "status":
			if f.up {
				return nil, nil
			}
			return nil, exitError(t, "1")
		case "stop":
			f.up = false
			if f.stopFails {
				return []byte("kill: no such process"), exitError(t, "1")
			}
			return nil, nil
		case "start":
			f.up = true
			return nil, nil
		}
		t.Errorf("unexpected command %v", args)
		return nil, errors.New("unexpected")
	}}
	m, err := newCommand(Config{Manager: KindCommand, StartCommand: "start", StopCommand: "stop", StatusCommand: "status"}.withDefaults(),
		deps{run: f.run})
	if err != nil {
		t.Fatal(err)
	}
	return f, m
}

func (f *fakeCommandService) scripts() string {
	var s []string
	for _, c := range f.run.called() {
		s = append(s, strings.TrimPrefix(c, "/bin/sh -c "))
	}
	return strings.Join(s, ",")
}

func TestCommandInformedStopAndStartSkipTheStatusCommandBefore(t *testing.T) {
	ctx := context.Background()
	f, m := newFakeCommandService(t, true)
	seen, err := Look(ctx, m)
	if err != nil || !seen.Status.Active || seen.At.IsZero() {
		t.Fatalf("Look = %+v, %v", seen, err)
	}
	down, err := StopInformed(ctx, m, seen)
	if err != nil {
		t.Fatal(err)
	}
	if down.Status.Active || !down.Status.Exists || down.Status.Manager != KindCommand || down.At.Before(seen.At) {
		t.Errorf("StopInformed returned %+v, want the status that said down, after %v", down, seen.At)
	}
	if err := StartInformed(ctx, m, down); err != nil {
		t.Fatal(err)
	}
	// Without what was seen: status,status,stop,status,status,start,status.
	if got, want := f.scripts(), "status,stop,status,start,status"; got != want {
		t.Errorf("commands run = %s, want %s", got, want)
	}
}

func TestCommandInformedChecksWhenTheSeenStatusCannotStandIn(t *testing.T) {
	ctx := context.Background()
	fresh := func(up bool) Seen {
		st := Status{Manager: KindCommand, Exists: true, Active: up}
		return Seen{Status: st, At: time.Now()}
	}
	stale := fresh(true)
	stale.At = time.Now().Add(-Fresh - time.Millisecond)
	other := fresh(true)
	other.Status.Manager, other.Status.Name = KindPM2, "app"
	tests := []struct {
		name string
		up   bool // the service's real state
		seen Seen
		op   string
		want string
	}{
		{"stop, seen too long ago", false, stale, "stop", "status"},
		{"stop, seen by another manager", false, other, "stop", "status"},
		{"stop, seen down", true, fresh(false), "stop", "status,stop,status"},
		{"stop, nothing seen", false, Seen{}, "stop", "status"},
		{"start, seen up", true, fresh(true), "start", "status"},
		{"start, seen down too long ago", true, func() Seen { s := fresh(false); s.At = stale.At; return s }(), "start", "status"},
		{"start, seen down in the future", true, func() Seen { s := fresh(false); s.At = time.Now().Add(time.Hour); return s }(), "start", "status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, m := newFakeCommandService(t, tt.up)
			var err error
			if tt.op == "stop" {
				_, err = m.StopInformed(ctx, tt.seen)
			} else {
				err = m.StartInformed(ctx, tt.seen)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := f.scripts(); got != tt.want {
				t.Errorf("commands run = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCommandInformedStopOfAServiceThatDiedMeanwhile(t *testing.T) {
	// Seen up, gone by the stop: the stop command fails, the status command says down, and
	// that is a stop that succeeded.
	f, m := newFakeCommandService(t, false)
	f.stopFails = true
	seen := Seen{Status: Status{Manager: KindCommand, Exists: true, Active: true}, At: time.Now()}
	down, err := m.StopInformed(context.Background(), seen)
	if err != nil || down.Status.Active {
		t.Errorf("StopInformed = %+v, %v; want down, no error", down, err)
	}
	if got, want := f.scripts(), "stop,status"; got != want {
		t.Errorf("commands run = %s, want %s", got, want)
	}
}

func TestPM2InformedStopAndStartSkipTheJlistBefore(t *testing.T) {
	ctx := context.Background()
	f := newFakePM2(t, "online", 42)
	m := f.manager()
	seen, err := Look(ctx, m)
	if err != nil || !seen.Status.Active || seen.Status.Name != "app" {
		t.Fatalf("Look = %+v, %v", seen, err)
	}
	down, err := StopInformed(ctx, m, seen)
	if err != nil || down.Status.Active || !down.Status.Exists {
		t.Fatalf("StopInformed = %+v, %v", down, err)
	}
	if err := StartInformed(ctx, m, down); err != nil {
		t.Fatal(err)
	}
	// Without what was seen, a jlist before the stop and one before the start as well.
	want := []string{
		"PM2_HOME=/srv/pm2 /opt/pm2 jlist",
		"PM2_HOME=/srv/pm2 /opt/pm2 stop app", "PM2_HOME=/srv/pm2 /opt/pm2 jlist",
		"PM2_HOME=/srv/pm2 /opt/pm2 start app", "PM2_HOME=/srv/pm2 /opt/pm2 jlist",
	}
	if got := f.run.called(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPM2InformedWithoutDaemonChecksAndRunsNoPM2(t *testing.T) {
	// The daemon died after the status was seen: 'pm2 stop' would spawn a new one, so the
	// full check runs and finds no app, as Stop always did.
	f := newFakePM2(t, "online", 42)
	m := f.manager()
	m.daemonUp = func() (bool, string) { return false, "/srv/pm2" }
	seen := Seen{Status: Status{Manager: KindPM2, Name: "app", Exists: true, Active: true, State: "online"}, At: time.Now()}
	if _, err := m.StopInformed(context.Background(), seen); !errors.Is(err, ErrNotFound) {
		t.Errorf("StopInformed = %v, want ErrNotFound", err)
	}
	seen.Status.Active, seen.Status.State = false, "stopped"
	if err := m.StartInformed(context.Background(), seen); !errors.Is(err, ErrNotFound) {
		t.Errorf("StartInformed = %v, want ErrNotFound", err)
	}
	if got := f.run.called(); len(got) != 0 {
		t.Errorf("pm2 ran without a daemon: %v", got)
	}
}

func TestSystemdInformedStopAndStartSkipTheReadBefore(t *testing.T) {
	for _, state := range []string{"inactive", "failed"} {
		t.Run("stopped "+state, func(t *testing.T) {
			ctx := context.Background()
			u := &fakeUnit{load: "loaded", active: "active", sub: "running", mainPID: 42, stopResult: "done", startResult: "done", afterStart: running}
			u.afterStop = func(u *fakeUnit) { u.active, u.sub, u.mainPID = state, "dead", 0 }
			conn := u.conn()
			m := fakeSystemd(conn, nil)
			seen, err := Look(ctx, m)
			if err != nil || !seen.Status.Active {
				t.Fatalf("Look = %+v, %v", seen, err)
			}
			readsBefore := u.reads
			down, err := StopInformed(ctx, m, seen)
			if err != nil || down.Status.State != state {
				t.Fatalf("StopInformed = %+v, %v", down, err)
			}
			if err := StartInformed(ctx, m, down); err != nil {
				t.Fatal(err)
			}
			// One read confirms the stop, one the start; without what was seen, one more before each job.
			if got := u.reads - readsBefore; got != 2 {
				t.Errorf("unit read %d times by the stop and start, want 2", got)
			}
			want := "stop app.service replace,start app.service replace"
			if state == "failed" {
				want = "stop app.service replace,reset-failed app.service,start app.service replace"
			}
			if got := strings.Join(conn.log, ","); got != want {
				t.Errorf("jobs = %q, want %q", got, want)
			}
		})
	}
}
