package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type healthCheckResult struct {
	Healthy    bool           `json:"healthy"`
	Level      health.Level   `json:"level"`
	Strict     bool           `json:"strict"`
	Service    string         `json:"service"`
	Warnings   int            `json:"warnings"`
	Failures   int            `json:"failures"`
	Checks     []health.Check `json:"checks"`
	DurationMS int64          `json:"duration_ms"`
}

type healthCheckOptions struct {
	IO      *ui.IO
	JSON    bool
	Config  settings.Config
	Level   health.Level
	Strict  bool
	Service service.Manager
	// Databases checks the app's databases at --comprehensive
	// (healthDatabases); nil reports one SKIP row.
	Databases health.DatabaseChecker
}

func newHealthCheckCmd(f *Factory) *cobra.Command {
	var criticalOnly, quick, comprehensive, strict bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health-check",
		Short: "Is the service healthy? Three levels, a PASS/WARN/FAIL/SKIP table",
		Long: `Check the service at one of three levels; each includes the one before:

  --critical-only  (default) the service manager reports it active, and health.url
                   (when set) answers 2xx within --timeout: what the rollback waits for
  --quick          + free space on the install and backup filesystems (WARN under 10%,
                   FAIL under 2% or 1 GiB), the app config (config.json, else
                   claude-flow.config.json) is valid JSON (absent: WARN), and the newest
                   backup's age (WARN over 26h, FAIL over 7 days or none)
  --comprehensive  + restarts (WARN when the manager restarted it, FAIL in a crash loop),
                   the main process's RSS and CPU (SKIP when its pid is not visible from
                   here), databases (SKIP until the database commands land)

Each row says PASS, WARN, FAIL or SKIP, how long it took and why. SKIP is "not
checked" and never fails the run. See docs/HEALTH.md for every threshold.` +
			exitStatusHelp("0  healthy: no FAIL (with --strict: no WARN either)",
				"1  not healthy (each failed row says why), or the service was not found (the message says which settings point at it)",
				"2  bad usage or invalid settings"),
		Example: `  cfrollback health-check
  cfrollback health-check --quick
  cfrollback health-check --comprehensive --strict --json
  until cfrollback health-check --critical-only >/dev/null; do sleep 2; done`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := health.Critical
			set := 0
			for _, l := range []struct {
				flag  string
				level health.Level
			}{{"critical-only", health.Critical}, {"quick", health.Quick}, {"comprehensive", health.Comprehensive}} {
				if cmd.Flags().Changed(l.flag) {
					set++
					level = l.level
				}
			}
			if set > 1 {
				return usageErrorf("give one of --critical-only, --quick, --comprehensive")
			}
			if (quick && level != health.Quick) || (comprehensive && level != health.Comprehensive) || !criticalOnly && level == health.Critical {
				return usageErrorf("give one of --critical-only, --quick, --comprehensive")
			}
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			if timeout > 0 {
				cfg.Health.Timeout = timeout
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), cfg.Health.Timeout+cfg.Service.StopTimeout)
			defer cancel()
			m, err := service.New(ctx, runbook.ServiceConfig(cfg))
			if err != nil {
				// Read-only: nothing was or would be changed, the service is just not there
				// (or not where the settings point). Not healthy: exit 1, as for a FAIL.
				return withHint(fmt.Errorf("health-check: %w", err),
					"set service.manager (auto, systemd, pm2, command) and service.unit or service.pm2_name, "+
						"in the settings file or as CFROLLBACK_SERVICE_MANAGER / _UNIT / _PM2_NAME; 'cfrollback settings' shows them")
			}
			return runHealthCheck(ctx, &healthCheckOptions{IO: f.IO, JSON: f.JSON, Config: cfg, Level: level, Strict: strict, Service: m,
				Databases: healthDatabases{cfg: cfg}})
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&criticalOnly, "critical-only", true, "only the critical checks (service active, health URL)")
	fl.BoolVar(&quick, "quick", false, "critical checks + disk space, app config, newest backup age")
	fl.BoolVar(&comprehensive, "comprehensive", false, "quick checks + restarts, process RSS and CPU, databases")
	fl.BoolVar(&strict, "strict", false, "a WARN fails the check too (exit 1)")
	durationVar(fl, &timeout, "timeout", 0, "timeout of the health URL request (default health.timeout); the whole run gets it plus service.stop_timeout")
	return cmd
}

