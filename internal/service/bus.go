package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// Bus keeps one D-Bus connection to systemd for a long-running caller (cfrollback guard), so
// that a status call is one round trip instead of a connect, an authentication and a Hello
// on two sockets. Managers built with Config.Bus share it: safe for concurrent calls (godbus
// serialises the wire; the Bus only guards which connection is current).
//
// When the connection breaks (dbus-daemon restarted, systemd re-executed or restarted, the
// bus closed it) or systemd is briefly off the bus, a call reconnects and is retried, for at
// most Wait in all; then it fails with the first error and the next call tries again. A
// manager picks its backend with one connection attempt, as a short-lived command does, so a
// host whose system bus is down falls back to systemctl at once rather than after Wait. A
// stop or start job whose connection breaks is judged by the unit's state (errJobUnwatched). Close it when done; a closed Bus refuses.
type Bus struct {
	// Wait bounds how long one call waits for the connection to come back (DefaultBusWait).
	Wait time.Duration

	dial func(ctx context.Context) (systemdConn, error)
	life context.Context // the connections' lifetime: cancelled by Close
	stop context.CancelFunc
	sem  chan struct{} // held by the one goroutine that (re)connects

	mu     sync.Mutex
	conn   systemdConn
	closed bool
}

// DefaultBusWait covers a daemon-reexec or a dbus-daemon restart on a loaded host.
const DefaultBusWait = 10 * time.Second

// ErrBusClosed is returned by calls through a Bus after Close.
var ErrBusClosed = errors.New("systemd bus connection closed")

// OpenBus returns a Bus that connects to the system bus on first use.
func OpenBus() *Bus { return newBus(dialSystemBus) }

func newBus(dial func(ctx context.Context) (systemdConn, error)) *Bus {
	life, stop := context.WithCancel(context.Background())
	return &Bus{Wait: DefaultBusWait, dial: dial, life: life, stop: stop, sem: make(chan struct{}, 1)}
}

// Close closes the connection; calls in flight fail, later ones get ErrBusClosed.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.stop()
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
}

// current returns the open connection, or dials once when there is none (or it broke).
func (b *Bus) current(ctx context.Context) (systemdConn, error) {
	b.mu.Lock()
	c, closed := b.conn, b.closed
	b.mu.Unlock()
	switch {
	case closed:
		return nil, ErrBusClosed
	case c != nil && c.Connected():
		return c, nil
	}
	select { // one dialler at a time; the others wait for its connection
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-b.sem }()
	b.mu.Lock()
	c, closed = b.conn, b.closed
	b.mu.Unlock()
	switch {
	case closed:
		return nil, ErrBusClosed
	case c != nil && c.Connected():
		return c, nil // another goroutine reconnected meanwhile
	}
	nc, err := b.dialOnce(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		nc.Close()
		return nil, ErrBusClosed
	}
	if b.conn != nil {
		b.conn.Close()
	}
	b.conn = nc
	return nc, nil
}

// dialOnce connects for the Bus's lifetime (godbus ties a connection to its dial context)
// but gives up when ctx ends; a connection that arrives after that is closed.
func (b *Bus) dialOnce(ctx context.Context) (systemdConn, error) {
	type dialed struct {
		c   systemdConn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		c, err := b.dial(b.life)
		ch <- dialed{c, err}
	}()
	select {
	case d := <-ch:
		return d.c, d.err
	case <-ctx.Done():
		go func() {
			if d := <-ch; d.c != nil {
				d.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// call runs f on the current connection; when the connection broke or systemd is off the
// bus it reconnects and retries f until it succeeds, fails otherwise, or Wait is over.
// Callers hold a handle, so the Bus has been connected before.
func (b *Bus) call(ctx context.Context, f func(c systemdConn) error) error {
	c, err := b.current(ctx)
	if err == nil {
		err = f(c)
		if err == nil || !transient(c, err) {
			return err
		}
	}
	if errors.Is(err, ErrBusClosed) || ctx.Err() != nil {
		return err
	}
	first := err // the connection broke, or reconnecting failed once: wait for the bus
	wctx, cancel := context.WithTimeout(ctx, b.Wait)
	defer cancel()
	perr := poll(wctx, time.Second, func() (bool, error) {
		c, err := b.current(wctx)
		if err == nil {
			err = f(c)
			if err != nil && !transient(c, err) {
				return false, err // a real answer from systemd: no more retries
			}
		}
		if errors.Is(err, ErrBusClosed) {
			return false, err
		}
		return err == nil, nil
	})
	switch {
	case perr == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(perr, context.DeadlineExceeded):
		return fmt.Errorf("%w (systemd's bus did not come back within %s)", first, b.Wait)
	}
	return perr
}

// transient reports whether err means the connection is gone or systemd is not on the bus
// right now (re-executing, restarting), rather than an answer to the call.
func transient(c systemdConn, err error) bool {
	if !c.Connected() || errors.Is(err, dbus.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var name string
	var de dbus.Error
	var dep *dbus.Error
	switch {
	case errors.As(err, &de):
		name = de.Name
	case errors.As(err, &dep):
		name = dep.Name
	}
	switch name {
	case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
		"org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Disconnected":
		return true
	}
	return false
}

// handle is what a manager built with Config.Bus dials: it never closes the shared
// connection and routes every call through Bus.call.
func (b *Bus) handle(ctx context.Context) (systemdConn, error) {
	if _, err := b.current(ctx); err != nil {
		return nil, err
	}
	return busHandle{b}, nil
}

type busHandle struct{ b *Bus }

var _ systemdConn = busHandle{}

func (h busHandle) GetUnitPropertiesContext(ctx context.Context, unit string) (p map[string]any, err error) {
	err = h.b.call(ctx, func(c systemdConn) error {
		p, err = c.GetUnitPropertiesContext(ctx, unit)
		return err
	})
	return p, err
}

func (h busHandle) GetUnitTypePropertiesContext(ctx context.Context, unit, unitType string) (p map[string]any, err error) {
	err = h.b.call(ctx, func(c systemdConn) error {
		p, err = c.GetUnitTypePropertiesContext(ctx, unit, unitType)
		return err
	})
	return p, err
}

// Jobs are enqueued in "replace" mode, so enqueueing again after a lost reply is harmless.
func (h busHandle) StartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (id int, err error) {
	err = h.b.call(ctx, func(c systemdConn) error {
		id, err = c.StartUnitContext(ctx, name, mode, ch)
		return err
	})
	return id, err
}

func (h busHandle) StopUnitContext(ctx context.Context, name, mode string, ch chan<- string) (id int, err error) {
	err = h.b.call(ctx, func(c systemdConn) error {
		id, err = c.StopUnitContext(ctx, name, mode, ch)
		return err
	})
	return id, err
}

func (h busHandle) ResetFailedUnitContext(ctx context.Context, name string) error {
	return h.b.call(ctx, func(c systemdConn) error { return c.ResetFailedUnitContext(ctx, name) })
}

// Connected reports whether the Bus's current connection lives: a job waiting for its result
// on a connection that broke stops waiting (a broken connection is replaced on the next call).
func (h busHandle) Connected() bool {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	return !h.b.closed && h.b.conn != nil && h.b.conn.Connected()
}

func (h busHandle) Close() {} // the Bus owns the connection
