package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

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
	Installer service.TimerInstaller
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
		Long: `Write ` + service.ScheduleService + ` and ` + service.ScheduleTimer + ` (shipped in
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
  systemctl list-timers ` + service.ScheduleTimer,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !install {
				return usageErrorf("say --install (add --dry-run to see the units first)")
			}
			if _, err := f.loadConfig(); err != nil {
				return err
			}
			opts.IO, opts.JSON = f.IO, f.JSON
			if u := f.Settings.Used(); u != "" && u != settings.DefaultFile {
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
	units, err := service.RenderScheduleUnits(opts.Binary, opts.ConfigFile)
	if err != nil {
		return err
	}
	inst := opts.Installer
	if inst == nil {
		if opts.DryRun {
			inst = service.DryRunInstaller{}
		} else if inst, err = service.DialTimerInstaller(ctx); err != nil {
			return fmt.Errorf("backup schedule: connect to systemd over D-Bus: %w; nothing was written. On a host without systemd, run 'cfrollback backup create --label scheduled && cfrollback backup prune' from cron at 02:00", err)
		}
	}
	defer inst.Close()

	res := scheduleResult{DryRun: opts.DryRun, UnitDir: opts.UnitDir, Timer: service.ScheduleTimer, Units: []scheduleUnitJSON{}}
	for _, name := range []string{service.ScheduleService, service.ScheduleTimer} {
		p := filepath.Join(opts.UnitDir, name)
		if err := inst.WriteUnit(p, units[name]); err != nil {
			return fmt.Errorf("backup schedule: write %s: %w; check --unit-dir and that you are root", p, err)
		}
		res.Units = append(res.Units, scheduleUnitJSON{Name: name, Path: p, Content: string(units[name])})
	}
	if err := inst.Reload(ctx); err != nil {
		return fmt.Errorf("backup schedule: systemd daemon-reload: %w; the unit files are in %s", err, opts.UnitDir)
	}
	if err := inst.Enable(ctx, service.ScheduleTimer); err != nil {
		return fmt.Errorf("backup schedule: enable %s: %w; is %s in systemd's unit search path?", service.ScheduleTimer, err, opts.UnitDir)
	}
	res.Enabled = !opts.DryRun
	if err := inst.Start(ctx, service.ScheduleTimer); err != nil {
		return fmt.Errorf("backup schedule: start %s: %w; 'systemctl status %s' says why", service.ScheduleTimer, err, service.ScheduleTimer)
	}
	res.Started = !opts.DryRun
	if next := inst.NextRun(ctx, service.ScheduleTimer); !next.IsZero() {
		res.NextRun = &next
	}

	if opts.JSON {
		return ui.JSON(opts.IO.Out, res)
	}
	if opts.DryRun {
		for _, u := range res.Units {
			fmt.Fprintf(opts.IO.Out, "# %s\n%s\n", u.Path, u.Content)
		}
		fmt.Fprintf(opts.IO.Out, "would run: systemctl daemon-reload && systemctl enable --now %s\n", service.ScheduleTimer)
		return nil
	}
	p := opts.IO.OutPalette()
	for _, u := range res.Units {
		fmt.Fprintf(opts.IO.Out, "wrote %s\n", u.Path)
	}
	fmt.Fprintf(opts.IO.Out, "%s %s enabled and started: daily backup at 02:00, then prune\n", p.Green("scheduled:"), service.ScheduleTimer)
	if res.NextRun != nil {
		fmt.Fprintf(opts.IO.Out, "next run: %s (%s)\n", res.NextRun.Local().Format("2006-01-02 15:04"), ui.Duration(time.Until(*res.NextRun).Round(time.Minute)))
	}
	fmt.Fprintf(opts.IO.Out, "check it with 'systemctl list-timers %s'; the runs log to 'journalctl -u %s'\n", service.ScheduleTimer, service.ScheduleService)
	return nil
}
