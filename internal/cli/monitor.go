package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/logs"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type monitorOptions struct {
	IO         *ui.IO
	JSON       bool
	Config     settings.Config
	Service    service.Manager
	Interval   time.Duration
	Samples    int // stop after this many; 0 means until interrupted
	WatchFor   []string
	PID        int
	CPUSample  time.Duration
	Retention  time.Duration
	Thresholds assess.Thresholds // for the memory-leak watch
	Logs       logCountOptions
	Now        func() time.Time
}

func newMonitorCmd(f *Factory) *cobra.Command {
	opts := &monitorOptions{IO: f.IO, Now: time.Now, Thresholds: assess.DefaultThresholds}
	var watch string
	var memMBh float64
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Sample the service every few seconds and keep the samples for assess",
		Long: `Every --interval, take one sample of the service: the manager's state and
restart count, one request to health.url (latency, status, network failure), the
main process's RSS and CPU, and the error log lines since the last sample. Each
sample is appended to <state_dir>/monitor.jsonl, which keeps the last --retention
(24h); 'cfrollback assess' judges error rate, network failures and memory growth
on it.

On a terminal the view refreshes in place; otherwise one line per sample (JSON
Lines with --json). --watch-for names conditions to alert on (stderr):
  agent-spawn-failure  log lines about agents failing to spawn
  api-timeout          log lines about timeouts, and timed-out health requests
  memory-leak          RSS growing faster than --memory-growth MB/hour
Only one monitor runs at a time (<state_dir>/monitor.lock).` +
			exitStatusHelp("0  stopped (interrupted, or --samples reached)",
				"1  the store could not be written", "2  bad usage", "6  another monitor is running"),
		Example: `  cfrollback monitor
  cfrollback monitor --interval 5s --watch-for agent-spawn-failure,memory-leak,api-timeout
  cfrollback monitor --samples 12 --json > samples.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Interval < 50*time.Millisecond {
				return usageErrorf("--interval %s: give at least 50ms", opts.Interval)
			}
			if opts.Samples < 0 {
				return usageErrorf("--samples %d: give 0 (until interrupted) or more", opts.Samples)
			}
			for _, w := range strings.Split(watch, ",") {
				if w = strings.TrimSpace(w); w == "" {
					continue
				}
				if _, ok := assess.WatchPatterns()[w]; !ok {
					return usageErrorf("--watch-for %s: give any of %s", w, strings.Join(assess.WatchNames(), ", "))
				}
				opts.WatchFor = append(opts.WatchFor, w)
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
			opts.JSON, opts.Config, opts.Service = f.JSON, cfg, m
			return runMonitor(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	durationVar(fl, &opts.Interval, "interval", 5*time.Second, "time between samples (at least 50ms)")
	fl.IntVar(&opts.Samples, "samples", 0, "stop after this many samples (0: until interrupted)")
	fl.StringVar(&watch, "watch-for", "", "alert on these conditions: "+strings.Join(assess.WatchNames(), ","))
	fl.IntVar(&opts.PID, "pid", 0, "measure this process (default: the manager's main pid, when visible here)")
	durationVar(fl, &opts.Retention, "retention", assess.DefaultRetention, "keep samples this long in the store")
	fl.Float64Var(&memMBh, "memory-growth", assess.DefaultThresholds.MemoryPerHour/assess.MB, "memory-leak alert: RSS growth in MB/hour")
	durationVar(fl, &opts.Thresholds.MemoryWindow, "memory-window", assess.DefaultThresholds.MemoryWindow, "memory-leak alert: fitted over this window")
	durationVar(fl, &opts.Thresholds.MemoryMinSpan, "memory-min-span", assess.DefaultThresholds.MemoryMinSpan, "memory-leak alert: the samples must span this")
	addLogFlags(fl, &opts.Logs)
	return cmd
}

func runMonitor(ctx context.Context, opts *monitorOptions) error {
	cfg := opts.Config
	if opts.CPUSample <= 0 {
		opts.CPUSample = min(200*time.Millisecond, opts.Interval/2)
	}
	m := &assess.Monitor{Store: assess.Store{Path: assess.StorePath(cfg.StateDir), Retention: opts.Retention, MaxSamples: 200_000},
		LockPath: filepath.Join(cfg.StateDir, "monitor.lock"), Interval: opts.Interval, Samples: opts.Samples,
		Thresholds: opts.Thresholds, Now: opts.Now}
	alerted := map[string]bool{}
	m.Show = func(history []assess.Sample, alerts []string) {
		printSample(opts, history, alerts)
		for _, a := range alerts {
			key := a[:strings.IndexByte(a, ':')]
			if !alerted[key] || opts.IO.OutTTY {
				fmt.Fprintf(opts.IO.ErrOut, "%s %s\n", opts.IO.ErrPalette().Red("ALERT"), a)
			}
			alerted[key] = true
		}
	}
	m.NewSampler = func() *assess.Sampler {
		sampler, logDesc := newSampler(ctx, opts)
		if !opts.JSON && !opts.IO.OutTTY {
			fmt.Fprintf(opts.IO.ErrOut, "monitoring %s every %s into %s (log: %s)\n", opts.Service.Name(), opts.Interval, m.Store.Path, logDesc)
		}
		return sampler
	}
	return m.Run(ctx)
}

// newSampler is monitor's sampler for these options; the log is read where the logs setting
// (or --log-files) says, and a log that cannot be found is warned about once and not counted.
func newSampler(ctx context.Context, opts *monitorOptions) (*assess.Sampler, string) {
	cfg := opts.Config
	sm := &assess.Sampler{Service: opts.Service, PID: opts.PID, PIDVisible: pidVisible(opts.Service, cfg), CPUSample: opts.CPUSample,
		HealthURL: cfg.Health.URL, Timeout: cfg.Health.Timeout, WatchFor: opts.WatchFor, Warn: warner(opts.IO), Now: opts.Now}
	re, err := regexp.Compile(opts.Logs.grep())
	if err != nil {
		opts.IO.Warnf("--error-grep: %v; error lines are not counted", err)
		return sm, "not read"
	}
	src, err := resolveLogs(ctx, opts.IO, cfg, opts.Logs.Files)
	if err != nil {
		opts.IO.Warnf("%v; error lines are not counted", err)
		return sm, "not read"
	}
	r := logs.Reader{Journal: opts.Logs.Journal, Warn: warner(opts.IO)}
	sm.Tail, sm.ErrorRE = logs.NewTail(r, src, opts.Now()), re
	return sm, src.Desc
}

func printSample(opts *monitorOptions, history []assess.Sample, alerts []string) {
	w := opts.IO.Out
	s := history[len(history)-1]
	if opts.JSON {
		if b, err := json.Marshal(s); err == nil {
			fmt.Fprintf(w, "%s\n", b)
		}
		return
	}
	if !opts.IO.OutTTY {
		fmt.Fprintln(w, sampleLine(s, opts.Interval))
		return
	}
	p := opts.IO.OutPalette()
	// A refreshing view: clear the screen, header, the newest samples.
	fmt.Fprint(w, "\x1b[H\x1b[2J")
	fmt.Fprintf(w, "%s  every %s  %s  (Ctrl-C stops)\n\n", p.Bold("cfrollback monitor: "+opts.Service.Name()),
		opts.Interval, time.Now().Format("15:04:05"))
	fmt.Fprintln(w, "TIME      STATE            RESTARTS  RSS          CPU    LATENCY")
	for _, h := range history[max(0, len(history)-15):] {
		fmt.Fprintln(w, sampleLine(h, opts.Interval))
	}
	if series := assess.RSSSeries(history); len(history) > 2 {
		fmt.Fprintf(w, "\nRSS trend: %+.1f MB/hour over %d samples\n", assess.GrowthPerHour(series)/assess.MB, len(series))
	}
	for _, a := range alerts {
		fmt.Fprintln(w, p.Red("ALERT "+a))
	}
}

// sampleLine is one sample for a log or a terminal row; error lines are
// shown per minute.
func sampleLine(s assess.Sample, interval time.Duration) string {
	state := "unknown"
	if s.Active != nil {
		state = s.State
		if s.CrashLoop {
			state += " (crash loop)"
		}
	}
	restarts, rss, cpu, latency, errs := "-", "-", "-", "-", "-"
	if s.Restarts != nil {
		restarts = fmt.Sprint(*s.Restarts)
	}
	if s.RSS != nil {
		rss = ui.Bytes(*s.RSS)
	}
	if s.CPUPercent != nil {
		cpu = fmt.Sprintf("%.0f%%", *s.CPUPercent)
	}
	if s.Probe != nil {
		latency = fmt.Sprintf("%.1fms", s.Probe.LatencyMS)
		if !s.Probe.OK {
			latency = "FAIL " + s.Probe.Detail
		}
	}
	if s.ErrorLines != nil {
		errs = fmt.Sprintf("%.1f/min", float64(*s.ErrorLines)*float64(time.Minute)/float64(interval))
	}
	return fmt.Sprintf("%-9s %-16s %-9s %-12s %-6s %-10s errors %s", s.Time.Local().Format("15:04:05"), state, restarts, rss, cpu, latency, errs)
}
