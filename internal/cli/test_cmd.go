package cli

import (
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// The hard caps of the measuring commands (internal/health says why).
const (
	maxSamples     = health.MaxSamples
	maxLoadTime    = health.MaxLoadTime
	maxConcurrency = health.MaxConcurrency
	maxLoadReqs    = health.MaxLoadRequests
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
