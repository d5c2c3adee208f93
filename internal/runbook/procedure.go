package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// Proc is one run of a procedure that changes state: the runner's lock, human log, events
// and clock, a journal writer that keeps its first failure, and the steps it ran. The
// database procedures (dbRunner) and the changes run with RunChange (config set / restore
// / reset, agents import / reset, backup mark / prune, baseline record) are built on it;
// the emergency's runner predates it.
type Proc struct {
	*runner
	jw   journalWriter
	jerr error // the first journal write that failed; nothing more is written
	wrap func(journalWriter) journalWriter
	// steps are the steps run so far, for the result.
	steps []StepResult
	// changed is what the run changed so far, in words, for a person told that the
	// journal failed after a change (see JournalError's handling in RunChange).
	changed []string
	// notifier hears the start and the end; nil: nobody.
	notifier ChangeNotifier
	summary  string
}

func newProc(opt Options, deps Deps, wrap func(journalWriter) journalWriter, n ChangeNotifier) *Proc {
	return &Proc{runner: newRunner(opt, deps), wrap: wrap, notifier: n, steps: []StepResult{}}
}

// begin takes the lock and opens the journal (neither in a dry run).
func (p *Proc) begin() (func(), error) {
	release, err := p.runner.begin()
	if err != nil {
		return nil, err
	}
	if p.j != nil {
		p.jw = p.j
		if p.wrap != nil {
			p.jw = p.wrap(p.jw)
		}
	}
	return release, nil
}

// record appends to the journal. The first failure is kept and returned for it and
// for every later record: the journal's state after a failed write is unknown.
func (p *Proc) record(event, step string, data any) error {
	if p.jw == nil {
		return nil
	}
	if p.jerr != nil {
		return p.jerr
	}
	if _, err := p.jw.Append(p.runID, event, step, data); err != nil {
		p.jerr = &JournalError{Path: p.cfg.Journal, Event: event, Err: err}
		p.warn("%v; this run stops here", p.jerr)
		return p.jerr
	}
	return nil
}

// Typed journal payloads of every Proc.
type (
	stepDonePayload struct {
		DurationMS int64  `json:"duration_ms"`
		Detail     string `json:"detail"`
		Data       any    `json:"data,omitempty"`
	}
	stepFailedPayload struct {
		DurationMS int64  `json:"duration_ms"`
		Error      string `json:"error"`
	}
	notePayload struct {
		Message string `json:"message"`
	}
)

// step runs fn as a journaled step; in a dry run fn runs too, with dry-run effects.
// A journal write that fails ends the step with that error; the caller learns from
// errors.Is(err, ErrJournal) after fn ran (done reports whether fn succeeded).
func (p *Proc) step(ctx context.Context, name string, fn func(ctx context.Context) (detail string, data any, err error)) (done bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, p.fail(name, fmt.Errorf("cancelled before %s: %w", name, context.Cause(ctx)))
	}
	p.event(Event{Kind: "step_start", Step: name})
	if err := p.record(journal.EventStepStart, name, nil); err != nil {
		return false, p.fail(name, err)
	}
	p.maybeKill(name, "start")
	t0 := time.Now()
	detail, data, err := fn(ctx)
	dur := time.Since(t0)
	if err != nil {
		p.steps = append(p.steps, StepResult{Name: name, Status: "failed", DurationMS: dur.Milliseconds(), Detail: err.Error()})
		p.event(Event{Kind: "step_failed", Step: name, Message: err.Error(), Duration: dur})
		if jerr := p.record(journal.EventStepFailed, name, stepFailedPayload{DurationMS: dur.Milliseconds(), Error: err.Error()}); jerr != nil {
			err = fmt.Errorf("%w (and %w)", err, jerr)
		}
		return false, p.fail(name, err)
	}
	status := "done"
	if p.opt.DryRun {
		status = "planned"
	}
	p.steps = append(p.steps, StepResult{Name: name, Status: status, DurationMS: dur.Milliseconds(), Detail: detail})
	p.event(Event{Kind: "step_done", Step: name, Message: detail, Duration: dur})
	if err := p.record(journal.EventStepDone, name, stepDonePayload{DurationMS: dur.Milliseconds(), Detail: detail, Data: data}); err != nil {
		return true, p.fail(name, err)
	}
	p.maybeKill(name, "done")
	return true, nil
}

// Step runs fn as a journaled step of a change (see RunChange): step_start, fn,
// step_done or step_failed. In a dry run fn runs too: it must write nothing then
// (DryRun says so).
func (p *Proc) Step(ctx context.Context, name string, fn func(ctx context.Context) (detail string, data any, err error)) error {
	_, err := p.step(ctx, name, fn)
	return err
}

// DryRun reports whether this run may write nothing.
func (p *Proc) DryRun() bool { return p.opt.DryRun }

