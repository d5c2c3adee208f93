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

type responseTimeResult struct {
	URL      string          `json:"url"`
	OK       bool            `json:"ok"`
	TargetMS float64         `json:"target_ms"`
	Samples  int             `json:"samples"`
	Failed   int             `json:"failed"`
	Latency  latencyJSON     `json:"latency"`
	Results  []health.Result `json:"results"`
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
	rt := health.MeasureResponseTime(ctx, health.SampleOptions{URL: opts.URL, Samples: opts.Samples,
		Interval: opts.Interval, Timeout: opts.Timeout}, opts.Target)
	res := responseTimeResult{URL: appconfig.RedactURL(opts.URL), OK: rt.OK(), TargetMS: ms(opts.Target),
		Samples: len(rt.Results), Failed: rt.Failed, Latency: toLatencyJSON(rt.Latency), Results: rt.Results}
	if opts.JSON {
		if err := ui.JSON(opts.IO.Out, res); err != nil {
			return err
		}
	} else {
		printResponseTime(opts.IO, res.URL, rt)
	}
	if !res.OK {
		return exitError{ExitFailed}
	}
	return nil
}

func printResponseTime(io *ui.IO, url string, rt health.ResponseTime) {
	p, stats := io.OutPalette(), rt.Latency
	fmt.Fprintf(io.Out, "%d samples of %s\n", len(rt.Results), url)
	fmt.Fprintf(io.Out, "p50 %s  p95 %s  max %s  (target p95 <= %s)\n",
		ui.Duration(stats.P50), ui.Duration(stats.P95), ui.Duration(stats.Max), ui.Duration(rt.Target))
	printErrorsBy(io, health.FailuresByDetail(rt.Results))
	switch {
	case rt.OK():
		fmt.Fprintln(io.Out, p.Green("PASS: response time within target"))
	case rt.Failed > 0:
		fmt.Fprintln(io.Out, p.Red(fmt.Sprintf("FAIL: %d of %d requests failed", rt.Failed, len(rt.Results))))
	case rt.Interrupted():
		fmt.Fprintln(io.Out, p.Red("FAIL: interrupted before every sample was taken"))
	default:
		fmt.Fprintln(io.Out, p.Red(fmt.Sprintf("FAIL: p95 %s is over the target %s", ui.Duration(stats.P95), ui.Duration(rt.Target))))
	}
}