func runHealthCheck(ctx context.Context, opts *healthCheckOptions) error {
	cfg := opts.Config
	m := opts.Service
	t0 := time.Now()
	rep := health.RunLevel(ctx, health.LevelOptions{
		Level:         opts.Level,
		Critical:      runbook.CriticalProbes(m, cfg.Health, nil),
		InstallDir:    cfg.InstallDir,
		BackupDir:     cfg.Backup.Dir,
		BackupPattern: cfg.Backup.Pattern,
		Status:        m.Status,
		PIDVisible: func(pid int) (bool, string) {
			if m.Kind() == service.KindSystemd {
				return health.PIDVisible(pid, serviceUnit(cfg.Service.Unit))
			}
			return health.PIDVisible(pid, "")
		},
		Databases: opts.Databases,
	})
	w, fails := rep.Counts()
	res := healthCheckResult{Healthy: rep.Healthy(opts.Strict), Level: opts.Level, Strict: opts.Strict, Service: m.Name(),
		Warnings: w, Failures: fails, Checks: rep.Checks, DurationMS: time.Since(t0).Milliseconds()}
	if err := printHealth(opts.IO, opts.JSON, res); err != nil {
		return err
	}
	if !res.Healthy {
		return exitError{ExitFailed}
	}
	return nil
}

// serviceUnit is the unit's full name, as in its cgroup path.
func serviceUnit(unit string) string {
	if unit == "" {
		unit = service.DefaultUnit
	}
	for i := len(unit) - 1; i >= 0; i-- {
		if unit[i] == '.' {
			return unit
		}
	}
	return unit + ".service"
}

func paintVerdict(p ui.Palette, v health.Verdict) string {
	switch v {
	case health.Pass:
		return p.Green(string(v))
	case health.Warn:
		return p.Yellow(string(v))
	case health.Fail:
		return p.Red(string(v))
	}
	return p.Faint(string(v))
}

func printHealth(io *ui.IO, asJSON bool, res healthCheckResult) error {
	if asJSON {
		return ui.JSON(io.Out, res)
	}
	p := io.OutPalette()
	// One row per check whatever its detail holds: a two-line detail must not push the
	// verdicts below it onto other checks' rows.
	tb := ui.NewTable()
	for _, c := range res.Checks {
		tb.Row(paintVerdict(p, c.Verdict), c.Name, ui.Duration(c.Duration), c.Detail)
	}
	if err := tb.Render(io.Out); err != nil {
		return err
	}
	summary := fmt.Sprintf("%s is healthy", res.Service)
	if !res.Healthy {
		summary = fmt.Sprintf("%s is NOT healthy", res.Service)
	}
	switch {
	case res.Failures > 0 && res.Warnings > 0:
		summary += fmt.Sprintf(" (%d failed, %s)", res.Failures, plural(res.Warnings, "warning"))
	case res.Failures > 0:
		summary += fmt.Sprintf(" (%d failed)", res.Failures)
	case res.Warnings > 0 && res.Strict:
		summary += fmt.Sprintf(" (%s, --strict)", plural(res.Warnings, "warning"))
	case res.Warnings > 0:
		summary += fmt.Sprintf(" (%s)", plural(res.Warnings, "warning"))
	}
	if res.Healthy {
		fmt.Fprintln(io.Out, p.Green(summary))
	} else {
		fmt.Fprintln(io.Out, p.Red(summary))
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
