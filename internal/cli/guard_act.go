package cli

import (
	"context"
	"time"

	"github.com/cfrollback/cfrollback/internal/guard"
	"github.com/cfrollback/cfrollback/internal/notify"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// EmergencyWiring is the emergency procedure with the Deps the emergency
// command gives it: the service manager of the settings, progress on stderr,
// rollback_started / rollback_complete to notify.webhooks (runDeps, as every
// rollback-type command). guard and assess --act use it.
type EmergencyWiring struct {
	IO     *ui.IO
	JSON   bool
	Config settings.Config
	// NewService builds the service manager; tests replace it.
	NewService func(ctx context.Context, cfg settings.Config) (service.Manager, error)
}

// Run runs the emergency procedure with opt (Config is filled in); the
// notifications never change its outcome. The outcome's notification goes out
// at the outcome, before the standby refresh that follows it (runDeps);
// atOutcome (may be nil) is called there too, first, and must not keep the result.
func (w EmergencyWiring) Run(ctx context.Context, opt runbook.Options, atOutcome func(*runbook.Result)) (*runbook.Result, error) {
	m, err := w.NewService(ctx, w.Config)
	if err != nil {
		return nil, err
	}
	opt.Config = w.Config
	deps, n := runDeps(w.IO, w.JSON, w.Config, m)
	if atOutcome != nil {
		tell := deps.Outcome
		deps.Outcome = func(ctx context.Context, res *runbook.Result) {
			atOutcome(res)
			tell(ctx, res)
		}
	}
	res, err := runbook.Emergency(ctx, opt, deps)
	n.Finished(ctx, res) // refused, or interrupted after its stop: no outcome was recorded
	return res, err
}

// sendEvent sends one event to notify.webhooks and warns about the ones not delivered.
func sendEvent(ctx context.Context, io *ui.IO, cfg settings.Config, ev notify.Event) {
	if len(cfg.Notify.Webhooks) == 0 {
		return
	}
	n := notify.New(cfg.Notify, io.ErrOut, "cfrollback/"+Version)
	for _, d := range n.Send(ctx, cfg.Notify.Webhooks, ev) {
		if !d.OK {
			io.Warnf("notification %s (%s) of %s not delivered after %d attempts: %s", d.Name, d.URL, ev.Event, d.Attempts, d.Error)
		}
	}
}

// guardJournal appends guard's records to the journal, under the run lock.
func guardJournal(cfg settings.Config) func(ctx context.Context, runID string, data any) error {
	return func(ctx context.Context, runID string, data any) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return runbook.AppendLocked(ctx, cfg, "cfrollback guard", runID, guard.JournalEvent, data)
	}
}
