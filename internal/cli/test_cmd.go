package cli

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// Hard caps of the test commands: they run against production at 3am, so a
// typo in a flag must not turn into a denial of service.
const (
	maxSamples     = 1000
	maxLoadTime    = 10 * time.Minute
	maxConcurrency = 50
	maxLoadReqs    = 100_000
)

type latencyJSON struct {
	Count  int     `json:"count"`
	MinMS  float64 `json:"min_ms"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P95MS  float64 `json:"p95_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

func toLatencyJSON(s health.LatencyStats) latencyJSON {
	return latencyJSON{Count: s.Count, MinMS: ms(s.Min), MeanMS: ms(s.Mean), P50MS: ms(s.P50), P95MS: ms(s.P95),
		P99MS: ms(s.P99), MaxMS: ms(s.Max)}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type responseTimeResult struct {
	URL      string          `json:"url"`
	OK       bool            `json:"ok"`
	TargetMS float64         `json:"target_ms"`
	Samples  int             `json:"samples"`
	Failed   int             `json:"failed"`
	Latency  latencyJSON     `json:"latency"`
	Results  []health.Result `json:"results"`
}

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

type responseTimeOptions struct {
	IO       *ui.IO
	JSON     bool
	URL      string
	Target   time.Duration
	Samples  int
	Interval time.Duration
	Timeout  time.Duration
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

func newTestCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Measure the service: response time, bounded load",
		Long: `Measure the running service through its health URL (health.url, or --url).
These send real requests: response-time a few, load many but bounded.`,
		Example: `  cfrollback test response-time --target 2000ms --samples 10
  cfrollback test load --duration 60s --concurrency 5`,
	}
	cmd.AddCommand(newTestResponseTimeCmd(f), newTestLoadCmd(f))
	cmd.AddCommand(newTestAPICmd(f))
	cmd.AddCommand(newTestBackupRestoreCmd(f))
	cmd.AddCommand(newTestWebhooksCmd(f))
	return cmd
}

// testURL is --url, else health.url.
func testURL(f *Factory, flagURL string) (string, time.Duration, error) {
	cfg, err := f.loadConfig()
	if err != nil {
		return "", 0, err
	}
	u := flagURL
	if u == "" {
		u = cfg.Health.URL
	}
	if u == "" {
		return "", 0, usageErrorf("no URL to test: health.url is empty; pass --url http://127.0.0.1:PORT/health")
	}
	return u, cfg.Health.Timeout, nil
}

func newTestResponseTimeCmd(f *Factory) *cobra.Command {
	opts := &responseTimeOptions{}
	var url string
	cmd := &cobra.Command{
		Use:   "response-time",
		Short: "Latency of the health URL: p50/p95/max over a few samples",
		Long: `GET the health URL --samples times, one after another with --interval between,
and report p50, p95 and max latency (nearest-rank percentiles: always a latency
that was measured). Fails when p95 is over --target or any request failed
(non-2xx or no answer). At most ` + fmt.Sprint(maxSamples) + ` samples.` +
			exitStatusHelp("0  p95 within --target and every request answered 2xx",
				"1  p95 over --target, or a request failed",
				"2  bad usage (no URL, samples out of range)"),
		Example: `  cfrollback test response-time --target 2000ms --samples 10
  cfrollback test response-time --url http://127.0.0.1:3000/api/status --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Samples < 1 || opts.Samples > maxSamples {
				return usageErrorf("--samples %d: give 1 to %d", opts.Samples, maxSamples)
			}
			if opts.Target <= 0 {
				return usageErrorf("--target must be a positive duration such as 2000ms")
			}
			u, timeout, err := testURL(f, url)
			if err != nil {
				return err
			}
			opts.IO, opts.JSON, opts.URL = f.IO, f.JSON, u
			if opts.Timeout <= 0 {
				opts.Timeout = max(timeout, opts.Target)
			}
			return runResponseTime(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&url, "url", "", "URL to measure (default health.url)")
	durationVar(fl, &opts.Target, "target", 2*time.Second, "p95 latency that passes")
	fl.IntVar(&opts.Samples, "samples", 10, "number of requests")
	durationVar(fl, &opts.Interval, "interval", 100*time.Millisecond, "pause between requests")
	durationVar(fl, &opts.Timeout, "timeout", 0, "per-request timeout (default the larger of health.timeout and --target)")
	return cmd
}

func runResponseTime(ctx context.Context, opts *responseTimeOptions) error {
	results := health.SampleLatency(ctx, health.SampleOptions{URL: opts.URL, Samples: opts.Samples,
		Interval: opts.Interval, Timeout: opts.Timeout})
	lat := make([]time.Duration, 0, len(results))
	failed := 0
	for _, r := range results {
		lat = append(lat, r.Duration)
		if !r.OK {
			failed++
		}
	}
	stats := health.Summarise(lat)
	res := responseTimeResult{URL: appconfig.RedactURL(opts.URL), TargetMS: ms(opts.Target), Samples: len(results), Failed: failed,
		Latency: toLatencyJSON(stats), Results: results}
	res.OK = failed == 0 && len(results) == opts.Samples && stats.P95 <= opts.Target
	if opts.JSON {
		if err := ui.JSON(opts.IO.Out, res); err != nil {
			return err
		}
	} else {
		p := opts.IO.OutPalette()
		fmt.Fprintf(opts.IO.Out, "%d samples of %s\n", len(results), res.URL)
		fmt.Fprintf(opts.IO.Out, "p50 %s  p95 %s  max %s  (target p95 <= %s)\n",
			ui.Duration(stats.P50), ui.Duration(stats.P95), ui.Duration(stats.Max), ui.Duration(opts.Target))
		printFailures(opts.IO, results)
		switch {
		case res.OK:
			fmt.Fprintln(opts.IO.Out, p.Green("PASS: response time within target"))
		case failed > 0:
			fmt.Fprintln(opts.IO.Out, p.Red(fmt.Sprintf("FAIL: %d of %d requests failed", failed, len(results))))
		case len(results) < opts.Samples:
			fmt.Fprintln(opts.IO.Out, p.Red("FAIL: interrupted before every sample was taken"))
		default:
			fmt.Fprintln(opts.IO.Out, p.Red(fmt.Sprintf("FAIL: p95 %s is over the target %s", ui.Duration(stats.P95), ui.Duration(opts.Target))))
		}
	}
	if !res.OK {
		return exitError{ExitFailed}
	}
	return nil
}

// redactURL hides a password and secret-looking query values in the URL.

// printFailures groups failed requests by what went wrong.
func printFailures(io *ui.IO, results []health.Result) {
	by := map[string]int{}
	for _, r := range results {
		if !r.OK {
			by[r.Detail]++
		}
	}
	printErrorsBy(io, by)
}

func printErrorsBy(io *ui.IO, by map[string]int) {
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return by[keys[i]] > by[keys[j]] || by[keys[i]] == by[keys[j]] && keys[i] < keys[j]
	})
	for _, k := range keys {
		fmt.Fprintf(io.Out, "  %5d x %s\n", by[k], k)
	}
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
	res := loadResult{URL: appconfig.RedactURL(opts.URL), DurationMS: r.Elapsed.Milliseconds(), Concurrency: opts.Concurrency,
		Requests: r.Requests, Errors: r.Errors, ErrorRate: r.ErrorRate(), ErrorsBy: r.ByDetail, Latency: toLatencyJSON(r.Latency)}
	if r.Elapsed > 0 {
		res.PerSecond = float64(r.Requests) / r.Elapsed.Seconds()
	}
	res.OK = r.Requests > 0 && r.ErrorRate() <= opts.MaxErrRate
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
