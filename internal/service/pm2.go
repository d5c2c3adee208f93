package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pm2Manager manages a pm2 app through the pm2 CLI. The app must already be in pm2's list
// (pm2 start ecosystem.config.js, pm2 save/resurrect): Start starts a registered app, it
// never registers one.
type pm2Manager struct {
	app, home, bin string
	run            runner
	// daemonUp reports whether a pm2 daemon runs for the PM2_HOME in use (and which home that
	// is, for messages).
	daemonUp func() (up bool, home string)
	stopTimeout, startTimeout,
	interval, // between 'pm2 jlist' checks
	listTimeout time.Duration // bounds one 'pm2 jlist': a wedged pm2 daemon never answers
}

var _ Manager = (*pm2Manager)(nil)

func newPM2(cfg Config, d deps) *pm2Manager {
	m := &pm2Manager{app: cfg.PM2Name, home: cfg.PM2Home, bin: cfg.PM2Bin, run: d.run,
		stopTimeout: cfg.StopTimeout, startTimeout: cfg.StartTimeout,
		interval: 250 * time.Millisecond, listTimeout: 30 * time.Second}
	m.daemonUp = func() (bool, string) {
		home := resolvePM2Home(m.home)
		return pm2DaemonRunning(home), home
	}
	return m
}

func (m *pm2Manager) Name() string { return "pm2 app " + m.app }
func (m *pm2Manager) Kind() string { return KindPM2 }

// pm2Process is one entry of 'pm2 jlist'; an app in cluster mode has several.
type pm2Process struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	Env  struct {
		Status      string `json:"status"` // online, stopping, stopped, launching, errored, one-launch-status
		RestartTime int    `json:"restart_time"`
	} `json:"pm2_env"`
}

func (m *pm2Manager) env() []string {
	if m.home == "" {
		return nil
	}
	return []string{"PM2_HOME=" + m.home}
}

func (m *pm2Manager) pm2(ctx context.Context, args ...string) ([]byte, error) {
	return m.run.Run(ctx, m.env(), m.bin, args...)
}

// instances returns the app's entries in 'pm2 jlist'; when there are none, why says so.
// Without a running daemon it does not run pm2 at all: 'pm2 jlist' would spawn a new daemon
// (as root, at 3 am) whose list is empty anyway.
func (m *pm2Manager) instances(ctx context.Context) (procs []pm2Process, why string, err error) {
	if up, home := m.daemonUp(); !up {
		return nil, fmt.Sprintf("no pm2 daemon is running for PM2_HOME=%s; if pm2 runs as another user, set service.pm2_home", home), nil
	}
	listCtx, cancel := context.WithTimeout(ctx, m.listTimeout)
	defer cancel()
	out, err := m.pm2(listCtx, "jlist")
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return nil, "", fmt.Errorf("pm2 jlist: %w; set service.pm2_bin to pm2's full path", err)
	case err != nil && ctx.Err() == nil && listCtx.Err() != nil:
		return nil, "", fmt.Errorf("pm2 jlist did not answer within %s; the pm2 daemon may be hung (try 'pm2 ping'): %w",
			m.listTimeout, listCtx.Err())
	case err != nil:
		return nil, "", fmt.Errorf("pm2 jlist: %w", withOutput(err, out))
	}
	all, err := parseJlist(out)
	if err != nil {
		return nil, "", err
	}
	for _, p := range all {
		if p.Name == m.app {
			procs = append(procs, p)
		}
	}
	if len(procs) == 0 {
		why = "not in 'pm2 jlist'"
	}
	return procs, why, nil
}

func (m *pm2Manager) Status(ctx context.Context) (Status, error) {
	procs, _, err := m.instances(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("status %s: %w", m.Name(), err)
	}
	return pm2Status(m.app, procs), nil
}

func (m *pm2Manager) detect(ctx context.Context) (bool, string, error) {
	procs, why, err := m.instances(ctx)
	return len(procs) > 0, why, err
}

// pm2Status sums up an app's instances: it is Active only if all are online, and its State
// is the first instance's status that is not "online".
func pm2Status(app string, procs []pm2Process) Status {
	st := Status{Manager: KindPM2, Name: app, Exists: len(procs) > 0}
	if len(procs) == 0 {
		return st
	}
	st.MainPID = procs[0].PID
	for _, p := range procs {
		st.Restarts += p.Env.RestartTime
		if st.State == "" && p.Env.Status != "online" {
			st.State = p.Env.Status
		}
	}
	if st.State == "" {
		st.State = "online"
	}
	st.Active = st.State == "online"
	return st
}

func allStopped(procs []pm2Process) bool {
	for _, p := range procs {
		if p.Env.Status != "stopped" || p.PID != 0 {
			return false
		}
	}
	return true
}

var _ Informed = (*pm2Manager)(nil)

func (m *pm2Manager) Stop(ctx context.Context) error {
	_, err := m.StopInformed(ctx, Seen{})
	return err
}

// daemonGone is a fresh seen's one check: without a daemon, the 'pm2 stop' or 'pm2 start' it
// stands in front of would spawn one (as root, at 3 am), so the full check runs and says so.
func (m *pm2Manager) daemonGone() bool {
	up, _ := m.daemonUp()
	return !up
}

