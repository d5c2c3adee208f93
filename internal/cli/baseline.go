package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type baselineOptions struct {
	IO       *ui.IO
	JSON     bool
	Config   settings.Config
	Service  service.Manager
	Samples  int
	Interval time.Duration
	PID      int // measure this process's RSS instead of the manager's main pid
	Force    bool
	DryRun   bool // measure and print, write nothing
	Logs     logCountOptions
	Now      func() time.Time
}

func newBaselineCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "baseline",
		Short: "Record or show what healthy looks like (assess compares against it)",
	}
	opts := &baselineOptions{IO: f.IO, Now: time.Now}
	record := &cobra.Command{
		Use:   "record",
		Short: "Measure the healthy service now and store it as the baseline",
		Long: `Run this after a deploy you are happy with. It measures latency percentiles
(--samples requests to health.url), the main process's RSS, the error rate of
those requests and the error log lines of the last hour, and writes them to
<state_dir>/baseline.json (temp file, fsync, rename: never half written).
'cfrollback assess' judges response time against the baseline's p95.

It refuses to record from a service that is not active, or whose requests fail
more than 10% of the time, unless --force. --dry-run measures the same way and
prints what would be recorded, and writes nothing (the exit status says whether it
would have been recorded). The error lines are read where the logs setting says
(logs.source, logs.files), or from --log-files. Recording is a run under the
lock (the measuring comes first, without it), in 'cfrollback history' and
'report', with the baseline it replaced kept in the journal, and told to
notify.webhooks (change_started, change_complete).` +
			exitStatusHelp("0  recorded (with --dry-run: would be recorded)",
				"1  not recorded: the service is not healthy enough (or the write failed)", "2  bad usage",
				"6  another cfrollback run holds the lock (the measuring is done before it is taken)"),
		Example: `  cfrollback baseline record
  cfrollback baseline record --dry-run
  cfrollback baseline record --samples 50 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Samples < 1 || opts.Samples > maxSamples {
				return usageErrorf("--samples %d: give 1 to %d", opts.Samples, maxSamples)
			}
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			m, err := newServiceManager(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			opts.JSON, opts.Config, opts.Service = f.JSON, cfg, m
			return runBaselineRecord(cmd.Context(), opts)
		},
	}
	fl := record.Flags()
	fl.IntVar(&opts.Samples, "samples", 20, "requests to the health URL")
	durationVar(fl, &opts.Interval, "interval", 100*time.Millisecond, "pause between requests")
	fl.IntVar(&opts.PID, "pid", 0, "measure this process's RSS (default: the manager's main pid)")
	fl.BoolVar(&opts.Force, "force", false, "record even from an inactive or failing service")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "measure and print what would be recorded; write nothing")
	addLogFlags(fl, &opts.Logs)
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the recorded baseline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			b, err := assess.ReadBaseline(cfg.StateDir)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("no baseline in %s; record one with 'cfrollback baseline record' after a healthy deploy", cfg.StateDir)
			}
			if err != nil {
				return err
			}
			return printBaseline(f.IO, f.JSON, *b)
		},
	}
	cmd.AddCommand(record, show)
	return cmd
}

func runBaselineRecord(ctx context.Context, opts *baselineOptions) error {
	cfg, m := opts.Config, opts.Service
	host, _ := os.Hostname()
	b := assess.Baseline{Recorded: opts.Now().UTC(), Host: host, Service: m.Name()}
	notRecorded := "baseline not recorded"
	if opts.DryRun {
		notRecorded = "baseline would not be recorded"
	}
	st, err := m.Status(ctx)
	if err != nil || !st.Active {
		why := "the service is not active"
		if err != nil {
			why = err.Error()
		}
		if !opts.Force {
			return fmt.Errorf("%s: %s; a baseline must describe a healthy service (--force to record anyway)", notRecorded, why)
		}
	}
	if cfg.Health.URL != "" {
		b.URL = appconfig.RedactURL(cfg.Health.URL)
		ok, failed, _ := health.MeasureLatency(ctx, cfg.Health.URL, opts.Samples, opts.Interval, cfg.Health.Timeout)
		s := health.Summarise(ok)
		b.Latency = assess.Latency{Count: s.Count, P50MS: ms(s.P50), P95MS: ms(s.P95), P99MS: ms(s.P99), MaxMS: ms(s.Max)}
		b.ErrorRate = float64(failed) / float64(len(ok)+failed)
		if b.ErrorRate > 0.10 && !opts.Force {
			return fmt.Errorf("%s: %d of %d requests to %s failed; that is not healthy (--force to record anyway)",
				notRecorded, failed, len(ok)+failed, b.URL)
		}
	} else {
		opts.IO.Warnf("health.url is empty: no latency in the baseline, so assess cannot judge response time")
	}
	pid := opts.PID
	if pid == 0 && err == nil && st.MainPID > 0 {
		if ok, _ := pidVisible(m, cfg)(st.MainPID); ok {
			pid = st.MainPID
		}
	}
	if pid > 0 {
		if ps, err := health.SampleProcess(ctx, pid, 50*time.Millisecond); err == nil {
			b.RSSBytes = ps.RSS
		}
	}
	if lines, _, err := errorLines(ctx, opts.IO, cfg, opts.Logs, opts.Now().Add(-time.Hour)); err == nil {
		b.ErrorLinesLastHour = assess.Ptr(len(lines))
	} else {
		warner(opts.IO)(fmt.Sprintf("error lines not counted: %v", err))
	}
	runID, err := runbook.RecordBaseline(ctx, cfg, b, opts.DryRun, os.Args[1:], changeDeps(opts.IO, opts.JSON, cfg))
	if err != nil {
		return dbHinted(err)
	}
	if !opts.JSON {
		if opts.DryRun {
			fmt.Fprintf(opts.IO.Out, "baseline not recorded (--dry-run); %s would get:\n", assess.BaselinePath(cfg.StateDir))
		} else {
			fmt.Fprintf(opts.IO.Out, "baseline recorded in %s (run %s)\n", assess.BaselinePath(cfg.StateDir), runID)
		}
	}
	return printBaseline(opts.IO, opts.JSON, b)
}

func printBaseline(io *ui.IO, asJSON bool, b assess.Baseline) error {
	if asJSON {
		return ui.JSON(io.Out, b)
	}
	fmt.Fprintf(io.Out, "  recorded:     %s (%s)\n", b.Recorded.Local().Format("2006-01-02 15:04:05"), ui.Ago(b.Recorded, time.Now()))
	if b.Latency.Count > 0 {
		fmt.Fprintf(io.Out, "  latency:      p50 %.1fms  p95 %.1fms  p99 %.1fms  max %.1fms (%d requests to %s)\n",
			b.Latency.P50MS, b.Latency.P95MS, b.Latency.P99MS, b.Latency.MaxMS, b.Latency.Count, b.URL)
		fmt.Fprintf(io.Out, "  error rate:   %.1f%%\n", 100*b.ErrorRate)
	} else {
		fmt.Fprintln(io.Out, "  latency:      not measured (no health.url)")
	}
	if b.RSSBytes > 0 {
		fmt.Fprintf(io.Out, "  RSS:          %s\n", ui.Bytes(b.RSSBytes))
	} else {
		fmt.Fprintln(io.Out, "  RSS:          not measured (no visible main pid; --pid)")
	}
	if b.ErrorLinesLastHour != nil {
		fmt.Fprintf(io.Out, "  error lines:  %d in the hour before\n", *b.ErrorLinesLastHour)
	} else {
		fmt.Fprintln(io.Out, "  error lines:  log not readable (see the logs setting, or --log-files)")
	}
	return nil
}
