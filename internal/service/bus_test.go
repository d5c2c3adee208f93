package service

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// busRig is a Bus whose dials hand out fake connections to one fake unit.
type busRig struct {
	unit  *fakeUnit
	bus   *Bus
	mu    sync.Mutex
	conns []*fakeConn
	fail  atomic.Bool // dials fail while set
}

func newBusRig(t *testing.T) *busRig {
	t.Helper()
	r := &busRig{unit: &fakeUnit{load: "loaded", active: "active", sub: "running", mainPID: 42, stopResult: "done",
		afterStop: func(u *fakeUnit) { u.active, u.sub, u.mainPID = "inactive", "dead", 0 }}}
	r.bus = newBus(func(ctx context.Context) (systemdConn, error) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if r.fail.Load() {
			return nil, errors.New("dial unix /run/dbus/system_bus_socket: connect: no such file or directory")
		}
		c := r.unit.conn()
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		return c, nil
	})
	t.Cleanup(r.bus.Close)
	return r
}

func (r *busRig) dials() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

func (r *busRig) conn(i int) *fakeConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[i]
}

// breakConn makes connection i behave as one the bus dropped.
func (r *busRig) breakConn(i int) {
	c := r.conn(i)
	c.mu.Lock()
	c.broken = true
	c.mu.Unlock()
	c.unitProps = func(string) (map[string]any, error) { return nil, dbus.ErrClosed }
}

func (r *busRig) manager() *systemdManager {
	return newSystemd(Config{Unit: "cfr", Bus: r.bus}.withDefaults(), deps{run: &fakeRunner{fn: func(name string, args []string) ([]byte, error) {
		return nil, errors.New("systemctl must not run: the bus is up")
	}}})
}

func TestBusReusesOneConnection(t *testing.T) {
	r := newBusRig(t)
	m, other := r.manager(), r.manager()
	for range 3 {
		for _, mm := range []*systemdManager{m, other} {
			if st, err := mm.Status(context.Background()); err != nil || !st.Active || st.MainPID != 42 || st.Restarts != 0 {
				t.Fatalf("Status = %+v, %v", st, err)
			}
		}
	}
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := r.dials(); n != 1 {
		t.Fatalf("dialled %d times for 6 status calls and a stop, want 1", n)
	}
	if c := r.conn(0); c.closed != 0 {
		t.Fatalf("a manager closed the shared connection %d times", c.closed)
	}
	r.bus.Close()
	if c := r.conn(0); c.closed != 1 {
		t.Fatalf("Bus.Close closed the connection %d times, want 1", c.closed)
	}
	if _, err := r.bus.current(context.Background()); !errors.Is(err, ErrBusClosed) {
		t.Fatalf("after Close: %v, want ErrBusClosed", err)
	}
}

func TestBusReconnectsAfterBreak(t *testing.T) {
	r := newBusRig(t)
	m := r.manager()
	ctx := context.Background()
	if _, err := m.Status(ctx); err != nil {
		t.Fatal(err)
	}
	r.breakConn(0)
	st, err := m.Status(ctx)
	if err != nil || !st.Active {
		t.Fatalf("Status after the connection broke = %+v, %v; want a transparent reconnect", st, err)
	}
	if n := r.dials(); n != 2 {
		t.Fatalf("dialled %d times, want 2", n)
	}
	if r.conn(0).closed != 1 {
		t.Fatal("the broken connection was not closed")
	}
}

// systemd off the bus (re-executing) answers ServiceUnknown on a live connection: retried
// on the same connection until systemd is back.
func TestBusRetriesWhileSystemdIsOffTheBus(t *testing.T) {
	r := newBusRig(t)
	m := r.manager()
	if _, err := m.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := r.conn(0)
	good := c.unitProps
	var calls atomic.Int32
	c.unitProps = func(u string) (map[string]any, error) {
		if calls.Add(1) <= 2 {
			return nil, dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown", Body: []any{"The name org.freedesktop.systemd1 was not provided"}}
		}
		return good(u)
	}
	if st, err := m.Status(context.Background()); err != nil || !st.Active {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if calls.Load() != 3 || r.dials() != 1 {
		t.Fatalf("%d calls and %d dials, want 3 calls on the one connection", calls.Load(), r.dials())
	}
}

func TestBusGivesUpAfterWait(t *testing.T) {
	r := newBusRig(t)
	r.bus.Wait = 150 * time.Millisecond
	m := r.manager()
	h, err := r.bus.handle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.breakConn(0)
	r.fail.Store(true)
	begin := time.Now()
	_, err = h.GetUnitPropertiesContext(context.Background(), "cfr.service")
	took := time.Since(begin)
	if err == nil || !strings.Contains(err.Error(), "did not come back within 150ms") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v", err)
	}
	if took < 150*time.Millisecond || took > 5*time.Second {
		t.Fatalf("gave up after %s, want about the 150ms Wait", took)
	}
	// The bus is back: the next call connects again.
	r.fail.Store(false)
	if st, err := m.Status(context.Background()); err != nil || !st.Active {
		t.Fatalf("Status once the bus is back = %+v, %v", st, err)
	}
}