// RunID is the run's id (a dry run has one too; it is journaled nowhere).
func (p *Proc) RunID() string { return p.runID }

// Changed records, in words, something this run changed ("wrote /opt/app/config.json").
// Should the journal fail after it, the person is told every such line.
func (p *Proc) Changed(format string, a ...any) {
	p.changed = append(p.changed, fmt.Sprintf(format, a...))
}

// Warn is progress for a person: a warning.
func (p *Proc) Warn(format string, a ...any) { p.warn(format, a...) }

// ChangeNotifier hears that a procedure began (its intent is journaled; nothing is
// changed yet) and how it ended. Both must honour ctx and never fail the run;
// internal/notify's RunNotifier sends change_started and change_complete /
// change_failed (docs/HEALTH.md, notify.ChangeStarted).
type ChangeNotifier interface {
	ChangeStarted(ctx context.Context, n Notice)
	ChangeFinished(ctx context.Context, n Notice)
}

// Notice is what a procedure's notifications say about it.
type Notice struct {
	RunID   string
	Command string // config set, agents import, database restore, ...
	Service string
	// Summary is what the run changes, for a person: "set claude.model in /opt/app/config.json".
	Summary string
	// Outcome is "" at the start, then ok, failed, unhealthy, interrupted or preflight_failed.
	Outcome    string
	Error      string
	DowntimeMS int64
	Backup     string
}

func (p *Proc) notice(outcome string, err error) Notice {
	svc := p.res.Service
	for _, alt := range []string{p.cfg.Service.Unit, p.cfg.Service.PM2Name} {
		if svc == "" {
			svc = alt
		}
	}
	n := Notice{RunID: p.runID, Command: p.opt.Command, Service: svc, Summary: p.summary, Outcome: outcome}
	if err != nil {
		n.Error = appconfig.RedactString(err.Error())
	}
	return n
}

// notifyStarted tells the notifier the run began (not in a dry run).
func (p *Proc) notifyStarted(ctx context.Context, summary string) {
	p.summary = summary
	if p.notifier != nil && !p.opt.DryRun {
		p.notifier.ChangeStarted(ctx, p.notice("", nil))
	}
}

// notifyFinished tells the notifier how the run ended (not in a dry run, and not for a
// run that never began: it changed nothing and has no run id in the journal).
func (p *Proc) notifyFinished(ctx context.Context, n Notice) {
	if p.notifier != nil && !p.opt.DryRun && p.summary != "" {
		p.notifier.ChangeFinished(ctx, n)
	}
}

// ChangeSpec is one change run with RunChange.
type ChangeSpec struct {
	Config  settings.Config
	Command string // "config set", as history shows it
	DryRun  bool
	Args    []string // the command line, redacted before it is journaled
	// Summary says what the run changes, for history's readers and the webhooks.
	Summary string
	// Intent is the command's own typed intent (journaled under "change").
	Intent any
}

// ChangeDeps are a change's effects.
type ChangeDeps struct {
	Now      func() time.Time
	Events   func(Event)
	Notifier ChangeNotifier
	// wrapJournal, when set, wraps the opened journal (tests: a writer that fails).
	wrapJournal func(journalWriter) journalWriter
}

// ChangeResult is how a change ended; the cli prints it beside the command's own result.
type ChangeResult struct {
	RunID   string `json:"run_id,omitempty"`
	Command string `json:"command"`
	DryRun  bool   `json:"dry_run"`
	// Outcome: ok, planned (dry run), failed, preflight_failed (nothing changed), interrupted.
	Outcome    string       `json:"outcome"`
	Steps      []StepResult `json:"steps"`
	DurationMS int64        `json:"duration_ms"`
	Journal    string       `json:"journal,omitempty"`
	Error      string       `json:"error,omitempty"`
}

// Journal payloads of a change.
type (
	changeIntent struct {
		Command string   `json:"command"`
		Args    []string `json:"args,omitempty"`
		User    string   `json:"user"`
		Host    string   `json:"host"`
		PID     int      `json:"pid"`
		Summary string   `json:"summary"`
		Change  any      `json:"change,omitempty"`
	}
	changeOutcome struct {
		Outcome    string   `json:"outcome"`
		DurationMS int64    `json:"duration_ms"`
		Error      string   `json:"error,omitempty"`
		Changed    []string `json:"changed,omitempty"`
		Change     any      `json:"change,omitempty"`
	}
)

