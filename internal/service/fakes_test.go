package service

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// fakeRunner records calls and answers them with fn.
type fakeRunner struct {
	mu    sync.Mutex
	calls []string // "PM2_HOME=/x pm2 stop app"
	fn    func(name string, args []string) ([]byte, error)
}

var _ runner = (*fakeRunner)(nil)

func (f *fakeRunner) Run(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, strings.Join(append(append(append([]string{}, env...), name), args...), " "))
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.fn == nil {
		return nil, errors.New("unexpected call")
	}
	return f.fn(name, args)
}

func (f *fakeRunner) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.calls...)
}

// fakeConn stands in for go-systemd's D-Bus connection.
type fakeConn struct {
	mu          sync.Mutex
	unitProps   func(unit string) (map[string]any, error)
	typeProps   func(unit, unitType string) (map[string]any, error)
	start, stop func(name, mode string, result chan<- string) (int, error)
	resetFailed func(name string) error
	log         []string
	closed      int
	broken      bool // Connected reports false: the bus dropped the connection
}

var _ systemdConn = (*fakeConn)(nil)

func (c *fakeConn) record(s string) {
	c.mu.Lock()
	c.log = append(c.log, s)
	c.mu.Unlock()
}

func (c *fakeConn) GetUnitPropertiesContext(_ context.Context, unit string) (map[string]any, error) {
	return c.unitProps(unit)
}

func (c *fakeConn) GetUnitTypePropertiesContext(_ context.Context, unit, unitType string) (map[string]any, error) {
	return c.typeProps(unit, unitType)
}

func (c *fakeConn) StartUnitContext(_ context.Context, name, mode string, ch chan<- string) (int, error) {
	c.record("start " + name + " " + mode)
	return c.start(name, mode, ch)
}

func (c *fakeConn) StopUnitContext(_ context.Context, name, mode string, ch chan<- string) (int, error) {
	c.record("stop " + name + " " + mode)
	return c.stop(name, mode, ch)
}

func (c *fakeConn) ResetFailedUnitContext(_ context.Context, name string) error {
	c.record("reset-failed " + name)
	return c.resetFailed(name)
}

func (c *fakeConn) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed == 0 && !c.broken
}

func (c *fakeConn) Close() {
	c.mu.Lock()
	c.closed++
	c.mu.Unlock()
}

// fakeUnit is a unit whose state the fake connection serves and its jobs change.
type fakeUnit struct {
	mu                        sync.Mutex
	load, active, sub, result string
	mainPID, restarts         int
	reads                     int
	onRead                    func(u *fakeUnit) // called under mu on every property read
	startResult, stopResult   string            // "" means the job never finishes
	afterStart, afterStop     func(u *fakeUnit)
}

func (u *fakeUnit) conn() *fakeConn {
	job := func(result string, after func(*fakeUnit)) func(string, string, chan<- string) (int, error) {
		return func(_, _ string, ch chan<- string) (int, error) {
			u.mu.Lock()
			if after != nil {
				after(u)
			}
			u.mu.Unlock()
			if result != "" {
				ch <- result
			}
			return 1, nil
		}
	}
	return &fakeConn{
		unitProps: func(string) (map[string]any, error) {
			u.mu.Lock()
			defer u.mu.Unlock()
			u.reads++
			if u.onRead != nil {
				u.onRead(u)
			}
			return map[string]any{"LoadState": u.load, "ActiveState": u.active, "SubState": u.sub, "Id": "x"}, nil
		},
		typeProps: func(_, unitType string) (map[string]any, error) {
			if unitType != "Service" {
				return nil, errors.New("unknown interface")
			}
			u.mu.Lock()
			defer u.mu.Unlock()
			return map[string]any{"MainPID": uint32(u.mainPID), "NRestarts": uint32(u.restarts), "Result": u.result}, nil
		},
		start:       job(u.startResult, u.afterStart),
		stop:        job(u.stopResult, u.afterStop),
		resetFailed: func(string) error { return nil },
	}
}

// exitError returns a real *exec.ExitError with the given code.
func exitError(t *testing.T, code string) error {
	t.Helper()
	err := exec.Command("/bin/sh", "-c", "exit "+code).Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("want an exit error, got %v", err)
	}
	return err
}
