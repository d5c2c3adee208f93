package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// The database procedures' commands, as journaled in their intent and shown by history.
const (
	DBRestoreCommand = "database restore"
	DBRepairCommand  = "database repair"
)

// ErrJournal matches a *JournalError: a record of the run could not be written.
var ErrJournal = errors.New("the journal could not be written")

// JournalError is a journal write that failed. A database procedure stops at the first
// one (a step that is not journaled could not be recovered after a crash) and says
// what it had changed by then.
type JournalError struct {
	Path  string
	Event string
	Err   error
}

func (e *JournalError) Error() string {
	return fmt.Sprintf("write %s to the journal %s: %v", e.Event, e.Path, e.Err)
}
func (e *JournalError) Unwrap() error { return e.Err }

// Is makes a *JournalError match ErrJournal.
func (e *JournalError) Is(target error) bool { return target == ErrJournal }

// ChangedError is a failure of a procedure with the service never stopped (exit 1, not
// 3): after a database procedure changed something, or a journal write that failed in
// a change (RunChange). Hint says what was changed (or that nothing was) and what to do.
type ChangedError struct {
	Step string
	Err  error
	Hint string
}

func (e *ChangedError) Error() string { return fmt.Sprintf("%s: %v", e.Step, e.Err) }
func (e *ChangedError) Unwrap() error { return e.Err }

// journalWriter is the journal as a database procedure uses it; tests wrap the real one
// (DBDeps.wrapJournal) to make a write fail in the middle of a run.
type journalWriter interface {
	Append(runID, event, step string, data any) (journal.Record, error)
	Close() error
}

var _ journalWriter = (*journal.Journal)(nil)

// DBDeps are the effects a database procedure needs.
type DBDeps struct {
	// NewService builds the service manager. It is called only when the procedure stops
	// the service, or must start one that an interrupted run left stopped; nil means none
	// can be built.
	NewService func(ctx context.Context) (service.Manager, error)
	// Probes replace the URL probe in the health wait after a start (tests).
	Probes []health.Prober
	Now    func() time.Time
	Events func(Event)
	// Notifier hears the run begin (after its intent) and end; nil: nobody.
	Notifier ChangeNotifier
	// wrapJournal, when set, wraps the opened journal (tests: a writer that fails).
	wrapJournal func(journalWriter) journalWriter
}

// Typed journal payloads of the database procedures.
type (
	// dbIntent is journaled first; recovery and history read it back.
	dbIntent struct {
		Command     string   `json:"command"`
		Args        []string `json:"args,omitempty"`
		User        string   `json:"user"`
		Host        string   `json:"host"`
		PID         int      `json:"pid"`
		InstallDir  string   `json:"install_dir"`
		Databases   []string `json:"databases"`
		Target      string   `json:"target,omitempty"`
		Backup      string   `json:"backup,omitempty"`
		StopService bool     `json:"stop_service,omitempty"`
		// Summary is what the run changes, for a person (report, webhooks).
		Summary string `json:"summary,omitempty"`
	}
	dbOutcome struct {
		Outcome    string   `json:"outcome"`
		Backup     string   `json:"backup,omitempty"`
		Kept       []string `json:"kept,omitempty"`
		DowntimeMS int64    `json:"downtime_ms"`
		DurationMS int64    `json:"duration_ms"`
		Error      string   `json:"error,omitempty"`
	}
)

// dbRunner is one database procedure's run: a Proc with its own effects and service.
type dbRunner struct {
	*Proc
	dd DBDeps
	fx dbEffects
	m  service.Manager
}

func newDBRunner(cfg settings.Config, command string, dryRun bool, args []string, killAt string, deps DBDeps) *dbRunner {
	p := newProc(Options{Config: cfg, Command: command, DryRun: dryRun, Args: args, KillAt: killAt},
		Deps{Now: deps.Now, Events: deps.Events, Probes: deps.Probes}, deps.wrapJournal, deps.Notifier)
	d := &dbRunner{Proc: p, dd: deps}
	d.fx = realDBEffects{}
	if dryRun {
		d.fx = dryRunDBEffects{busy: cfg.Database.BusyTimeout}
	}
	return d
}

