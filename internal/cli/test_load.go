package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type loadResult struct {
	URL         string         `json:"url"`
	OK          bool           `json:"ok"`
	DurationMS  int64          `json:"duration_ms"`
	Concurrency int            `json:"concurrency"`
	Requests    int            `json:"requests"`
	Errors      int            `json:"errors"`
	ErrorRate   float64        `json:"error_rate"`
	PerSecond   float64        `json:"requests_per_second"`
	ErrorsBy    map[string]int `json:"errors_by_detail,omitempty"`
	Latency     latencyJSON    `json:"latency"`
}

type loadOptions struct {
	IO          *ui.IO
	JSON        bool
	URL         string
	Duration    time.Duration
	Concurrency int
	MaxRequests int
	Timeout     time.Duration
	AllowRemote bool
	MaxErrRate  float64
}

func newTestLoadCmd(f *Factory) *cobra.Command {
	opts := &loadOptions{}
	var url string
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Bounded load on the health URL: error rate and latency percentiles",
		Long: `Send GETs to the health URL from --concurrency workers for --duration, or until
--max-requests were sent, whichever comes first, and report the error rate and
latency percentiles. Only loopback URLs (localhost, 127.0.0.0/8, ::1) unless
--allow-remote is given. Hard caps: --duration ` + maxLoadTime.String() + `, --concurrency ` +
			fmt.Sprint(maxConcurrency) + `, --max-requests ` + fmt.Sprint(maxLoadReqs) + `.
Fails when the error rate is over --max-error-rate (default 1%).` +
			exitStatusHelp("0  error rate within --max-error-rate",
				"1  error rate over --max-error-rate, or no request completed",
				"2  bad usage (no URL, a remote URL without --allow-remote, a value over a cap)"),
		Example: `  cfrollback test load --duration 60s --concurrency 5
  cfrollback test load --duration 10s --max-requests 500 --json
  cfrollback test load --url https://staging.example.com/health --allow-remote --duration 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case opts.Duration <= 0 || opts.Duration > maxLoadTime:
				return usageErrorf("--duration %s: give more than 0 and at most %s", opts.Duration, maxLoadTime)
			case opts.Concurrency < 1 || opts.Concurrency > maxConcurrency:
				return usageErrorf("--concurrency %d: give 1 to %d", opts.Concurrency, maxConcurrency)
			case opts.MaxRequests < 1 || opts.MaxRequests > maxLoadReqs:
				return usageErrorf("--max-requests %d: give 1 to %d", opts.MaxRequests, maxLoadReqs)
			case opts.MaxErrRate < 0 || opts.MaxErrRate > 1:
				return usageErrorf("--max-error-rate %g: give a fraction from 0 to 1, e.g. 0.01", opts.MaxErrRate)
			}
			u, timeout, err := testURL(f, url)
			if err != nil {
				return err
			}
			if !opts.AllowRemote && !health.IsLoopbackURL(u) {
				return usageErrorf("%s is not a loopback URL; load-testing another host needs --allow-remote", appconfig.RedactURL(u))
			}
			opts.IO, opts.JSON, opts.URL = f.IO, f.JSON, u
			if opts.Timeout <= 0 {
				opts.Timeout = timeout
			}
			return runLoad(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&url, "url", "", "URL to load (default health.url)")
	durationVar(fl, &opts.Duration, "duration", 60*time.Second, "how long to run (at most "+maxLoadTime.String()+")")
	fl.IntVar(&opts.Concurrency, "concurrency", 5, fmt.Sprintf("parallel workers (at most %d)", maxConcurrency))
	fl.IntVar(&opts.MaxRequests, "max-requests", 10_000, fmt.Sprintf("stop after this many requests (at most %d)", maxLoadReqs))
	durationVar(fl, &opts.Timeout, "timeout", 0, "per-request timeout (default health.timeout)")
	fl.BoolVar(&opts.AllowRemote, "allow-remote", false, "allow a URL that is not loopback")
	fl.Float64Var(&opts.MaxErrRate, "max-error-rate", 0.01, "error rate (0-1) above which the test fails")
	return cmd
}

func runLoad(ctx context.Context, opts *loadOptions) error {
	if !opts.JSON {
		fmt.Fprintf(opts.IO.ErrOut, "loading %s for up to %s with %d workers (at most %d requests)...\n",
			appconfig.RedactURL(opts.URL), opts.Duration, opts.Concurrency, opts.MaxRequests)
	}
	r := health.Load(ctx, health.LoadOptions{URL: opts.URL, Duration: opts.Duration, Concurrency: opts.Concurrency,
		MaxRequests: opts.MaxRequests, Timeout: opts.Timeout})
	res := loadResult{URL: appconfig.RedactURL(opts.URL), OK: r.Passed(opts.MaxErrRate), DurationMS: r.Elapsed.Milliseconds(),
		Concurrency: opts.Concurrency, Requests: r.Requests, Errors: r.Errors, ErrorRate: r.ErrorRate(),
		PerSecond: r.PerSecond(), ErrorsBy: r.ByDetail, Latency: toLatencyJSON(r.Latency)}
	if opts.JSON {
		if err := ui.JSON(opts.IO.Out, res); err != nil {
			return err
		}
	} else {
		p := opts.IO.OutPalette()
		fmt.Fprintf(opts.IO.Out, "%d requests in %s (%.1f/s), %d errors (%.2f%%)\n",
			r.Requests, ui.Duration(r.Elapsed), res.PerSecond, r.Errors, 100*r.ErrorRate())
		fmt.Fprintf(opts.IO.Out, "latency p50 %s  p95 %s  p99 %s  max %s\n",
			ui.Duration(r.Latency.P50), ui.Duration(r.Latency.P95), ui.Duration(r.Latency.P99), ui.Duration(r.Latency.Max))
		printErrorsBy(opts.IO, r.ByDetail)
		if res.OK {
			fmt.Fprintln(opts.IO.Out, p.Green(fmt.Sprintf("PASS: error rate within %.2f%%", 100*opts.MaxErrRate)))
		} else {
			fmt.Fprintln(opts.IO.Out, p.Red(fmt.Sprintf("FAIL: error rate over %.2f%% (or no request completed)", 100*opts.MaxErrRate)))
		}
	}
	if !res.OK {
		return exitError{ExitFailed}
	}
	return nil
}
