package runbook

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// BaselineRecordCommand is 'baseline record', as journaled in its intent.
const BaselineRecordCommand = "baseline record"

// baselineChange is journaled under "change": the baseline to record (intent) and,
// in the outcome, the one it replaced (nil: there was none), so that no baseline is
// ever lost.
type baselineChange struct {
	Path     string           `json:"path"`
	Baseline *assess.Baseline `json:"baseline,omitempty"`
	Replaced *assess.Baseline `json:"replaced,omitempty"`
}

// RecordBaseline stores b, measured by the caller while the service runs (read-only and
// seconds long: measured before the lock so that no emergency waits behind it), as a
// procedure (RunChange): lock, intent, the write step, outcome. A dry run writes nothing.
func RecordBaseline(ctx context.Context, cfg settings.Config, b assess.Baseline, dryRun bool, args []string, deps ChangeDeps) (runID string, err error) {
	path := assess.BaselinePath(cfg.StateDir)
	summary := fmt.Sprintf("record the baseline in %s (p95 %.1fms over %d requests)", path, b.Latency.P95MS, b.Latency.Count)
	cr, err := RunChange(ctx, ChangeSpec{Config: cfg, Command: BaselineRecordCommand, DryRun: dryRun, Args: args, Summary: summary,
		Intent: baselineChange{Path: path, Baseline: &b}}, deps,
		func(ctx context.Context, p *Proc) (any, error) {
			out := baselineChange{Path: path}
			old, err := assess.ReadBaseline(cfg.StateDir)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				p.Warn("the baseline being replaced cannot be read (%v); it is not kept in the journal", err)
			}
			out.Replaced = old
			err = p.Step(ctx, "write", func(context.Context) (string, any, error) {
				if p.DryRun() {
					return "would write " + path, nil, nil
				}
				if err := assess.WriteBaseline(cfg.StateDir, b); err != nil {
					return "", nil, fmt.Errorf("record baseline: %w", err)
				}
				p.Changed("wrote the baseline %s (the one it replaced is in the journal's outcome)", path)
				return "wrote " + path, nil, nil
			})
			return out, err
		})
	if cr != nil && !dryRun {
		runID = cr.RunID
	}
	return runID, err
}
