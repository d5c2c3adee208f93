package service

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/cfrollback/cfrollback/configs"
	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// The shipped units of the daily backup (configs/systemd).
const (
	ScheduleService = "cfrollback-backup.service"
	ScheduleTimer   = "cfrollback-backup.timer"
	// shippedBinary is the ExecStart path in configs/systemd; install points
	// it at the binary that runs the install.
	shippedBinary = "/usr/local/bin/cfrollback"
)

// TimerInstaller is what `backup schedule --install` does to the host: the one D-Bus
// client (DialTimerInstaller) for real, DryRunInstaller to print the same steps.
type TimerInstaller interface {
	WriteUnit(path string, content []byte) error
	Reload(ctx context.Context) error
	Enable(ctx context.Context, unit string) error
	Start(ctx context.Context, unit string) error
	// NextRun is when the timer elapses next; zero when unknown.
	NextRun(ctx context.Context, timer string) time.Time
	Close()
}

// RenderScheduleUnits reads the shipped units and points ExecStart at bin
// (and --config file when one is given).
func RenderScheduleUnits(bin, configFile string) (map[string][]byte, error) {
	cmdline := SystemdQuote(bin)
	if configFile != "" {
		cmdline += " --config " + SystemdQuote(configFile)
	}
	out := map[string][]byte{}
	for _, name := range []string{ScheduleService, ScheduleTimer} {
		b, err := fs.ReadFile(configs.Systemd, "systemd/"+name)
		if err != nil {
			return nil, fmt.Errorf("shipped unit %s: %w", name, err)
		}
		out[name] = []byte(strings.ReplaceAll(string(b), "ExecStart="+shippedBinary+" ", "ExecStart="+cmdline+" "))
	}
	return out, nil
}

// SystemdQuote makes s one word of an ExecStart line: % doubled (specifiers),
// and double quotes around anything with a space, quote or backslash.
func SystemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// systemdInstaller writes unit files durably and drives systemd over D-Bus.
type systemdInstaller struct{ conn *sddbus.Conn }

var _ TimerInstaller = (*systemdInstaller)(nil)

// DialTimerInstaller connects first, so that a host without systemd gets no unit files
// written. It is the same system-bus connection the systemd manager uses (dialBus).
func DialTimerInstaller(ctx context.Context) (TimerInstaller, error) {
	conn, err := dialBus(ctx)
	if err != nil {
		return nil, err
	}
	return &systemdInstaller{conn: conn}, nil
}

func (s *systemdInstaller) WriteUnit(path string, content []byte) error {
	return fsutil.Write(path, content, 0o644, fsutil.WriteOptions{})
}

func (s *systemdInstaller) Reload(ctx context.Context) error { return s.conn.ReloadContext(ctx) }

// Enable is 'systemctl enable' by unit name, so systemd resolves it in its
// own search path (and its own mount namespace).
func (s *systemdInstaller) Enable(ctx context.Context, unit string) error {
	_, _, err := s.conn.EnableUnitFilesContext(ctx, []string{unit}, false, true)
	if err != nil {
		return err
	}
	return s.conn.ReloadContext(ctx)
}

func (s *systemdInstaller) Start(ctx context.Context, unit string) error {
	done := make(chan string, 1)
	if _, err := s.conn.StartUnitContext(ctx, unit, "replace", done); err != nil {
		return err
	}
	select {
	case r := <-done:
		if r != "done" {
			return fmt.Errorf("start job result %q", r)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *systemdInstaller) NextRun(ctx context.Context, timer string) time.Time {
	p, err := s.conn.GetUnitTypePropertyContext(ctx, timer, "Timer", "NextElapseUSecRealtime")
	if err != nil {
		return time.Time{}
	}
	us, ok := p.Value.Value().(uint64)
	if !ok || us == 0 || us == ^uint64(0) {
		return time.Time{}
	}
	return time.UnixMicro(int64(us)) //nolint:gosec // a systemd usec timestamp: far below 2^63 (the year 294247)
}

func (s *systemdInstaller) Close() { s.conn.Close() }

// DryRunInstaller changes nothing; the command prints what it would do.
type DryRunInstaller struct{}

var _ TimerInstaller = DryRunInstaller{}

// WriteUnit writes nothing.
func (DryRunInstaller) WriteUnit(string, []byte) error { return nil }

// Reload reloads nothing.
func (DryRunInstaller) Reload(context.Context) error { return nil }

// Enable enables nothing.
func (DryRunInstaller) Enable(context.Context, string) error { return nil }

// Start starts nothing.
func (DryRunInstaller) Start(context.Context, string) error { return nil }

// NextRun is unknown (zero).
func (DryRunInstaller) NextRun(context.Context, string) (t time.Time) { return t }

// Close closes nothing.
func (DryRunInstaller) Close() {}
