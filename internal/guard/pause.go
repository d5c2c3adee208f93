package guard

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cfrollback/cfrollback/internal/notify"
)

// PauseRequest is `guard pause` (Pause true) or `guard resume` (false).
type PauseRequest struct {
	StateDir string
	Service  string
	Pause    bool
	// For is how long the pause holds; 0: until resume.
	For    time.Duration
	By     string
	Reason string
	DryRun bool
	Now    time.Time
}

// PauseDeps are the effects of a pause change.
type PauseDeps struct {
	Journal func(ctx context.Context, runID string, data any) error
	// Notify sends ev to the webhooks and waits for it.
	Notify func(ctx context.Context, ev notify.Event)
}

// PauseResult is what a pause change did (or, dry run, would do).
type PauseResult struct {
	Before  Pause  `json:"before"`
	After   Pause  `json:"after"`
	Changed bool   `json:"changed"`
	DryRun  bool   `json:"dry_run,omitempty"`
	Message string `json:"message"`
}

// SetPause pauses or resumes guard: the pause file is written durably (the
// running guard reads it at its next evaluation), then the change is
// journaled and notified (guard_paused, guard_resumed). A dry run reads and
// says what it would write, and writes, journals and sends nothing.
func SetPause(ctx context.Context, req PauseRequest, deps PauseDeps) (PauseResult, error) {
	before, err := ReadPause(req.StateDir)
	if err != nil {
		return PauseResult{}, fmt.Errorf("%w; nothing was changed", err)
	}
	res := PauseResult{Before: before, DryRun: req.DryRun}
	event := notify.GuardResumed
	if req.Pause {
		event = notify.GuardPaused
		res.After = Pause{Paused: true, Since: req.Now.UTC(), By: req.By, Reason: req.Reason}
		if req.For > 0 {
			res.After.Until = req.Now.Add(req.For).UTC()
		}
		res.Message = "guard paused " + res.After.String() + ": it keeps watching, and notifies what it would have done instead of rolling back"
	} else {
		res.After = Pause{}
		res.Message = "guard resumed: it rolls back again when its policy says so"
		if !before.Active(req.Now) {
			res.Message = "guard was not paused; nothing to resume"
		}
	}
	res.Changed = req.Pause || before.Active(req.Now)
	if req.DryRun || !res.Changed {
		return res, nil
	}
	if err := WritePause(req.StateDir, res.After); err != nil {
		return PauseResult{}, fmt.Errorf("write the pause file: %w; nothing was changed", err)
	}
	host, _ := os.Hostname()
	run := fmt.Sprintf("guard-%s-%s-%d", event[len("guard_"):], req.Now.UTC().Format("20060102T150405"), os.Getpid())
	if deps.Journal != nil {
		if err := deps.Journal(ctx, run, map[string]any{"event": event, "before": before, "after": res.After, "host": host}); err != nil {
			res.Message += fmt.Sprintf(" (not journaled: %v)", err)
		}
	}
	if deps.Notify != nil {
		deps.Notify(ctx, notify.ByHand(event, req.Service, req.Service+" on "+host+": "+res.Message, nil))
	}
	return res, nil
}
