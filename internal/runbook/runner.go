package runbook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// Deps are the effects a run needs; the cli passes real ones, tests may not.
type Deps struct {
	Service service.Manager
	// Probes run after the service-active check while waiting for health;
	// nil means an HTTP probe of health.url when it is set.
	Probes []health.Prober
	Now    func() time.Time
	Events func(Event)
	// Notifier hears that a rollback (emergency, rollback --to, --to-version) or
	// an undo passed its preflight and stops the service now (webhooks:
	// internal/notify); nil: nobody.
	Notifier Notifier
	// Outcome, when set, hears the run's outcome once it is journaled, before what the run
	// does after it (the standby refresh after a rollback: seconds on a large install), so
	// the webhooks learn that the service is back without waiting for that. It runs on the
	// run's goroutine and must not keep res: the refresh goes on to fill it in. A run that
	// records no outcome (refused, interrupted after its stop) does not call it.
	Outcome func(ctx context.Context, res *Result)
	// wrapJournal, when set, wraps the opened journal (tests: a writer that fails).
	wrapJournal func(journalWriter) journalWriter
}

// notifyStarting tells the Notifier that the run stops the service now (not in a dry run).
func (r *runner) notifyStarting(ctx context.Context) {
	if r.deps.Notifier != nil && !r.opt.DryRun {
		r.deps.Notifier.Starting(ctx, r.res)
	}
}

// Notifier is told when a run is about to stop the service. It must return
// at once (send in the background) and must not keep res; its failures are
// its own and never the run's.
type Notifier interface {
	Starting(ctx context.Context, res *Result)
}

// Options are one invocation's choices.
type Options struct {
	Config     settings.Config
	Command    string // emergency | rollback | undo
	BackupPath string // explicit --backup
	// StandbyBackup, for a standby refresh, is the backup to keep warm, of an install known
	// to be healthy: the one backup create just wrote, or the one a rollback just restored
	// and saw healthy. The next emergency comes after the next deploy and takes it (it is
	// then the newest backup from before that deploy), though an emergency now would pass
	// it over for holding the version that runs. Marks and a damaged manifest still apply.
	StandbyBackup string
	DryRun        bool
	// WithData also rolls the preserved databases back to the backup's own copies
	// instead of carrying the live ones over (those stay in the failed install).
	WithData bool
	Args     []string
	// KillAt is a test hook (CFROLLBACK_TEST_KILL_AT): the process SIGKILLs
	// itself there so crash recovery can be tested for real. step:start and
	// step:done are step boundaries; extract:N is after the Nth entry
	// written into staging; swap:between is between the two renames of the
	// swap's fallback (forced with CFROLLBACK_TEST_FORCE_TWO_RENAMES=1).
	KillAt string
}

// runner is the state of one run.
type runner struct {
	opt    Options
	cfg    settings.Config
	deps   Deps
	res    *Result
	j      journalWriter
	hlog   *humanLog
	fx     effects
	runID  string
	start  time.Time
	stopAt time.Time
	// journalAside is where a damaged journal was moved this run.
	journalAside string
	// journalUnread is what recovery did not read of the journals (checkUnread, after the
	// outcome).
	journalUnread []unreadPart
	// stopped is set once the stop step has begun: from then on a failure
	// is exit 4, not exit 3.
	stopped bool
	// background is closed when a file operation left running by an interrupt
	// (interruptibly) has ended; nil when none was left.
	background chan struct{}
	// finishFn, when set, records the outcome instead of finish (procedures other than a
	// rollback); after runs once the outcome is recorded and the run succeeded, after the
	// lock is let go (the standby refresh after a rollback, which takes it itself).
	finishFn func(error)
	after    func(context.Context)
	// quietSkips: a backup passed over is news, not a warning (the standby's refresh).
	quietSkips bool
	// stepPrefix names the steps of a procedure run inside another run's journal
	// ("standby_" for the refresh after a rollback).
	stepPrefix string
	// lookAhead is the emergency's read of the service's state, begun before its intent
	// record; preflight takes it (nil: preflight reads the state itself).
	lookAhead *pendingLook
	// seen is the run's latest read of the service after which nothing of the run could
	// have changed its state: preflight's status until the stop, the stop's confirmation until
	// the start. The manager takes it for its own check before the stop or start command
	// when it is fresh enough (service.StopInformed); zero when the run knows nothing.
	seen service.Seen
}

