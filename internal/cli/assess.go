package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// assess's exit codes encode the severity (docs/EXIT_CODES.md, "assess").
const (
	ExitAssessP0           = 10
	ExitAssessP1           = 11
	ExitAssessP2           = 12
	ExitAssessP3           = 13
	ExitAssessInconclusive = 14
)

func severityExit(s assess.Severity) int {
	switch s {
	case assess.P0:
		return ExitAssessP0
	case assess.P1:
		return ExitAssessP1
	case assess.P2:
		return ExitAssessP2
	case assess.P3:
		return ExitAssessP3
	case assess.Inconclusive:
		return ExitAssessInconclusive
	}
	return ExitOK
}

type assessResult struct {
	assess.Assessment
	Service   string           `json:"service"`
	Baseline  *assess.Baseline `json:"baseline,omitempty"`
	Acted     bool             `json:"acted"`
	Emergency *runbook.Result  `json:"emergency,omitempty"`
}

type assessOptions struct {
	IO         *ui.IO
	JSON       bool
	Config     settings.Config
	Service    service.Manager
	Databases  health.DatabaseChecker
	Thresholds assess.Thresholds
	Samples    int
	Interval   time.Duration
	Act        bool
	DryRun     bool
	Args       []string
	Now        func() time.Time
	// NewService builds the manager for --act's emergency; tests replace it.
	NewService func(ctx context.Context, cfg settings.Config) (service.Manager, error)
}

