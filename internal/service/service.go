package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Manager kinds, as in Config.Manager, Manager.Kind and Status.Manager.
const (
	KindAuto    = "auto"
	KindSystemd = "systemd"
	KindPM2     = "pm2"
	KindCommand = "command"
)

// Defaults New applies to zero Config fields (the Claude Flow profile).
const (
	DefaultUnit    = "claude-flow"
	DefaultPM2Name = "claude-flow-assistant"
	DefaultTimeout = 90 * time.Second // systemd's own DefaultTimeoutStopSec
)

// ErrNotFound means the service does not exist where the manager looked: auto-detection found
// neither the systemd unit nor the pm2 app, or Stop/Start was asked for a unit or app that the
// manager does not know.
var ErrNotFound = errors.New("service not found")

// Status is what the manager knows about the service right now.
type Status struct {
	Manager  string // KindSystemd, KindPM2 or KindCommand
	Name     string // unit or app name; "" for the command manager
	Exists   bool
	Active   bool   // running, as far as the manager knows (not a health check)
	State    string // systemd ActiveState; pm2 pm2_env.status; command "active"/"inactive"
	SubState string // systemd SubState; "" otherwise
	MainPID  int    // systemd: in systemd's PID namespace; 0 when not running
	Restarts int    // systemd NRestarts; pm2 restart_time (summed over instances); command 0
}

// Manager controls the one service cfrollback rolls back.
type Manager interface {
	Name() string // for messages, e.g. "systemd unit claude-flow.service"
	Kind() string // KindSystemd, KindPM2 or KindCommand
	Status(ctx context.Context) (Status, error)
	// Stop returns nil once the service is confirmed down; see the package doc.
	Stop(ctx context.Context) error
	// Start returns nil once the manager reports the service started; see the package doc.
	Start(ctx context.Context) error
}

// Config selects and configures the manager. The cli fills it from cfrollback's settings
// (service.manager, service.unit, service.pm2_name, ...).
type Config struct {
	Manager string // KindAuto (the default), KindSystemd, KindPM2 or KindCommand
	Unit    string // systemd unit; ".service" is appended when the name has no unit suffix
	PM2Name string
	PM2Home string // "" inherits PM2_HOME from the environment (pm2's default: ~/.pm2)
	PM2Bin  string // "" means "pm2" from PATH
	// Shell commands for KindCommand, run with /bin/sh -c in "/". StatusCommand exits 0 when
	// the service is up and non-zero when it is down.
	StartCommand, StopCommand, StatusCommand string
	StopTimeout, StartTimeout                time.Duration // 0 means DefaultTimeout
	// Bus, when set, is the one D-Bus connection the systemd manager uses for all its calls
	// (long-running callers: guard); nil means a connection per call. The caller closes it.
	Bus *Bus
}

// deps are the effects the managers need; New uses the real ones, tests swap in fakes.
type deps struct {
	run  runner                                         // pm2, systemctl and sh -c
	dial func(ctx context.Context) (systemdConn, error) // the system bus
	// journalctl reports whether 'journalctl' exists, to decide whether errors suggest it.
	// Asked only when an error is worded (a PATH search costs every run otherwise).
	journalctl func() bool
}

// New builds the manager cfg asks for. With Manager "auto" it does what the seed runbook's
// `systemctl stop claude-flow || pm2 stop claude-flow-assistant` does, but decides before
// anything is stopped: the systemd unit if systemd knows it (LoadState is not "not-found"),
// else the pm2 app if 'pm2 jlist' lists it, else an error wrapping ErrNotFound that says what
// was looked for and which setting to change.
func New(ctx context.Context, cfg Config) (Manager, error) {
	return newManager(ctx, cfg, realDeps())
}

func newManager(ctx context.Context, cfg Config, d deps) (Manager, error) {
	cfg = cfg.withDefaults()
	switch cfg.Manager {
	case KindSystemd:
		return newSystemd(cfg, d), nil
	case KindPM2:
		return newPM2(cfg, d), nil
	case KindCommand:
		return newCommand(cfg, d)
	case KindAuto:
		return detect(ctx, newSystemd(cfg, d), newPM2(cfg, d))
	default:
		return nil, fmt.Errorf("service.manager %q is not one of auto, systemd, pm2, command", cfg.Manager)
	}
}

func (cfg Config) withDefaults() Config {
	if cfg.Manager == "" {
		cfg.Manager = KindAuto
	}
	if cfg.Unit == "" {
		cfg.Unit = DefaultUnit
	}
	cfg.Unit = unitName(cfg.Unit)
	if cfg.PM2Name == "" {
		cfg.PM2Name = DefaultPM2Name
	}
	if cfg.PM2Bin == "" {
		cfg.PM2Bin = "pm2"
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultTimeout
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultTimeout
	}
	return cfg
}

// detector is implemented by the managers auto-detection can pick.
type detector interface {
	Manager
	// detect reports whether the service exists; when it does not, why says where it looked.
	detect(ctx context.Context) (found bool, why string, err error)
}

func detect(ctx context.Context, candidates ...detector) (Manager, error) {
	var looked []string
	for _, m := range candidates {
		found, why, err := m.detect(ctx)
		switch {
		case err != nil:
			looked = append(looked, fmt.Sprintf("%s (%v)", m.Name(), err))
		case found:
			return m, nil
		default:
			looked = append(looked, fmt.Sprintf("%s (%s)", m.Name(), why))
		}
	}
	return nil, fmt.Errorf("%w: looked for %s; set service.manager to systemd, pm2 or command, "+
		"or point service.unit / service.pm2_name at the service", ErrNotFound, strings.Join(looked, " and "))
}

// unitSuffixes are systemd's unit types; a name without one of them is a service.
var unitSuffixes = []string{".service", ".socket", ".target", ".device", ".mount", ".automount",
	".swap", ".timer", ".path", ".slice", ".scope"}

func unitName(name string) string {
	for _, s := range unitSuffixes {
		if strings.HasSuffix(name, s) {
			return name
		}
	}
	return name + ".service"
}

// withTimeout bounds ctx by d as well as by ctx's own deadline.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// firstPoll is the first wait of poll: services usually change state within tens of
// milliseconds, and every poll interval waited in vain is downtime.
const firstPoll = 10 * time.Millisecond

// pollSchedule says how long poll waits between checks: first, kept for steadyFor from the
// first check, then doubling up to max.
type pollSchedule struct {
	first, steadyFor, max time.Duration
}

// next is the wait after a check made elapsed after the first one, when the wait before
// it was prev (0 before the first wait).
func (s pollSchedule) next(prev, elapsed time.Duration) time.Duration {
	first := min(s.first, s.max)
	switch {
	case prev == 0, elapsed < s.steadyFor:
		return first
	default:
		return min(2*prev, s.max)
	}
}

// poll calls check until it reports done, fails, or ctx ends, waiting 10 ms after the first
// check and doubling up to interval. If check fails because ctx ended, the error is ctx's.
func poll(ctx context.Context, interval time.Duration, check func() (bool, error)) error {
	return pollWith(ctx, pollSchedule{first: firstPoll, max: interval}, check)
}

// pollWith is poll with its waits given by s.
func pollWith(ctx context.Context, s pollSchedule, check func() (bool, error)) error {
	begin := time.Now()
	var wait time.Duration
	for {
		done, err := check()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if done {
			return nil
		}
		wait = s.next(wait, time.Since(begin))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// since formats the time spent so far for timeout messages.
func since(start time.Time) string {
	return time.Since(start).Round(100 * time.Millisecond).String()
}