// RunChange runs body as a procedure: the lock, an intent, change_started, body's
// steps (Proc.Step), an outcome with what body returns, change_complete or
// change_failed. A dry run goes through the same code without the lock and the
// journal and notifies nobody; body is told by Proc.DryRun and writes nothing.
//
// A journal write that fails ends the run: before any change it is an ErrPreflight
// ("nothing was changed"); after one it is a *ChangedError whose hint lists what
// had been changed (Proc.Changed), so the person knows what the journal lacks.
func RunChange(ctx context.Context, spec ChangeSpec, deps ChangeDeps, body func(ctx context.Context, p *Proc) (outcome any, err error)) (*ChangeResult, error) {
	p := newProc(Options{Config: spec.Config, Command: spec.Command, DryRun: spec.DryRun, Args: appconfig.RedactArgs(spec.Args)},
		Deps{Now: deps.Now, Events: deps.Events}, deps.wrapJournal, deps.Notifier)
	res := &ChangeResult{Command: spec.Command, DryRun: spec.DryRun, Steps: p.steps}
	release, err := p.begin()
	var se *StepError
	if errors.As(err, &se) && (se.Step == "journal" || se.Step == "lock") {
		// the journal cannot be opened, or the lock file is refused (a symlink, a FIFO,
		// another owner's): nothing was changed, and the command's own exit status for a
		// refusal (1, docs/EXIT_CODES.md) says so, not an emergency's preflight (3). A lock
		// another run holds is not a StepError: it stays exit 6.
		err = &ChangedError{Step: se.Step, Err: fmt.Errorf("%w; nothing was changed", se.Err), Hint: se.Hint}
	}
	if err != nil {
		res.Outcome, res.Error = "preflight_failed", err.Error()
		return res, err
	}
	defer release()
	res.RunID, res.Journal = p.runID, p.res.Journal
	host, _ := os.Hostname()
	if err := p.record(journal.EventIntent, "", changeIntent{Command: spec.Command, Args: p.opt.Args, User: whoami(), Host: host,
		PID: os.Getpid(), Summary: spec.Summary, Change: spec.Intent}); err != nil {
		err = p.journalFailed(err)
		res.Outcome, res.Error = "preflight_failed", err.Error()
		return res, err
	}
	if !spec.DryRun {
		p.hlog.printf("%s initiated by %s (run %s): %s", spec.Command, whoami(), p.runID, spec.Summary)
	}
	p.notifyStarted(ctx, spec.Summary)
	out, err := body(ctx, p)
	err = p.endChange(ctx, res, out, err)
	return res, err
}

// endChange journals the outcome, says what was changed when the journal failed, and
// notifies.
func (p *Proc) endChange(ctx context.Context, res *ChangeResult, out any, err error) error {
	res.Steps = p.steps
	res.DurationMS = p.deps.Now().Sub(p.start).Milliseconds()
	res.Outcome = "ok"
	switch {
	case p.opt.DryRun && err == nil:
		res.Outcome = "planned"
	case Interruption(ctx) != nil && err != nil:
		res.Outcome = "interrupted"
	case err != nil && len(p.changed) == 0:
		res.Outcome = "preflight_failed"
	case err != nil:
		res.Outcome = "failed"
	}
	if !p.opt.DryRun && !errors.Is(err, ErrJournal) {
		o := changeOutcome{Outcome: res.Outcome, DurationMS: res.DurationMS, Changed: p.changed, Change: out}
		if err != nil {
			o.Error = appconfig.RedactString(err.Error())
		}
		p.hlog.printf("%s outcome: %s", p.opt.Command, strings.ToUpper(res.Outcome))
		if jerr := p.record(journal.EventOutcome, "", o); jerr != nil {
			if err == nil {
				err = jerr
			} else {
				err = fmt.Errorf("%w (and %w)", err, jerr)
			}
		}
	}
	var se *StepError
	switch {
	case errors.Is(err, ErrJournal):
		err = p.journalFailed(err)
		if res.Outcome == "ok" {
			res.Outcome = "failed"
		}
	case errors.As(err, &se):
		// a step's own failure: the command's error as it is (its message and exit
		// status), the step is in the result and the journal
		err = se.Err
	}
	if err != nil {
		res.Error = err.Error()
	}
	n := p.notice(res.Outcome, err)
	p.notifyFinished(ctx, n)
	return err
}

// journalFailed is the error a person reads when the journal could not be written in the
// middle of a change: what was changed by then, or that nothing was (exit 1 either way:
// the service was never stopped).
func (p *Proc) journalFailed(err error) error {
	var se *StepError
	if errors.As(err, &se) && errors.Is(se.Err, ErrJournal) {
		err = se.Err
	}
	if len(p.changed) == 0 {
		return &ChangedError{Step: "journal", Err: fmt.Errorf("%w; nothing was changed", err),
			Hint: "fix the journal path or its permissions ('cfrollback settings' shows where it points; 'cfrollback journal verify' checks it), then run the command again"}
	}
	return &ChangedError{Step: "journal", Err: err,
		Hint: "the change WAS made but the journal does not record it all: " + strings.Join(p.changed, "; ") +
			". Fix the journal path or its permissions ('cfrollback journal verify'); 'cfrollback history' lacks the end of run " + p.runID}
}
