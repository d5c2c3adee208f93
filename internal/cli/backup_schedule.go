package cli

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/configs"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/ui"
)

const (
	scheduleService = "cfrollback-backup.service"
	scheduleTimer   = "cfrollback-backup.timer"
	// shippedBinary is the ExecStart path in configs/systemd; install points
	// it at the binary that runs the install.
	shippedBinary = "/usr/local/bin/cfrollback"
)

// unitInstaller is what `backup schedule --install` does to the host:
// systemdInstaller for real, dryRunInstaller to print the same steps.
type unitInstaller interface {
	WriteUnit(path string, content []byte) error
	Reload(ctx context.Context) error
	Enable(ctx context.Context, unit string) error
	Start(ctx context.Context, unit string) error
	// NextRun is when the timer elapses next; zero when unknown.
	NextRun(ctx context.Context, timer string) time.Time
	Close()
}

type backupScheduleOptions struct {
	IO      *ui.IO
	JSON    bool
	DryRun  bool
	UnitDir string
	// Binary and ConfigFile go into ExecStart; ConfigFile "" means the
	// default settings file.
	Binary     string
	ConfigFile string
	// Installer does the work; nil dials systemd over D-Bus (or prints,
	// with DryRun).
	Installer unitInstaller
}

type scheduleUnitJSON struct {
	Name    string `json:"name"`
	Path    string `json:"path"`
	Content string `json:"content"`
}

type scheduleResult struct {
	DryRun  bool               `json:"dry_run"`
	UnitDir string             `json:"unit_dir"`
	Units   []scheduleUnitJSON `json:"units"`
	Timer   string             `json:"timer"`
	Enabled bool               `json:"enabled"`
	Started bool               `json:"started"`
	NextRun *time.Time         `json:"next_run,omitempty"`
}

func newBackupScheduleCmd(f *Factory) *cobra.Command {
	opts := &backupScheduleOptions{}
	var install bool
	cmd := &cobra.Command{
		Use:   "schedule --install [--dry-run] [--unit-dir DIR]",
		Short: "Install the systemd timer that backs up daily at 02:00 and prunes",
		Long: `Write ` + scheduleService + ` and ` + scheduleTimer + ` (shipped in
configs/systemd) into --unit-dir, then, over D-Bus, reload systemd, enable the
timer and start it (systemctl daemon-reload; systemctl enable --now). The timer
runs the service daily at 02:00 (the seed's cron time, plus up to 5 minutes
of random delay; a run missed while the host was down happens at boot); the
service runs 'cfrollback backup create --label scheduled' and then
'cfrollback backup prune' with this binary and settings file. Nothing is
started now other than the timer. Running it again rewrites the units.

--dry-run prints the units and the systemd steps and changes nothing.` +
			exitStatusHelp("0  the units were written and the timer is enabled and waiting",
				"1  failed (a unit file could not be written, or systemd refused)",
				"2  bad usage"),
		Example: `  cfrollback backup schedule --install --dry-run
  sudo cfrollback backup schedule --install
  systemctl list-timers ` + scheduleTimer,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !install {
				return usageErrorf("say --install (add --dry-run to see the units first)")
			}
			if _, err := f.loadConfig(); err != nil {
				return err
			}
			opts.IO, opts.JSON = f.IO, f.JSON
			if u := f.Settings.used; u != "" && u != DefaultConfigFile {
				abs, err := filepath.Abs(u)
				if err != nil {
					return err
				}
				opts.ConfigFile = abs
			}
			if opts.Binary == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find this binary's path for ExecStart: %w; give --binary", err)
				}
				if r, err := filepath.EvalSymlinks(exe); err == nil {
					exe = r
				}
				opts.Binary = exe
			}
			if !filepath.IsAbs(opts.Binary) {
				return usageErrorf("--binary %s: give an absolute path", opts.Binary)
			}
			return runBackupSchedule(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&install, "install", false, "write the units and enable the timer")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the units and the steps; change nothing")
	fl.StringVar(&opts.UnitDir, "unit-dir", "/etc/systemd/system", "where the unit files go (must be in systemd's unit search path)")
	fl.StringVar(&opts.Binary, "binary", "", "cfrollback binary the service runs (default: this one)")
	return cmd
}