func TestBusHonoursCancelWhileWaiting(t *testing.T) {
	r := newBusRig(t)
	h, err := r.bus.handle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.breakConn(0)
	r.fail.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.GetUnitPropertiesContext(ctx, "cfr.service"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
}

// An answer from systemd is not a broken connection: no retry, no reconnect.
func TestBusDoesNotRetryRealErrors(t *testing.T) {
	r := newBusRig(t)
	if _, err := r.bus.handleProps(context.Background()); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	r.conn(0).unitProps = func(string) (map[string]any, error) {
		calls.Add(1)
		return nil, dbus.Error{Name: "org.freedesktop.DBus.Error.AccessDenied"}
	}
	if _, err := r.bus.handleProps(context.Background()); err == nil || calls.Load() != 1 || r.dials() != 1 {
		t.Fatalf("err %v after %d calls and %d dials, want the error at once", err, calls.Load(), r.dials())
	}
}

// Many callers at once (guard's sampler runs its parts in parallel) see one reconnect.
func TestBusConcurrentCallersReconnectOnce(t *testing.T) {
	r := newBusRig(t)
	m := r.manager()
	if _, err := m.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.breakConn(0)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.Status(context.Background()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := r.dials(); n != 2 {
		t.Fatalf("dialled %d times, want 2 (one reconnect shared by 20 callers)", n)
	}
}

// Without a Bus the manager keeps today's connection per call.
func TestNoBusConnectionPerCall(t *testing.T) {
	r := newBusRig(t)
	m := newSystemd(Config{Unit: "cfr"}.withDefaults(), deps{dial: r.bus.dial})
	for range 2 {
		if _, err := m.Status(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if r.dials() != 2 || r.conn(0).closed != 1 || r.conn(1).closed != 1 {
		t.Fatalf("%d dials; want one per call, each closed", r.dials())
	}
}

func (b *Bus) handleProps(ctx context.Context) (map[string]any, error) {
	h, err := b.handle(ctx)
	if err != nil {
		return nil, err
	}
	return h.GetUnitPropertiesContext(ctx, "cfr.service")
}

// breakDuring makes connection 0's stop and start jobs break the connection once enqueued:
// their JobRemoved results never come.
func (r *busRig) breakDuringJobs() {
	c := r.conn(0)
	breaking := func(job func(string, string, chan<- string) (int, error)) func(string, string, chan<- string) (int, error) {
		return func(name, mode string, ch chan<- string) (int, error) {
			id, err := job(name, mode, ch)
			c.mu.Lock()
			c.broken = true
			c.mu.Unlock()
			return id, err
		}
	}
	c.stop, c.start = breaking(c.stop), breaking(c.start)
}

// A job whose connection broke is judged by the unit's state, on a new connection, instead
// of waiting for a result that never comes until the stop or start timeout.
func TestBusJobSurvivesBreakDuringJob(t *testing.T) {
	for _, op := range []string{"stop", "start"} {
		t.Run(op, func(t *testing.T) {
			r := newBusRig(t)
			u := r.unit
			u.stopResult, u.startResult = "", "" // JobRemoved never arrives
			u.afterStart = func(u *fakeUnit) { u.active, u.sub, u.mainPID = "active", "running", 43 }
			if op == "start" {
				u.active, u.sub, u.mainPID = "inactive", "dead", 0
			}
			m := r.manager()
			m.stopTimeout, m.startTimeout = 20*time.Second, 20*time.Second
			if _, err := m.Status(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.breakDuringJobs()
			run := map[string]func(context.Context) error{"stop": m.Stop, "start": m.Start}[op]
			took, err := timed(t, op, func() error { return run(context.Background()) })
			if err != nil || took > 5*time.Second {
				t.Fatalf("%s = %v after %s; want nil, judged by the state on a new connection", op, err, took)
			}
			if r.dials() != 2 {
				t.Fatalf("dialled %d times, want 2", r.dials())
			}
			if st, err := m.Status(context.Background()); err != nil || st.Active != (op == "start") {
				t.Fatalf("after %s: %+v, %v", op, st, err)
			}
		})
	}
}