// StopInformed: a fresh seen that says online stands for the 'pm2 jlist' before 'pm2 stop'
// (pm2 stops an app that died meanwhile without complaint).
func (m *pm2Manager) StopInformed(ctx context.Context, seen Seen) (Seen, error) {
	begin := time.Now()
	ctx, cancel := withTimeout(ctx, m.stopTimeout)
	defer cancel()
	var procs []pm2Process
	if !seen.says(KindPM2, m.app, true) || m.daemonGone() {
		var why string
		var err error
		if procs, why, err = m.instances(ctx); err != nil {
			return Seen{}, fmt.Errorf("stop %s: %w", m.Name(), err)
		}
		at := time.Now()
		if len(procs) == 0 {
			return Seen{}, fmt.Errorf("stop %s: %w: %s", m.Name(), ErrNotFound, why)
		}
		if allStopped(procs) {
			return Seen{Status: pm2Status(m.app, procs), At: at}, nil
		}
	}
	if out, err := m.pm2(ctx, "stop", m.app); err != nil {
		if ctx.Err() != nil {
			return Seen{}, fmt.Errorf("stop %s: 'pm2 stop' still running after %s: %w", m.Name(), since(begin), ctx.Err())
		}
		return Seen{}, fmt.Errorf("stop %s: pm2 stop: %w", m.Name(), withOutput(err, out))
	}
	var at time.Time
	err := poll(ctx, m.interval, func() (bool, error) {
		var err error
		procs, _, err = m.instances(ctx)
		at = time.Now()
		return allStopped(procs), err
	})
	if err != nil && ctx.Err() != nil {
		st := pm2Status(m.app, procs)
		return Seen{}, fmt.Errorf("stop %s: still %s with pid %d after %s: %w", m.Name(), st.State, st.MainPID, since(begin), err)
	}
	if err != nil {
		return Seen{}, fmt.Errorf("stop %s: %w", m.Name(), err)
	}
	return Seen{Status: pm2Status(m.app, procs), At: at}, nil
}

func (m *pm2Manager) Start(ctx context.Context) error {
	return m.StartInformed(ctx, Seen{})
}

// StartInformed: a fresh seen that says not online stands for the 'pm2 jlist' before
// 'pm2 start'.
func (m *pm2Manager) StartInformed(ctx context.Context, seen Seen) error {
	begin := time.Now()
	ctx, cancel := withTimeout(ctx, m.startTimeout)
	defer cancel()
	if !seen.says(KindPM2, m.app, false) || m.daemonGone() {
		procs, why, err := m.instances(ctx)
		if err != nil {
			return fmt.Errorf("start %s: %w", m.Name(), err)
		}
		if len(procs) == 0 {
			return fmt.Errorf("start %s: %w: %s", m.Name(), ErrNotFound, why)
		}
		if pm2Status(m.app, procs).Active {
			return nil // 'pm2 start' on an online app would restart it
		}
	}
	if out, err := m.pm2(ctx, "start", m.app); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("start %s: 'pm2 start' still running after %s: %w", m.Name(), since(begin), ctx.Err())
		}
		return fmt.Errorf("start %s: pm2 start: %w", m.Name(), withOutput(err, out))
	}
	var st Status
	err := poll(ctx, m.interval, func() (bool, error) {
		procs, _, err := m.instances(ctx)
		if err != nil {
			return false, err
		}
		st = pm2Status(m.app, procs)
		switch {
		case !st.Exists:
			return false, errors.New("the app left pm2's list while starting")
		case st.State == "errored", st.State == "stopped":
			// errored: pm2 gave up restarting it; stopped: it exited and autorestart is off.
			return false, fmt.Errorf("app is %s after 'pm2 start' (%d restarts); see '%s'", st.State, st.Restarts, m.logsCommand())
		}
		return st.Active, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("start %s: still %s after %s: %w", m.Name(), st.State, since(begin), err)
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", m.Name(), err)
	}
	return nil
}

func (m *pm2Manager) logsCommand() string {
	c := "pm2 logs " + m.app + " --lines 50"
	if m.home != "" {
		c = "PM2_HOME=" + m.home + " " + c
	}
	return c
}

// parseJlist finds the JSON array in 'pm2 jlist' output. pm2 may print other lines first
// (its banner and "Spawning PM2 daemon" when it starts a daemon, update warnings), so the
// list is the first line starting with '[' that decodes as one.
func parseJlist(out []byte) ([]pm2Process, error) {
	for line := out; len(line) > 0; {
		if line[0] == '[' {
			var procs []pm2Process
			if json.NewDecoder(bytes.NewReader(line)).Decode(&procs) == nil {
				return procs, nil
			}
		}
		i := bytes.IndexByte(line, '\n')
		if i < 0 {
			break
		}
		line = line[i+1:]
	}
	return nil, fmt.Errorf("pm2 jlist printed no JSON process list: %q", outputTail(out))
}

// resolvePM2Home is the PM2_HOME pm2 itself would use: the configured one, else $PM2_HOME,
// else ~/.pm2. "" if it cannot tell.
func resolvePM2Home(configured string) string {
	if configured != "" {
		return configured
	}
	if h := os.Getenv("PM2_HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".pm2")
	}
	return ""
}

// pm2DaemonRunning reports whether home's pm2.pid names a live process. With no home to look
// in it says yes and leaves the answer to pm2.
func pm2DaemonRunning(home string) bool {
	if home == "" {
		return true
	}
	b, err := os.ReadFile(filepath.Join(home, "pm2.pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