func runBackupSchedule(ctx context.Context, opts *backupScheduleOptions) error {
	units, err := renderScheduleUnits(opts.Binary, opts.ConfigFile)
	if err != nil {
		return err
	}
	inst := opts.Installer
	if inst == nil {
		if opts.DryRun {
			inst = &dryRunInstaller{}
		} else if inst, err = dialSystemdInstaller(ctx); err != nil {
			return fmt.Errorf("backup schedule: connect to systemd over D-Bus: %w; nothing was written. On a host without systemd, run 'cfrollback backup create --label scheduled && cfrollback backup prune' from cron at 02:00", err)
		}
	}
	defer inst.Close()

	res := scheduleResult{DryRun: opts.DryRun, UnitDir: opts.UnitDir, Timer: scheduleTimer, Units: []scheduleUnitJSON{}}
	for _, name := range []string{scheduleService, scheduleTimer} {
		p := filepath.Join(opts.UnitDir, name)
		if err := inst.WriteUnit(p, units[name]); err != nil {
			return fmt.Errorf("backup schedule: write %s: %w; check --unit-dir and that you are root", p, err)
		}
		res.Units = append(res.Units, scheduleUnitJSON{Name: name, Path: p, Content: string(units[name])})
	}
	if err := inst.Reload(ctx); err != nil {
		return fmt.Errorf("backup schedule: systemd daemon-reload: %w; the unit files are in %s", err, opts.UnitDir)
	}
	if err := inst.Enable(ctx, scheduleTimer); err != nil {
		return fmt.Errorf("backup schedule: enable %s: %w; is %s in systemd's unit search path?", scheduleTimer, err, opts.UnitDir)
	}
	res.Enabled = !opts.DryRun
	if err := inst.Start(ctx, scheduleTimer); err != nil {
		return fmt.Errorf("backup schedule: start %s: %w; 'systemctl status %s' says why", scheduleTimer, err, scheduleTimer)
	}
	res.Started = !opts.DryRun
	if next := inst.NextRun(ctx, scheduleTimer); !next.IsZero() {
		res.NextRun = &next
	}

	if opts.JSON {
		return ui.JSON(opts.IO.Out, res)
	}
	if opts.DryRun {
		for _, u := range res.Units {
			fmt.Fprintf(opts.IO.Out, "# %s\n%s\n", u.Path, u.Content)
		}
		fmt.Fprintf(opts.IO.Out, "would run: systemctl daemon-reload && systemctl enable --now %s\n", scheduleTimer)
		return nil
	}
	p := opts.IO.OutPalette()
	for _, u := range res.Units {
		fmt.Fprintf(opts.IO.Out, "wrote %s\n", u.Path)
	}
	fmt.Fprintf(opts.IO.Out, "%s %s enabled and started: daily backup at 02:00, then prune\n", p.Green("scheduled:"), scheduleTimer)
	if res.NextRun != nil {
		fmt.Fprintf(opts.IO.Out, "next run: %s (%s)\n", res.NextRun.Local().Format("2006-01-02 15:04"), ui.Duration(time.Until(*res.NextRun).Round(time.Minute)))
	}
	fmt.Fprintf(opts.IO.Out, "check it with 'systemctl list-timers %s'; the runs log to 'journalctl -u %s'\n", scheduleTimer, scheduleService)
	return nil
}

// renderScheduleUnits reads the shipped units and points ExecStart at bin
// (and --config file when one is given).
func renderScheduleUnits(bin, configFile string) (map[string][]byte, error) {
	cmdline := systemdQuote(bin)
	if configFile != "" {
		cmdline += " --config " + systemdQuote(configFile)
	}
	out := map[string][]byte{}
	for _, name := range []string{scheduleService, scheduleTimer} {
		b, err := fs.ReadFile(configs.Systemd, "systemd/"+name)
		if err != nil {
			return nil, fmt.Errorf("shipped unit %s: %w", name, err)
		}
		out[name] = []byte(strings.ReplaceAll(string(b), "ExecStart="+shippedBinary+" ", "ExecStart="+cmdline+" "))
	}
	return out, nil
}

// systemdQuote makes s one word of an ExecStart line: % doubled (specifiers),
// and double quotes around anything with a space, quote or backslash.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// systemdInstaller writes unit files durably and drives systemd over D-Bus.
type systemdInstaller struct{ conn *sddbus.Conn }

var _ unitInstaller = (*systemdInstaller)(nil)

// dialSystemdInstaller connects first, so that a host without systemd gets
// no unit files written.
func dialSystemdInstaller(ctx context.Context) (*systemdInstaller, error) {
	conn, err := sddbus.NewSystemConnectionContext(ctx)
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

// dryRunInstaller changes nothing; runBackupSchedule prints what it would do.
type dryRunInstaller struct{}

var _ unitInstaller = (*dryRunInstaller)(nil)

func (dryRunInstaller) WriteUnit(string, []byte) error                { return nil }
func (dryRunInstaller) Reload(context.Context) error                  { return nil }
func (dryRunInstaller) Enable(context.Context, string) error          { return nil }
func (dryRunInstaller) Start(context.Context, string) error           { return nil }
func (dryRunInstaller) NextRun(context.Context, string) (t time.Time) { return t }
func (dryRunInstaller) Close()                                        {}