func (d *dbRunner) intent(ctx context.Context, it dbIntent, summary string) error {
	host, _ := os.Hostname()
	it.Command, it.Args, it.User, it.Host, it.PID = d.opt.Command, d.opt.Args, whoami(), host, os.Getpid()
	it.InstallDir, it.Summary = d.res.InstallDir, summary
	if err := d.record(journal.EventIntent, "", it); err != nil {
		return &StepError{Step: "journal", Err: err, Hint: "nothing was changed; fix the journal path or its permissions ('cfrollback settings' shows where it points)"}
	}
	d.hlog.printf("%s initiated by %s (run %s)", d.opt.Command, whoami(), d.runID)
	d.notifyStarted(ctx, summary)
	return nil
}

// manager builds the service manager once.
func (d *dbRunner) manager(ctx context.Context) (service.Manager, error) {
	if d.m != nil {
		return d.m, nil
	}
	if d.dd.NewService == nil {
		return nil, errors.New("no service manager")
	}
	m, err := d.dd.NewService(ctx)
	if err != nil {
		return nil, err
	}
	d.m = m
	return m, nil
}

// startAgain starts a service this run stopped, after a failure or an interrupt: with a
// context of its own (the run's may be cancelled) bounded by service.start_timeout.
func (d *dbRunner) startAgain(ctx context.Context) error {
	if d.opt.DryRun || d.m == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Service.StartTimeout)
	defer cancel()
	if err := d.fx.Start(sctx, d.m); err != nil {
		return fmt.Errorf("start %s again: %w", d.m.Name(), err)
	}
	d.info("%s was started again", d.m.Name())
	// Best effort: when the journal is what failed, the returned error says so already.
	if d.jerr == nil {
		_ = d.record("note", "", notePayload{Message: d.m.Name() + " started again after the run failed"})
	}
	return nil
}

// waitHealthy is the health step after a start: the service manager says active and
// health.url (when set) answers, the configured number of times in a row.
func (d *dbRunner) waitHealthy(ctx context.Context) (string, any, error) {
	h := d.cfg.Health
	if d.opt.DryRun {
		return fmt.Sprintf("would wait up to %s for %d consecutive passes", h.WaitTimeout, h.Consecutive), nil, nil
	}
	_, err := health.WaitHealthy(ctx, health.WaitOptions{Interval: h.Interval, Consecutive: h.Consecutive, Timeout: h.WaitTimeout},
		CriticalProbes(d.m, h, d.dd.Probes)...)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", err, ErrUnhealthy)
	}
	d.res.DowntimeMS = d.deps.Now().Sub(d.stopAt).Milliseconds()
	return fmt.Sprintf("%s is healthy: %d consecutive passes", d.m.Name(), h.Consecutive), nil, nil
}

// recordOutcome journals the run's outcome; its failure is returned, joined to err.
func (d *dbRunner) recordOutcome(o dbOutcome, err error) error {
	if d.opt.DryRun {
		return err
	}
	o.DurationMS = d.deps.Now().Sub(d.start).Milliseconds()
	if err != nil {
		o.Error = err.Error()
	}
	if errors.Is(err, ErrJournal) {
		// The journal already failed: the outcome cannot be written either.
		return err
	}
	d.hlog.printf("%s outcome: %s", d.opt.Command, strings.ToUpper(o.Outcome))
	if jerr := d.record(journal.EventOutcome, "", o); jerr != nil {
		if err == nil {
			return jerr
		}
		return fmt.Errorf("%w (and %w)", err, jerr)
	}
	return err
}

// finish journals the outcome (recordOutcome) and tells the notifier.
func (d *dbRunner) finish(ctx context.Context, o dbOutcome, err error) error {
	err = d.recordOutcome(o, err)
	n := d.notice(o.Outcome, err)
	n.DowntimeMS, n.Backup = o.DowntimeMS, o.Backup
	d.notifyFinished(ctx, n)
	return err
}

// interruptedDB turns an operator's interrupt into the error of a database procedure.
func (d *dbRunner) interruptedDB(cause error, step string, changed string) error {
	if !d.stopped && changed == "" {
		return &StepError{Step: step, Err: fmt.Errorf("%w during %s", cause, step),
			Hint: "nothing was changed and the service was not stopped; the lock is released"}
	}
	return &StepError{Step: step, AfterStop: true, Err: fmt.Errorf("%w during %s", cause, step), Hint: changed}
}
