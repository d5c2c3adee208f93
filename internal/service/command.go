package service

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// commandManager runs the operator's own shell commands (/bin/sh -c, working directory /).
// The status command is the source of truth: exit 0 means up, any other exit means down.
type commandManager struct {
	start, stop, status string
	run                 runner
	stopTimeout, startTimeout,
	interval time.Duration // the longest wait between status checks
}

// commandSteadyPoll is how long a stop or start checks the status command every 10 ms before
// the waits grow: the operator's service usually changes state within that time, and a wait
// that has grown to 160 ms when it does is downtime (a status command is one /bin/sh, a few
// ms). A slower service is checked less often after it.
const commandSteadyPoll = time.Second

var _ Manager = (*commandManager)(nil)

func newCommand(cfg Config, d deps) (*commandManager, error) {
	var missing []string
	for _, c := range []struct{ setting, value string }{
		{"service.start_command", cfg.StartCommand},
		{"service.stop_command", cfg.StopCommand},
		{"service.status_command", cfg.StatusCommand},
	} {
		if strings.TrimSpace(c.value) == "" {
			missing = append(missing, c.setting)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("service.manager is %q but %s not set; set service.start_command, "+
			"service.stop_command and service.status_command (which exits 0 when the service is up)",
			KindCommand, strings.Join(missing, ", "))
	}
	return &commandManager{start: cfg.StartCommand, stop: cfg.StopCommand, status: cfg.StatusCommand,
		run: d.run, stopTimeout: cfg.StopTimeout, startTimeout: cfg.StartTimeout,
		interval: 200 * time.Millisecond}, nil
}

func (m *commandManager) Name() string { return "service (start/stop/status commands)" }
func (m *commandManager) Kind() string { return KindCommand }

func (m *commandManager) sh(ctx context.Context, script string) ([]byte, error) {
	return m.run.Run(ctx, nil, "/bin/sh", "-c", script)
}

// active runs the status command.
func (m *commandManager) active(ctx context.Context) (bool, error) {
	out, err := m.sh(ctx, m.status)
	if err == nil {
		return true, nil
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Exited() && ctx.Err() == nil {
		return false, nil
	}
	return false, fmt.Errorf("status command: %w", withOutput(err, out))
}

// look runs the status command and says what it found, stamped with when it answered.
func (m *commandManager) look(ctx context.Context) (Seen, error) {
	up, err := m.active(ctx)
	at := time.Now()
	st := Status{Manager: KindCommand, Exists: true, Active: up, State: "inactive"}
	if up {
		st.State = "active"
	}
	return Seen{Status: st, At: at}, err
}

func (m *commandManager) Status(ctx context.Context) (Status, error) {
	seen, err := m.look(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("status %s: %w", m.Name(), err)
	}
	return seen.Status, nil
}

var _ Informed = (*commandManager)(nil)

func (m *commandManager) Stop(ctx context.Context) error {
	_, err := m.StopInformed(ctx, Seen{})
	return err
}

// StopInformed: a fresh seen that says up stands for the status command before the stop
// command. The service may have died since: a stop command that fails then is a stop that
// succeeded once the status command says down, as it always was.
func (m *commandManager) StopInformed(ctx context.Context, seen Seen) (Seen, error) {
	begin := time.Now()
	ctx, cancel := withTimeout(ctx, m.stopTimeout)
	defer cancel()
	if !seen.says(KindCommand, "", true) {
		now, err := m.look(ctx)
		if err != nil {
			return Seen{}, fmt.Errorf("stop %s: %w", m.Name(), m.timeout(ctx, begin, err))
		}
		if !now.Status.Active {
			return now, nil
		}
	}
	if out, err := m.sh(ctx, m.stop); err != nil {
		if ctx.Err() != nil {
			return Seen{}, fmt.Errorf("stop %s: stop command still running after %s: %w", m.Name(), since(begin), ctx.Err())
		}
		// Down is what was asked for: a stop command that fails because the service died
		// meanwhile (kill of a stale pid) has not failed the stop.
		if now, serr := m.look(ctx); serr == nil && !now.Status.Active {
			return now, nil
		}
		return Seen{}, fmt.Errorf("stop %s: stop command: %w", m.Name(), withOutput(err, out))
	}
	var last Seen
	err := pollWith(ctx, m.schedule(), func() (bool, error) {
		var err error
		last, err = m.look(ctx)
		return !last.Status.Active, err
	})
	if err != nil && ctx.Err() != nil {
		return Seen{}, fmt.Errorf("stop %s: status command still reports it up after %s: %w", m.Name(), since(begin), err)
	}
	if err != nil {
		return Seen{}, fmt.Errorf("stop %s: %w", m.Name(), err)
	}
	return last, nil
}

func (m *commandManager) Start(ctx context.Context) error {
	return m.StartInformed(ctx, Seen{})
}

// StartInformed: a fresh seen that says down stands for the status command before the start
// command.
func (m *commandManager) StartInformed(ctx context.Context, seen Seen) error {
	begin := time.Now()
	ctx, cancel := withTimeout(ctx, m.startTimeout)
	defer cancel()
	if !seen.says(KindCommand, "", false) {
		if up, err := m.active(ctx); err != nil {
			return fmt.Errorf("start %s: %w", m.Name(), m.timeout(ctx, begin, err))
		} else if up {
			return nil // running the start command again could start a second copy
		}
	}
	if out, err := m.sh(ctx, m.start); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("start %s: start command still running after %s: %w", m.Name(), since(begin), ctx.Err())
		}
		return fmt.Errorf("start %s: start command: %w", m.Name(), withOutput(err, out))
	}
	err := pollWith(ctx, m.schedule(), func() (bool, error) { return m.active(ctx) })
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("start %s: status command still reports it down after %s: %w", m.Name(), since(begin), err)
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", m.Name(), err)
	}
	return nil
}

func (m *commandManager) schedule() pollSchedule {
	return pollSchedule{first: firstPoll, steadyFor: commandSteadyPoll, max: m.interval}
}

// timeout turns an error caused by ctx ending into one that says how long it took.
func (m *commandManager) timeout(ctx context.Context, begin time.Time, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("status command still running after %s: %w", since(begin), ctx.Err())
	}
	return err
}