func newAssessCmd(f *Factory) *cobra.Command {
	opts := &assessOptions{IO: f.IO, Now: time.Now, Thresholds: assess.DefaultThresholds, NewService: newServiceManager}
	var memMBh float64
	cmd := &cobra.Command{
		Use:   "assess",
		Short: "The rollback decision matrix: severity P0-P3 with the evidence, action and deadline",
		Long: `Judge the seed's "When to Rollback" conditions with numbers and map them to the
decision matrix:

  P0  service down or crash-looping            immediate rollback   < 5 minutes
  P1  database corrupt or app config unreadable emergency rollback  < 15 minutes
      3+ agents failing to spawn in 15 minutes
  P2  p95 response time over 5x the baseline   scheduled rollback   < 1 hour
      error rate over 10% for 30 minutes
  P3  network failures over 5% for 15 minutes  investigate first    < 4 hours
      memory growth over 50 MB/hour

It measures the service, the databases and the latency now, and reads the
baseline ('cfrollback baseline record') and the samples 'cfrollback monitor'
keeps in <state_dir>/monitor.jsonl for the trends. Missing data is never a
pass: a condition without its baseline, its minimum number of samples or a
sample series covering its window is "inconclusive", and says what is missing.

--act runs the emergency rollback for P0 and P1 and only recommends for P2
and P3. The thresholds can be tuned (and scaled down for drills) with the
flags below; see docs/HEALTH.md.` +
			exitStatusHelp("0  no condition met, every condition judged",
				"10 P0   11 P1   12 P2   13 P3   (the worst condition met)",
				"14 inconclusive: nothing met, but some condition could not be judged",
				"3-6 with --act on P0/P1: the emergency's own code (and 0 when it rolled back and is healthy)",
				"1  assess itself failed     2  bad usage or invalid settings"),
		Example: `  cfrollback assess
  cfrollback assess --json | jq -r .severity
  cfrollback assess --act      # rolls back on P0/P1, recommends otherwise
  cfrollback assess; case $? in 10|11) cfrollback emergency;; 12) echo schedule;; esac`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Samples < 0 || opts.Samples > maxSamples {
				return usageErrorf("--samples %d: give 0 to %d", opts.Samples, maxSamples)
			}
			opts.Thresholds.MemoryPerHour = memMBh * assess.MB
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			m, err := newServiceManager(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			opts.JSON, opts.Config, opts.Service, opts.Databases, opts.Args = f.JSON, cfg, m, healthDatabases{cfg: cfg}, os.Args[1:]
			return runAssess(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Act, "act", false, "run the emergency rollback for P0 and P1 (P2/P3: recommend only)")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "with --act: judge, then run the emergency's dry run (verify the backup, print the plan); change nothing")
	fl.IntVar(&opts.Samples, "samples", 10, "requests to the health URL for the response time (0: none)")
	durationVar(fl, &opts.Interval, "interval", 100*time.Millisecond, "pause between those requests")
	addThresholdFlags(fl, &opts.Thresholds, &memMBh)
	return cmd
}

// addThresholdFlags exposes the matrix's numbers; defaults are the seed's.
func addThresholdFlags(fl *pflag.FlagSet, th *assess.Thresholds, memMBh *float64) {
	d := assess.DefaultThresholds
	fl.Float64Var(&th.ResponseFactor, "response-factor", d.ResponseFactor, "P2 when p95 is over this times the baseline p95")
	fl.Float64Var(&th.ErrorRate, "error-rate", d.ErrorRate, "P2 when this fraction of requests failed over --error-window")
	durationVar(fl, &th.ErrorWindow, "error-window", d.ErrorWindow, "window of the error rate")
	fl.Float64Var(&th.NetworkRate, "network-rate", d.NetworkRate, "P3 when this fraction of requests got no HTTP answer over --network-window")
	durationVar(fl, &th.NetworkWindow, "network-window", d.NetworkWindow, "window of the network failure rate")
	fl.Float64Var(memMBh, "memory-growth", d.MemoryPerHour/assess.MB, "P3 when RSS grows faster than this many MB (2^20 bytes) per hour")
	durationVar(fl, &th.MemoryWindow, "memory-window", d.MemoryWindow, "window the memory growth is fitted over")
	durationVar(fl, &th.MemoryMinSpan, "memory-min-span", d.MemoryMinSpan, "the RSS samples must span at least this")
	fl.IntVar(&th.MinWindowSamples, "min-samples", d.MinWindowSamples, "fewer monitor samples in a window: inconclusive")
	fl.IntVar(&th.AgentFailures, "agent-failures", d.AgentFailures, "P1 when this many log lines about agents failing to spawn fall in --agent-window")
	durationVar(fl, &th.AgentWindow, "agent-window", d.AgentWindow, "window of the agent spawn failures")
}

func runAssess(ctx context.Context, opts *assessOptions) error {
	cfg, m := opts.Config, opts.Service
	g := assess.Gatherer{Service: m, Databases: opts.Databases, InstallDir: cfg.InstallDir,
		HealthURL: cfg.Health.URL, Timeout: cfg.Health.Timeout, Samples: opts.Samples, Interval: opts.Interval,
		StateDir: cfg.StateDir, Warn: func(msg string) { opts.IO.Warnf("%s", msg) }, Now: opts.Now}
	in := g.Gather(ctx)
	if c := runbook.Interruption(ctx); c != nil {
		return fmt.Errorf("%w while reading the service's state: nothing was judged", c)
	}
	res := assessResult{Assessment: assess.Evaluate(in, opts.Thresholds), Service: m.Name(), Baseline: in.Baseline}

	var emErr error
	if opts.Act && (res.Severity == assess.P0 || res.Severity == assess.P1) {
		if !opts.JSON {
			if err := printAssess(opts.IO, false, res); err != nil {
				return err
			}
			now := "now"
			if opts.DryRun {
				now = "(dry run: the plan only)"
			}
			fmt.Fprintf(opts.IO.ErrOut, "\n%s %s: %s %s\n", opts.IO.ErrPalette().Red(string(res.Severity)), strings.Join(res.Met, ", "), res.Action, now)
		}
		res.Acted = true
		res.Emergency, emErr = actEmergency(ctx, opts)
		if res.Emergency != nil && res.Emergency.RunID != "" && !opts.DryRun {
			if err := runbook.AppendLocked(ctx, cfg, "cfrollback assess", res.Emergency.RunID, journal.EventAssess, res.Assessment); err != nil {
				opts.IO.Warnf("assessment not recorded in the journal: %v", err)
			}
		}
		if opts.JSON {
			if err := ui.JSON(opts.IO.Out, res); err != nil {
				return err
			}
			return emErr
		}
		return reportRun(opts.IO, false, res.Emergency, emErr)
	}
	if err := printAssess(opts.IO, opts.JSON, res); err != nil {
		return err
	}
	if opts.Act && !opts.JSON && (res.Severity == assess.P2 || res.Severity == assess.P3) {
		fmt.Fprintf(opts.IO.Out, "--act: %s is not rolled back automatically; recommended: %s\n", res.Severity, res.Command)
	}
	if code := severityExit(res.Severity); code != ExitOK {
		return exitError{code}
	}
	return nil
}

// actEmergency is --act: the emergency procedure exactly as runEmergency
// runs it, with its result kept for assess's own output.
func actEmergency(ctx context.Context, opts *assessOptions) (*runbook.Result, error) {
	em := EmergencyWiring{IO: opts.IO, JSON: opts.JSON, Config: opts.Config, NewService: opts.NewService}
	return em.Run(ctx, runbook.Options{
		Command: "emergency", Args: opts.Args, KillAt: os.Getenv("CFROLLBACK_TEST_KILL_AT"), DryRun: opts.DryRun,
	}, nil)
}

func printAssess(io *ui.IO, asJSON bool, res assessResult) error {
	if asJSON {
		return ui.JSON(io.Out, res)
	}
	p := io.OutPalette()
	for _, c := range res.Conditions {
		mark := p.Faint("?   ")
		switch c.Status {
		case assess.Met:
			mark = p.Red("MET ")
		case assess.Clear:
			mark = p.Green("ok  ")
		}
		fmt.Fprintf(io.Out, "%s %-17s %-3s %s\n", mark, c.ID, c.Severity, c.Evidence)
	}
	head := fmt.Sprintf("severity %s", res.Severity)
	switch res.Severity {
	case assess.None:
		fmt.Fprintln(io.Out, p.Green(head+": "+res.Action))
	case assess.Inconclusive:
		fmt.Fprintln(io.Out, p.Yellow("INCONCLUSIVE: "+res.Action))
	default:
		fmt.Fprintln(io.Out, p.Red(fmt.Sprintf("%s: %s %s (by %s)", head, res.Action, res.Timeline, res.Deadline.Local().Format("15:04"))))
		fmt.Fprintf(io.Out, "next: %s\n", res.Command)
	}
	return nil
}