func newRunner(opt Options, deps Deps) *runner {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Events == nil {
		deps.Events = func(Event) {}
	}
	now := deps.Now()
	id := newRunID(now)
	r := &runner{opt: opt, cfg: opt.Config, deps: deps, runID: id, start: now}
	r.res = &Result{
		RunID: id, Command: opt.Command, DryRun: opt.DryRun, InstallDir: filepath.Clean(opt.Config.InstallDir),
		Started: now, Skipped: []SkippedBackup{}, Steps: []StepResult{},
	}
	if deps.Service != nil {
		r.res.Service = deps.Service.Name()
	}
	if opt.DryRun {
		r.fx = &dryRunEffects{r: r}
	} else {
		// Test hook, like KillAt: a filesystem that can exchange still
		// takes the fallback, so a kill between its renames can be tested.
		r.fx = realEffects{exchange: install.ExchangeOptions{
			TwoRenames:     os.Getenv("CFROLLBACK_TEST_FORCE_TWO_RENAMES") == "1",
			BetweenRenames: func() { r.maybeKill("swap", "between") },
		}}
	}
	return r
}

func newRunID(t time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return t.Format(settings.TimestampLayout) + "-" + hex.EncodeToString(b)
}

// begin takes the lock and opens the journal and the human log; dry runs do
// neither, because they must not change anything.
func (r *runner) begin() (release func(), err error) {
	if r.opt.DryRun {
		return func() {}, nil
	}
	host, _ := os.Hostname()
	lk, err := lock.Acquire(r.cfg.Lock, lock.Holder{
		PID: os.Getpid(), Host: host, Command: "cfrollback " + r.opt.Command, RunID: r.runID, Since: r.deps.Now(),
	})
	if err != nil && !errors.Is(err, lock.ErrLocked) {
		// a lock file or dir refused (a symlink, another owner, writable by others) or
		// not creatable: nothing was changed, as for any preflight failure (exit 3)
		return nil, &StepError{Step: "lock", Err: err,
			Hint: "remove what is at the lock path or set lock: to a path in a dir only root can write (default /run/cfrollback/cfrollback.lock)"}
	}
	if err != nil {
		return nil, err
	}
	j, err := journal.Open(r.cfg.Journal)
	if errors.Is(err, journal.ErrCorrupt) {
		// A damaged journal must not block a P0 rollback: keep it (renamed,
		// nothing lost), start a new one, and still read the old one for an
		// interrupted run.
		aside, aerr := journal.SetAside(r.cfg.Journal, r.deps.Now())
		if aerr == nil {
			r.journalAside = aside
			r.warn("the journal %s is damaged (%v); it was kept as %s and a new journal started. 'cfrollback journal verify' on the kept file shows what is wrong",
				r.cfg.Journal, err, aside)
			j, err = journal.Open(r.cfg.Journal)
		}
	}
	if err != nil {
		_ = lk.Release()
		return nil, &StepError{Step: "journal", Err: fmt.Errorf("open journal %s: %w", r.cfg.Journal, err),
			Hint: "set journal: to a writable path (cfrollback settings shows where it points)"}
	}
	r.j = j
	if r.deps.wrapJournal != nil {
		r.j = r.deps.wrapJournal(j)
	}
	r.res.Journal = r.cfg.Journal
	r.hlog = openHumanLog(r.cfg, r.start, r.deps.Events)
	if r.hlog != nil {
		r.res.HumanLog = r.hlog.path
	}
	return func() {
		r.hlog.close()
		_ = j.Close()
		if r.background != nil {
			select {
			case <-r.background:
			default:
				// A file operation is still writing into staging: keep the lock
				// until the process exits (the kernel frees it then), so that no
				// run starts recovering this one while it writes.
				return
			}
		}
		_ = lk.Release()
	}, nil
}

// interruptibly runs fn, a file operation that takes no context, and returns as soon as the
// operator interrupts the run: fn goes on until the process exits a moment later, as under a
// kill, and what it wrote is in staging, which the next run removes. The lock is kept until
// then (see begin).
func interruptibly[T any](ctx context.Context, r *runner, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case res := <-ch:
		return res.v, res.err
	case <-ctx.Done():
		if c := Interruption(ctx); c != nil {
			r.background = done
			var zero T
			return zero, c
		}
		res := <-ch
		return res.v, res.err
	}
}

