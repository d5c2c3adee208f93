package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/guard"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/notify"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type guardOptions struct {
	IO          *ui.IO
	JSON        bool
	Config      settings.Config
	Service     service.Manager
	DryRun      bool
	Evaluations int
	Thresholds  assess.Thresholds
	Logs        logCountOptions
	Now         func() time.Time
	NewService  func(ctx context.Context, cfg settings.Config) (service.Manager, error)
	// Bus is guard's one D-Bus connection to systemd, for its samples and its emergency.
	Bus *service.Bus
}

func newGuardCmd(f *Factory) *cobra.Command {
	opts := &guardOptions{IO: f.IO, Now: time.Now, Thresholds: assess.DefaultThresholds}
	opts.NewService = func(ctx context.Context, cfg settings.Config) (service.Manager, error) {
		return newServiceManagerOn(ctx, cfg, opts.Bus)
	}
	var memMBh float64
	cmd := &cobra.Command{
		Use:   "guard",
		Short: "Watch the service and roll back by itself on P0 (the runbook's rollback-mode monitoring)",
		Long: `Run until stopped (cfrollback-guard.service runs it): every guard.interval take
one sample as monitor does, make guard.requests requests to health.url, and judge
the decision matrix (as 'cfrollback assess' does) against the recorded baseline.
When a severity in guard.act (default P0) holds for guard.consecutive evaluations
in a row, run the emergency rollback, exactly as 'cfrollback emergency' does.

It never rolls back more than guard.max_rollbacks times per guard.window (then it
only notifies: a flapping service must not cause a rollback storm), nor on the
samples it already acted on, nor within guard.grace after its own rollback.
'guard pause' / 'guard resume' stop and restart the acting (it keeps watching).
Every decision to act is journaled with its evidence (the samples, the matrix
row) and sent to notify.webhooks: guard_acted, guard_would_have_acted,
guard_limit_reached. Only one guard runs at a time (<state_dir>/guard.lock).
See docs/GUARD.md.` +
			exitStatusHelp("0  stopped (SIGTERM, Ctrl-C, or --evaluations reached)",
				"1  guard itself failed (its state could not be written)", "2  bad usage or invalid settings",
				"6  another guard is running"),
		Example: `  cfrollback guard --dry-run          # notify what it would do, never roll back
  systemctl enable --now cfrollback-guard.service
  cfrollback guard pause --for 2h     # planned work
  cfrollback guard status --json | jq .state.last
  CFROLLBACK_GUARD_ACT=P0,P1 CFROLLBACK_GUARD_CONSECUTIVE=2 cfrollback guard`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Evaluations < 0 {
				return usageErrorf("--evaluations %d: give 0 (until stopped) or more", opts.Evaluations)
			}
			opts.Thresholds.MemoryPerHour = memMBh * assess.MB
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Bus = service.OpenBus()
			defer opts.Bus.Close()
			m, err := opts.NewService(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			opts.JSON, opts.Config, opts.Service = f.JSON, cfg, m
			return runGuard(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.DryRun, "dry-run", false, "judge and notify what it would do; never roll back")
	fl.IntVar(&opts.Evaluations, "evaluations", 0, "stop after this many evaluations (0: until stopped)")
	addThresholdFlags(fl, &opts.Thresholds, &memMBh)
	addLogFlags(fl, &opts.Logs)
	cmd.AddCommand(newGuardPauseCmd(f, true), newGuardPauseCmd(f, false), newGuardStatusCmd(f))
	return cmd
}

func runGuard(ctx context.Context, opts *guardOptions) error {
	cfg := opts.Config
	pol := guard.PolicyFrom(cfg.Guard)
	mon := &monitorOptions{IO: opts.IO, Config: cfg, Service: opts.Service, Interval: pol.Interval, Logs: opts.Logs, Now: opts.Now}
	sampler, logDesc := newSampler(ctx, mon)
	sampler.CPUSample = 0 // the CPU between evaluations, from the kernel's counters: no window to wait through
	// the emergency uses guard's manager: no new connection to systemd at the worst moment
	em := EmergencyWiring{IO: opts.IO, JSON: opts.JSON, Config: cfg,
		NewService: func(context.Context, settings.Config) (service.Manager, error) { return opts.Service, nil }}
	data := func(context.Context) []health.Check { return []health.Check{health.CheckAppConfig(cfg.InstallDir)} }
	if pol.Acts(assess.P1) {
		dbs := healthDatabases{cfg: cfg}
		data = func(ctx context.Context) []health.Check {
			return append([]health.Check{health.CheckAppConfig(cfg.InstallDir)}, dbs.CheckDatabases(ctx)...)
		}
	}
	// one keep-alive client for guard's lifetime: its requests measure the service, not handshakes
	probe := health.HTTPProbe{URL: cfg.Health.URL, Timeout: cfg.Health.Timeout, Client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: guard.MaxInFlight}}}
	deps := guard.Deps{
		Sample: sampler.Take,
		Measure: func(ctx context.Context, n int) ([]time.Duration, int) {
			if cfg.Health.URL == "" {
				return nil, 0
			}
			return guard.Measure(ctx, n, guardStagger, probe.Probe)
		},
		Data:     data,
		Baseline: func() *assess.Baseline { return readBaselineOrWarn(opts.IO, cfg.StateDir) },
		Act: func(ctx context.Context, atOutcome func(*runbook.Result)) (*runbook.Result, error) {
			return em.Run(ctx, runbook.Options{Command: "emergency", Args: []string{"guard"}, KillAt: os.Getenv("CFROLLBACK_TEST_KILL_AT")}, atOutcome)
		},
		Busy:    func() (string, bool) { return guard.RunLockHolder(cfg.Lock) },
		Journal: guardJournal(cfg),
		Notify:  func(ctx context.Context, ev notify.Event) { sendEvent(ctx, opts.IO, cfg, ev) },
		Log:     func(s string) { fmt.Fprintf(opts.IO.ErrOut, "guard: %s\n", s) },
		Now:     opts.Now,
	}
	if opts.JSON {
		deps.Journal = printingJournal(opts.IO, deps.Journal)
	}
	fmt.Fprintf(opts.IO.ErrOut, "guard: sampling %s (log: %s)\n", opts.Service.Name(), logDesc)
	err := guard.Run(ctx, guard.Options{Policy: pol, Thresholds: opts.Thresholds, StateDir: cfg.StateDir, Service: opts.Service.Name(),
		DryRun: opts.DryRun, Evaluations: opts.Evaluations, Retention: guardRetention(opts.Thresholds)}, deps)
	if errors.Is(err, guard.ErrRunning) {
		return withHint(err, "one guard at a time: 'cfrollback guard status' shows it; stop it (systemctl stop cfrollback-guard) before starting another")
	}
	return err
}

// guardStagger: a request that has not answered by then does not hold up the next one.
const guardStagger = 100 * time.Millisecond

// printingJournal also prints each journaled decision as a JSON line on stdout (--json).
func printingJournal(io *ui.IO, next func(context.Context, string, any) error) func(context.Context, string, any) error {
	return func(ctx context.Context, runID string, data any) error {
		if b, err := json.Marshal(data); err == nil {
			fmt.Fprintf(io.Out, "%s\n", b)
		}
		return next(ctx, runID, data)
	}
}

// guardRetention keeps the samples of the matrix's longest window, twice over.
func guardRetention(th assess.Thresholds) time.Duration {
	return 2 * max(th.ErrorWindow, th.NetworkWindow, th.MemoryWindow, th.CrashWindow, th.AgentWindow)
}

func readBaselineOrWarn(io *ui.IO, stateDir string) *assess.Baseline {
	b, err := assess.ReadBaseline(stateDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		io.Warnf("%v; judging without a baseline", err)
	}
	return b
}
