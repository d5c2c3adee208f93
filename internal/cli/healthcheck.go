package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type healthCheckResult struct {
	Healthy    bool            `json:"healthy"`
	Level      string          `json:"level"`
	Service    string          `json:"service"`
	Checks     []health.Result `json:"checks"`
	DurationMS int64           `json:"duration_ms"`
}

func newHealthCheckCmd(f *Factory) *cobra.Command {
	var criticalOnly bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health-check",
		Short: "Is the service up? (service active + health URL answers 2xx)",
		Long: `Check the service the way the rollback does after a start: the service manager
reports it active, and health.url (when set) answers 2xx within health.timeout.
--critical-only is the level available now; fuller levels come later.` +
			exitStatusHelp("0  healthy", "1  not healthy (each failed check says why)", "2  bad usage or invalid settings"),
		Example: `  cfrollback health-check --critical-only
  cfrollback health-check --critical-only --json
  until cfrollback health-check --critical-only >/dev/null; do sleep 2; done`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			if timeout > 0 {
				cfg.Health.Timeout = timeout
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), cfg.Health.Timeout+cfg.Service.StopTimeout)
			defer cancel()
			m, err := newServiceManager(ctx, cfg)
			if err != nil {
				return err
			}
			t0 := time.Now()
			ok, results := health.All(ctx, runbook.CriticalProbes(m, cfg.Health, nil)...)
			res := healthCheckResult{Healthy: ok, Level: "critical-only", Service: m.Name(), Checks: results, DurationMS: time.Since(t0).Milliseconds()}
			if err := printHealth(f.IO, f.JSON, res); err != nil {
				return err
			}
			if !ok {
				return exitError{ExitFailed}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&criticalOnly, "critical-only", true, "only the critical checks (service active, health URL)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "timeout of the health URL request (default health.timeout)")
	return cmd
}

func printHealth(io *ui.IO, asJSON bool, res healthCheckResult) error {
	if asJSON {
		return ui.JSON(io.Out, res)
	}
	p := io.OutPalette()
	for _, c := range res.Checks {
		mark := p.Green("PASS")
		if !c.OK {
			mark = p.Red("FAIL")
		}
		fmt.Fprintf(io.Out, "%s  %-16s %6s  %s\n", mark, c.Check, ui.Duration(c.Duration), c.Detail)
	}
	if res.Healthy {
		fmt.Fprintf(io.Out, "%s is healthy\n", res.Service)
	} else {
		fmt.Fprintf(io.Out, "%s is NOT healthy\n", res.Service)
	}
	return nil
}