// run takes the lock, runs body and records its outcome.
func (r *runner) run(ctx context.Context, body func(context.Context) error) (*Result, error) {
	release, err := r.begin()
	if err != nil {
		return r.refuse(err)
	}
	defer func() { release() }()
	err = body(ctx)
	if cause := Interruption(ctx); cause != nil && err != nil {
		err = r.interrupted(cause, err)
		if r.stopped && !r.opt.DryRun {
			// As a kill would: no outcome, so the next run finds this one
			// unfinished and resumes it (completes it or undoes its staging).
			r.res.Outcome = "interrupted"
			r.res.Error = err.Error()
			r.res.DurationMS = r.deps.Now().Sub(r.start).Milliseconds()
			r.res.Next = []string{"cfrollback history", r.resumeCommand()}
			_ = r.record("note", "", map[string]string{"message": err.Error() + "; no outcome recorded: the next run resumes this one, as after a kill"})
			r.hlog.printf("%s INTERRUPTED (%v); run %q to resume", r.opt.Command, cause, r.resumeCommand())
			return r.res, err
		}
	}
	if r.finishFn != nil {
		r.finishFn(err)
	} else {
		r.finish(err)
	}
	checkUnread(r.warn, r.journalUnread)
	if r.deps.Outcome != nil || (err == nil && r.after != nil) {
		// The lock is let go first: the outcome's webhooks do not hold it, and the standby
		// refresh takes it only for its short steps.
		release()
		release = func() {}
	}
	if r.deps.Outcome != nil {
		r.deps.Outcome(ctx, r.res)
	}
	if err == nil && r.after != nil {
		r.after(ctx)
	}
	return r.res, err
}

// interrupted turns the error of a run the operator stopped (SIGINT, SIGTERM) into one that
// says so and where. Before the stop nothing was changed (exit 3); after it the run stopped
// where it was, as a kill would, and the next run resumes it (exit 4, never 5: a health
// wait cut short says nothing about the service's health).
func (r *runner) interrupted(cause, err error) error {
	step, inner := "run", err
	var se *StepError
	if errors.As(err, &se) {
		step, inner = se.Step, se.Err
	}
	why := fmt.Sprintf(" (%v)", inner)
	switch {
	case inner.Error() == context.Canceled.Error(), errors.Is(inner, ErrInterrupted) && inner.Error() == cause.Error():
		why = ""
	case errors.Is(inner, ErrUnhealthy) || errors.Is(inner, health.ErrUnhealthy):
		why = " (the wait was cut short: it says nothing about the service's health)"
	}
	if r.stopped {
		return &StepError{Step: step, AfterStop: true,
			Err:  fmt.Errorf("%w during %s, after the service was stopped%s", cause, step, why),
			Hint: "the run stopped where it was, as a kill would; the service may be down. Run '" + r.resumeCommand() + "' again (the same one): it reads the journal and resumes this run"}
	}
	return &StepError{Step: step,
		Err:  fmt.Errorf("%w during %s%s", cause, step, why),
		Hint: "nothing was changed and the service was not stopped; the lock is released"}
}

// resumeCommand is what resumes this run after it was interrupted: the same command again
// (emergency also resumes an interrupted emergency or backup rollback).
func (r *runner) resumeCommand() string {
	switch r.opt.Command {
	case VersionCommand:
		return "cfrollback rollback --to-version VERSION --yes"
	case "undo":
		return "cfrollback undo RUN_ID"
	}
	return "cfrollback emergency"
}

// refuse ends a run that could not begin: nothing was changed.
func (r *runner) refuse(err error) (*Result, error) {
	r.res.Outcome = "preflight_failed"
	r.res.Error = err.Error()
	return r.res, err
}

func (r *runner) event(e Event) {
	r.deps.Events(e)
	r.hlog.event(e)
}

func (r *runner) warn(format string, a ...any) {
	r.event(Event{Kind: "warn", Message: fmt.Sprintf(format, a...)})
}

func (r *runner) info(format string, a ...any) {
	r.event(Event{Kind: "info", Message: fmt.Sprintf(format, a...)})
}

// stepDoneData and stepFailedData are the payloads of step_done and step_failed
// (journal.Runs reads duration_ms and error by these names).
type stepDoneData struct {
	DurationMS int64  `json:"duration_ms"`
	Detail     string `json:"detail"`
	Data       any    `json:"data,omitempty"`
}

type stepFailedData struct {
	Error      string `json:"error"`
	DurationMS int64  `json:"duration_ms"`
}

