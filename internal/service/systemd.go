package service

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// systemdConn is the part of go-systemd's D-Bus connection the manager uses.
type systemdConn interface {
	GetUnitPropertiesContext(ctx context.Context, unit string) (map[string]any, error)
	GetUnitTypePropertiesContext(ctx context.Context, unit, unitType string) (map[string]any, error)
	StartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	StopUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	ResetFailedUnitContext(ctx context.Context, name string) error
	Connected() bool
	Close()
}

var _ systemdConn = (*sddbus.Conn)(nil)

// dialSystemBus connects to the system bus; godbus honours DBUS_SYSTEM_BUS_ADDRESS.
func dialSystemBus(ctx context.Context) (systemdConn, error) {
	conn, err := dialBus(ctx)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// dialBus is cfrollback's one D-Bus client of systemd: the manager's and the timer
// installer's connections are made here.
func dialBus(ctx context.Context) (*sddbus.Conn, error) {
	return sddbus.NewSystemConnectionContext(ctx)
}

func realDeps() deps {
	// Programs run in "/" so that neither pm2 (which treats an unknown app name as a script
	// path) nor users' commands depend on where the operator happened to be.
	return deps{run: &execRunner{dir: "/"}, dial: dialSystemBus, journalctl: haveJournalctl}
}

// unitState is what the manager reads about the unit.
type unitState struct {
	LoadState, ActiveState, SubState string
	Result                           string // services only: "success", "exit-code", "start-limit-hit", ...
	MainPID, NRestarts               int    // services only
}

func (u unitState) exists() bool { return u.LoadState != "not-found" }

// down is what Stop waits for.
func (u unitState) down() bool {
	return (u.ActiveState == "inactive" || u.ActiveState == "failed") && u.MainPID == 0
}

func (u unitState) running() bool { return u.ActiveState == "active" || u.ActiveState == "reloading" }

// started is what Start accepts once the start job is done: running, or still activating
// without having crashed (auto-restart means the process already died).
func (u unitState) started() bool {
	return u.running() || (u.ActiveState == "activating" && u.SubState != "auto-restart")
}

func (u unitState) describe() string {
	s := u.ActiveState + "/" + u.SubState
	if u.Result != "" && u.Result != "success" {
		s += " (result " + u.Result + ")"
	}
	return s
}

func (u unitState) status(unit string) Status {
	return Status{Manager: KindSystemd, Name: unit, Exists: u.exists(), Active: u.running(),
		State: u.ActiveState, SubState: u.SubState, MainPID: u.MainPID, Restarts: u.NRestarts}
}

// unitBackend talks to systemd about one unit: busBackend over D-Bus, systemctlBackend when
// the system bus cannot be reached.
type unitBackend interface {
	props(ctx context.Context) (unitState, error)
	stopJob(ctx context.Context) error  // enqueue a stop job ("replace") and wait for its result
	startJob(ctx context.Context) error // the same for start
	resetFailed(ctx context.Context) error
	close()
}

// systemdManager manages a systemd unit. By default it opens a D-Bus connection per call and
// closes it before returning, so the Manager needs no Close and a dbus-daemon restart between
// calls does no harm. Built with Config.Bus it uses that Bus's one connection instead, which
// reconnects by itself (see Bus).
type systemdManager struct {
	unit       string
	run        runner
	dial       func(ctx context.Context) (systemdConn, error)
	journalctl func() bool
	stopTimeout, startTimeout,
	interval time.Duration // between state checks after a job
}

var _ Manager = (*systemdManager)(nil)

func newSystemd(cfg Config, d deps) *systemdManager {
	if cfg.Bus != nil {
		d.dial = cfg.Bus.handle
	}
	return &systemdManager{unit: cfg.Unit, run: d.run, dial: d.dial, journalctl: d.journalctl,
		stopTimeout: cfg.StopTimeout, startTimeout: cfg.StartTimeout, interval: 100 * time.Millisecond}
}

func (m *systemdManager) Name() string { return "systemd unit " + m.unit }
func (m *systemdManager) Kind() string { return KindSystemd }

// backend dials the system bus, or falls back to systemctl, which as root reaches systemd
// over its private socket even when dbus-daemon is down.
func (m *systemdManager) backend(ctx context.Context) unitBackend {
	conn, err := m.dial(ctx)
	if err != nil {
		return &systemctlBackend{unit: m.unit, run: m.run, busErr: err}
	}
	return &busBackend{unit: m.unit, conn: conn}
}

func (m *systemdManager) Status(ctx context.Context) (Status, error) {
	b := m.backend(ctx)
	defer b.close()
	u, err := b.props(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("status %s: %w", m.unit, err)
	}
	return u.status(m.unit), nil
}

func (m *systemdManager) detect(ctx context.Context) (bool, string, error) {
	b := m.backend(ctx)
	defer b.close()
	u, err := b.props(ctx)
	if err != nil {
		return false, "", err
	}
	return u.exists(), "systemd has no such unit", nil
}

var _ Informed = (*systemdManager)(nil)

func (m *systemdManager) Stop(ctx context.Context) error {
	_, err := m.StopInformed(ctx, Seen{})
	return err
}

// StopInformed: a fresh seen that says active stands for the read of the unit before the stop
// job (systemd's stop job on a unit that went inactive meanwhile is done at once).
func (m *systemdManager) StopInformed(ctx context.Context, seen Seen) (Seen, error) {
	begin := time.Now()
	ctx, cancel := withTimeout(ctx, m.stopTimeout)
	defer cancel()
	b := m.backend(ctx)
	defer b.close()

	var u unitState
	var err error
	if !seen.says(KindSystemd, m.unit, true) {
		if u, err = b.props(ctx); err != nil {
			return Seen{}, fmt.Errorf("stop %s: %w", m.unit, err)
		}
		if !u.exists() {
			return Seen{}, fmt.Errorf("stop %s: %w: systemd has no such unit; check service.unit", m.unit, ErrNotFound)
		}
	}
	// a job whose connection broke is not watched to its end: the state polling below decides
	if err := b.stopJob(ctx); err != nil && !errors.Is(err, errJobUnwatched) {
		if ctx.Err() != nil {
			return Seen{}, fmt.Errorf("stop %s: still stopping after %s (systemd carries on; see 'systemctl status %s'): %w",
				m.unit, since(begin), m.unit, ctx.Err())
		}
		return Seen{}, fmt.Errorf("stop %s: %w", m.unit, err)
	}
	var at time.Time
	err = poll(ctx, m.interval, func() (bool, error) {
		u, err = b.props(ctx)
		at = time.Now()
		return u.down(), err
	})
	if err != nil && ctx.Err() != nil {
		return Seen{}, fmt.Errorf("stop %s: stop job done but the unit is still %s with MainPID %d after %s: %w",
			m.unit, u.describe(), u.MainPID, since(begin), err)
	}
	if err != nil {
		return Seen{}, fmt.Errorf("stop %s: %w", m.unit, err)
	}
	return Seen{Status: u.status(m.unit), At: at}, nil
}

func (m *systemdManager) Start(ctx context.Context) error {
	return m.StartInformed(ctx, Seen{})
}

// StartInformed: a fresh seen that says not active stands for the read of the unit before the
// start job; its state still says whether the unit needs a reset-failed first.
func (m *systemdManager) StartInformed(ctx context.Context, seen Seen) error {
	begin := time.Now()
	ctx, cancel := withTimeout(ctx, m.startTimeout)
	defer cancel()
	b := m.backend(ctx)
	defer b.close()

	var u unitState
	var err error
	state := seen.Status.State
	if !seen.says(KindSystemd, m.unit, false) {
		if u, err = b.props(ctx); err != nil {
			return fmt.Errorf("start %s: %w", m.unit, err)
		}
		if !u.exists() {
			return fmt.Errorf("start %s: %w: systemd has no such unit; check service.unit", m.unit, ErrNotFound)
		}
		state = u.ActiveState
	}
	if state == "failed" {
		// A unit that crash-looped into its start limit refuses to start until this.
		if err := b.resetFailed(ctx); err != nil {
			return fmt.Errorf("start %s: reset-failed: %w", m.unit, err)
		}
	}
	jobErr := b.startJob(ctx)
	if errors.Is(jobErr, errJobUnwatched) {
		// the connection broke during the job: wait for the unit to come up or fail instead
		jobErr = poll(ctx, m.interval, func() (bool, error) {
			u, err = b.props(ctx)
			return u.started() || u.ActiveState == "failed", err
		})
	}
	if jobErr != nil && ctx.Err() != nil {
		return fmt.Errorf("start %s: still starting after %s (systemd carries on; see 'systemctl status %s'): %w",
			m.unit, since(begin), m.unit, ctx.Err())
	}
	u, err = b.props(ctx)
	switch {
	case jobErr != nil && err != nil:
		return fmt.Errorf("start %s: %w%s", m.unit, jobErr, m.journalHint())
	case jobErr != nil:
		return fmt.Errorf("start %s: %w; unit is %s%s", m.unit, jobErr, u.describe(), m.journalHint())
	case err != nil:
		return fmt.Errorf("start %s: %w", m.unit, err)
	case !u.started():
		return fmt.Errorf("start %s: start job done but the unit is %s%s", m.unit, u.describe(), m.journalHint())
	}
	return nil
}

var haveJournalctl = sync.OnceValue(func() bool {
	_, err := exec.LookPath("journalctl")
	return err == nil
})

func (m *systemdManager) journalHint() string {
	if m.journalctl == nil || !m.journalctl() {
		return ""
	}
	return fmt.Sprintf("; see 'journalctl -u %s'", m.unit)
}

// busBackend is the normal path: go-systemd over the system bus.
type busBackend struct {
	unit string
	conn systemdConn
}

func (b *busBackend) close() { b.conn.Close() }

func (b *busBackend) props(ctx context.Context) (unitState, error) {
	p, err := b.conn.GetUnitPropertiesContext(ctx, b.unit)
	if err != nil {
		return unitState{}, err
	}
	u := unitState{LoadState: str(p["LoadState"]), ActiveState: str(p["ActiveState"]), SubState: str(p["SubState"])}
	if u.LoadState == "" {
		return unitState{}, fmt.Errorf("systemd returned no LoadState for %s", b.unit)
	}
	if !u.exists() || !strings.HasSuffix(b.unit, ".service") {
		return u, nil
	}
	sp, err := b.conn.GetUnitTypePropertiesContext(ctx, b.unit, "Service")
	if err != nil {
		return unitState{}, err
	}
	u.MainPID, u.NRestarts, u.Result = num(sp["MainPID"]), num(sp["NRestarts"]), str(sp["Result"])
	return u, nil
}

func (b *busBackend) stopJob(ctx context.Context) error {
	return b.job(ctx, b.conn.StopUnitContext)
}

func (b *busBackend) startJob(ctx context.Context) error {
	return b.job(ctx, b.conn.StartUnitContext)
}

func (b *busBackend) resetFailed(ctx context.Context) error {
	return b.conn.ResetFailedUnitContext(ctx, b.unit)
}

// errJobUnwatched: the connection broke while a job ran, so its JobRemoved result never
// comes; the caller judges by the unit's state instead.
var errJobUnwatched = errors.New("the D-Bus connection broke during the job")

// jobWatch is how often job checks that its connection still lives.
const jobWatch = 100 * time.Millisecond

// job enqueues a job in "replace" mode and waits for systemd's JobRemoved result.
func (b *busBackend) job(ctx context.Context, enqueue func(context.Context, string, string, chan<- string) (int, error)) error {
	// Buffered: go-systemd delivers results from its signal loop, which must not block on us
	// once we have stopped waiting.
	result := make(chan string, 1)
	if _, err := enqueue(ctx, b.unit, "replace", result); err != nil {
		return err
	}
	tick := time.NewTicker(jobWatch)
	defer tick.Stop()
	for {
		select {
		case r := <-result:
			if r != "done" {
				return fmt.Errorf("job %s", r) // failed, timeout, canceled, dependency, skipped
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if !b.conn.Connected() {
				return errJobUnwatched
			}
		}
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) int {
	switch n := v.(type) {
	case uint32:
		return int(n)
	case int32:
		return int(n)
	case uint64:
		return int(n) //nolint:gosec // read for MainPID and NRestarts, which are uint32 on the bus
	case int64:
		return int(n)
	case int:
		return n
	}
	return 0
}