// outcomeData is a rollback-type run's outcome record; a run that finishes or abandons
// another (recovery) writes one for it with Outcome naming itself.
type outcomeData struct {
	Outcome    string `json:"outcome"`
	Backup     string `json:"backup,omitempty"`
	FailedDir  string `json:"failed_dir,omitempty"`
	DowntimeMS int64  `json:"downtime_ms,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	Error      string `json:"error,omitempty"`
}

// closeRun writes another run's outcome (recovery finished, abandoned or superseded it). A
// write that fails is not the current run's failure, but it is said: history would show
// that run as interrupted still, and the next run would take it up again.
func (r *runner) closeRun(runID string, out outcomeData) {
	if r.j == nil {
		return
	}
	if _, err := r.j.Append(runID, journal.EventOutcome, "", out); err != nil {
		r.journalFailed(fmt.Errorf("the outcome of run %s (%s) was not journaled: %w", runID, out.Outcome, err))
	}
}

// journalFailed records a journal write that failed after the change was made: the run
// keeps its outcome and exit code (the service is what it is), the result and a warning
// say what the journal lacks.
func (r *runner) journalFailed(err error) {
	if r.res.JournalError == "" {
		r.res.JournalError = err.Error()
	} else {
		r.res.JournalError += "; " + err.Error()
	}
	r.warn("%v: 'cfrollback history' shows that run as interrupted, and the next emergency takes it up again (fix the journal first: 'cfrollback journal verify')", err)
}

// record appends to the journal. A journal that cannot be written stops the
// run: a step that is not journaled could not be resumed after a crash.
func (r *runner) record(event, step string, data any) error {
	if r.j == nil {
		return nil
	}
	if _, err := r.j.Append(r.runID, event, step, data); err != nil {
		return fmt.Errorf("write journal %s: %w", r.cfg.Journal, err)
	}
	return nil
}

// step runs fn as a journaled step. In dry-run, fn still runs (it is given
// dry-run effects), so the plan is produced by the same code.
func (r *runner) step(ctx context.Context, name string, fn func(ctx context.Context) (detail string, data any, err error)) error {
	name = r.stepPrefix + name
	if err := ctx.Err(); err != nil {
		return r.fail(name, fmt.Errorf("cancelled before %s: %w", name, err))
	}
	r.event(Event{Kind: "step_start", Step: name})
	if err := r.record(journal.EventStepStart, name, nil); err != nil {
		return r.fail(name, err)
	}
	r.maybeKill(name, "start")
	t0 := time.Now()
	detail, data, err := fn(ctx)
	d := time.Since(t0)
	if err != nil {
		r.res.Steps = append(r.res.Steps, StepResult{Name: name, Status: "failed", DurationMS: d.Milliseconds(), Detail: err.Error()})
		if jerr := r.record(journal.EventStepFailed, name, stepFailedData{Error: err.Error(), DurationMS: d.Milliseconds()}); jerr != nil {
			// the step failed either way; say that the journal lacks it (history shows the
			// step as started, and recovery reads the run as interrupted there)
			err = fmt.Errorf("%w; the journal does not record this failure: %w", err, jerr)
		}
		r.event(Event{Kind: "step_failed", Step: name, Message: err.Error(), Duration: d})
		return r.fail(name, err)
	}
	status := "done"
	if r.opt.DryRun {
		status = "planned"
	}
	r.res.Steps = append(r.res.Steps, StepResult{Name: name, Status: status, DurationMS: d.Milliseconds(), Detail: detail})
	if err := r.record(journal.EventStepDone, name, stepDoneData{DurationMS: d.Milliseconds(), Detail: detail, Data: data}); err != nil {
		return r.fail(name, err)
	}
	r.event(Event{Kind: "step_done", Step: name, Message: detail, Duration: d})
	r.maybeKill(name, "done")
	return nil
}

func (r *runner) fail(step string, err error) error {
	var se *StepError
	if errors.As(err, &se) {
		return err
	}
	return &StepError{Step: step, AfterStop: r.stopped, Err: err}
}

func (r *runner) maybeKill(step, phase string) {
	if r.opt.KillAt != "" && r.opt.KillAt == step+":"+phase {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
}

// extractKillHook is the archive callback for KillAt=extract:N, nil otherwise.
func (r *runner) extractKillHook() func(n int) {
	nth, ok := strings.CutPrefix(r.opt.KillAt, "extract:")
	if !ok {
		return nil
	}
	want, err := strconv.Atoi(nth)
	if err != nil {
		return nil
	}
	return func(n int) {
		if n == want {
			r.maybeKill("extract", nth)
		}
	}
}

func whoami() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprint(os.Getuid())
}

func shellQuote(s string) string { return fsutil.QuotePath(s) }

// ServiceConfig maps cfrollback's settings to the service package's config.
func ServiceConfig(cfg settings.Config) service.Config {
	s := cfg.Service
	return service.Config{
		Manager: s.Manager, Unit: s.Unit, PM2Name: s.PM2Name, PM2Home: s.PM2Home, PM2Bin: s.PM2Bin,
		StartCommand: s.StartCommand, StopCommand: s.StopCommand, StatusCommand: s.StatusCommand,
		StopTimeout: s.StopTimeout, StartTimeout: s.StartTimeout,
	}
}
