package guard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/notify"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// JournalEvent is the journal event of guard's decisions: a record under the
// emergency's run id when guard acted, else under the guard's session id.
const JournalEvent = journal.EventGuard

// ErrRunning is returned when another guard holds the guard lock.
var ErrRunning = errors.New("another cfrollback guard is running")

// Options are one guard's settings.
type Options struct {
	Policy     Policy
	Thresholds assess.Thresholds
	StateDir   string
	Service    string // the service's name, for notifications
	DryRun     bool
	// Evaluations stops after this many (tests, --evaluations); 0 runs until ctx ends.
	Evaluations int
	// Retention is how long guard's own samples are kept (its store and memory).
	Retention time.Duration
}

// Deps are every effect of the loop; the cli fills them with the real ones.
type Deps struct {
	// Sample takes one sample (assess.Sampler.Take).
	Sample func(ctx context.Context) assess.Sample
	// Measure makes n requests to the health URL: the successful ones'
	// latencies and how many failed (nothing when there is no URL).
	Measure func(ctx context.Context, n int) ([]time.Duration, int)
	// Data are the app config and database rows (nil: none).
	Data func(ctx context.Context) []health.Check
	// Baseline is read at every evaluation; nil when none is recorded.
	Baseline func() *assess.Baseline
	// Act runs the emergency rollback. It calls atOutcome once the rollback's outcome
	// is recorded, before the work that follows it (the standby refresh), and returns
	// after that work; atOutcome must not keep the result.
	Act func(ctx context.Context, atOutcome func(*runbook.Result)) (*runbook.Result, error)
	// Busy says which other cfrollback run holds the run lock (a deploy, a
	// rollback a person started); guard does not act over it. Nil: never busy.
	Busy func() (string, bool)
	// Journal appends one record to the journal.
	Journal func(ctx context.Context, runID string, data any) error
	// Notify sends ev to the webhooks; called in the background.
	Notify func(ctx context.Context, ev notify.Event)
	// Log gets one line per thing a person watching the unit's log wants to know.
	Log func(string)
	Now func() time.Time
	// Wait returns after d, or false when ctx ended first.
	Wait func(ctx context.Context, d time.Duration) bool
}

// Record is what is journaled (and in --json's output) for a trigger.
type Record struct {
	Decision   Decision          `json:"decision"`
	Row        *assess.Row       `json:"matrix_row,omitempty"`
	Assessment assess.Assessment `json:"assessment"`
	// Samples are the streak's samples, the evidence.
	Samples []assess.Sample `json:"samples"`
	Policy  PolicyJSON      `json:"policy"`
	DryRun  bool            `json:"dry_run,omitempty"`
	// Emergency is the rollback's result (acted only).
	RunID      string `json:"run_id,omitempty"`
	Outcome    string `json:"outcome,omitempty"`
	Error      string `json:"error,omitempty"`
	DowntimeMS int64  `json:"downtime_ms,omitempty"`
	// HealthyAt is when the rollback ended healthy; HealthyAt - StreakStart
	// is the time from the first bad sample to healthy again.
	HealthyAt time.Time `json:"healthy_at,omitzero"`
}

// PolicyJSON is Policy for the journal.
type PolicyJSON struct {
	Act          []assess.Severity `json:"act"`
	Consecutive  int               `json:"consecutive"`
	Interval     string            `json:"interval"`
	Cooldown     string            `json:"cooldown"`
	MaxRollbacks int               `json:"max_rollbacks"`
	Window       string            `json:"window"`
	Grace        string            `json:"grace"`
}

func (p Policy) json() PolicyJSON {
	return PolicyJSON{p.Act, p.Consecutive, p.Interval.String(), p.Cooldown.String(), p.MaxRollbacks, p.Window.String(), p.Grace.String()}
}

type guard struct {
	opt     Options
	deps    Deps
	judge   Judge
	state   State
	store   assess.Store
	history []assess.Sample
	session string
	sends   sync.WaitGroup
	lastSev assess.Severity
	// lastVerdict: cooldown and grace are logged when they begin, not at every evaluation.
	lastVerdict Verdict
	evaluations int
}

// compactEvery evaluations the sample store drops what is older than Retention:
// a guard that runs for months keeps a bounded file (a day at 10s is 8640 samples).
var compactEvery = 1000

// Run is `cfrollback guard`: it holds <state_dir>/guard.lock (a second guard
// gets ErrRunning) and evaluates every Policy.Interval until ctx ends.
func Run(ctx context.Context, opt Options, deps Deps) error {
	if deps.Wait == nil {
		deps.Wait = wait
	}
	host, _ := os.Hostname()
	path, holder := filepath.Join(opt.StateDir, LockFile), lock.Holder{PID: os.Getpid(), Host: host, Command: "cfrollback guard"}
	lk, err := lock.Acquire(path, holder)
	if errors.Is(err, lock.ErrLocked) {
		// Once more: 'guard status' probes the lock for microseconds (lock.Probe), and by
		// now (Acquire read the holder for a while) such a probe has let go; a running
		// guard has not.
		lk, err = lock.Acquire(path, holder)
	}
	if errors.Is(err, lock.ErrLocked) {
		return fmt.Errorf("%w: %w", ErrRunning, err)
	}
	if err != nil {
		return fmt.Errorf("guard lock: %w", err)
	}
	defer func() { _ = lk.Release() }()
	g := &guard{opt: opt, deps: deps, judge: Judge{Policy: opt.Policy, DryRun: opt.DryRun}, lastSev: assess.None,
		session: "guard-" + deps.Now().UTC().Format("20060102T150405") + fmt.Sprintf("-%d", os.Getpid())}
	if err := g.load(ctx); err != nil {
		return err
	}
	defer g.waitSends()
	// One evaluation every interval, not interval after the last one ended: the
	// time an evaluation takes (its requests) does not stretch the cadence.
	var began time.Time
	for n := 1; opt.Evaluations == 0 || n <= opt.Evaluations; n++ {
		if n > 1 && !deps.Wait(ctx, max(0, opt.Policy.Interval-deps.Now().Sub(began))) {
			return nil
		}
		began = deps.Now()
		if err := g.evaluate(ctx); err != nil || ctx.Err() != nil {
			return err
		}
	}
	return nil
}

// load reads what a previous guard left: memory, samples. A rollback a
// killed guard left running is ended as interrupted (and journaled): its
// evidence and a grace period after now are no evidence for this guard.
func (g *guard) load(ctx context.Context) error {
	st, err := ReadState(g.opt.StateDir)
	if err != nil {
		return err
	}
	now := g.deps.Now()
	g.state = State{Memory: st.Memory, PID: os.Getpid(), DryRun: g.opt.DryRun, Interval: g.opt.Policy.Interval.String()}
	if a := g.state.Interrupted(now, g.opt.Policy.Grace); a != nil {
		g.log("the rollback the previous guard started at %s did not finish (guard was stopped); its evidence is not used again, and samples until %s are no evidence",
			a.Started.Format(time.RFC3339), g.state.Cutoff.Format(time.RFC3339))
		_ = g.deps.Journal(ctx, g.session, map[string]any{"note": "previous guard stopped during its rollback", "action": a})
	}
	if err := WriteState(g.opt.StateDir, g.state); err != nil {
		return err
	}
	g.store = SampleStore(g.opt.StateDir, g.opt.Retention)
	if _, err := g.store.Compact(now); err != nil {
		return fmt.Errorf("compact %s: %w", g.store.Path, err)
	}
	samples, _, err := g.store.Read()
	if err != nil {
		return err
	}
	g.history = samples
	g.log("guarding %s every %s: acts on %s after %d evaluations in a row; at most %d rollbacks per %s%s",
		g.opt.Service, g.opt.Policy.Interval, severities(g.opt.Policy.Act), g.opt.Policy.Consecutive, g.opt.Policy.MaxRollbacks, g.opt.Policy.Window, map[bool]string{true: " (dry run: notifies only)"}[g.opt.DryRun])
	return nil
}

func (g *guard) evaluate(ctx context.Context) error {
	// The sample, the requests and the data checks are independent: taken at
	// once, an evaluation lasts as long as the slowest of them, not their sum.
	var (
		work    sync.WaitGroup
		data    []health.Check
		latency []time.Duration
		lfailed int
	)
	if g.deps.Data != nil {
		work.Go(func() { data = g.deps.Data(ctx) })
	}
	if g.deps.Measure != nil {
		work.Go(func() { latency, lfailed = g.deps.Measure(ctx, g.opt.Policy.Requests) })
	}
	s := g.deps.Sample(ctx)
	work.Wait()
	if ctx.Err() != nil {
		return nil // an interrupted sample is not a sample
	}
	if err := g.store.Append(s); err != nil {
		return err
	}
	if g.evaluations++; g.evaluations%compactEvery == 0 {
		if _, err := g.store.Compact(s.Time); err != nil {
			return fmt.Errorf("compact %s: %w", g.store.Path, err)
		}
	}
	g.history = append(g.history, s)
	if from := s.Time.Add(-g.opt.Retention); len(g.history) > 0 && !g.history[0].Time.After(from) {
		g.history = assess.Window(g.history, s.Time, g.opt.Retention)
	}
	in := assess.Input{Now: s.Time, Samples: after(g.history, g.state.Cutoff), Data: data, Latency: latency, LatencyFailed: lfailed}
	if s.Active != nil {
		in.Service = &assess.ServiceState{Active: *s.Active, State: s.State, CrashLoop: s.CrashLoop}
		if s.Restarts != nil {
			in.Service.Restarts = *s.Restarts
		}
	} else {
		in.ServiceErr = "no answer in this sample"
	}
	if g.deps.Baseline != nil {
		in.Baseline = g.deps.Baseline()
	}
	if ctx.Err() != nil {
		return nil
	}
	a := assess.Evaluate(in, g.opt.Thresholds)
	pause, err := ReadPause(g.opt.StateDir)
	if err != nil {
		// An unreadable pause is a pause: a person was doing planned work.
		g.log("%v; treating guard as paused", err)
		pause = Pause{Paused: true, Reason: "the pause file could not be read"}
	}
	now := g.deps.Now()
	g.state.Prune(now, g.opt.Policy.Window)
	d := g.judge.Decide(now, s.Time, a.Severity, &g.state.Memory, pause)
	if d.Verdict == Acted && g.deps.Busy != nil {
		if who, busy := g.deps.Busy(); busy {
			// Not an action (no limit, no cutoff): the run holding the lock is
			// changing the service; the cooldown keeps this from repeating.
			d.Verdict, d.Reason = WouldHaveActed, "another cfrollback run holds the lock ("+who+"): not rolling back over it"
		}
	}
	if a.Severity != g.lastSev {
		g.log("severity %s (was %s): %s", a.Severity, g.lastSev, strings.Join(metEvidence(a), "; "))
		g.lastSev = a.Severity
	}
	rec := Record{Decision: d, Assessment: a, Policy: g.opt.Policy.json(), DryRun: g.opt.DryRun}
	if r, ok := assess.RowFor(a.Severity); ok {
		rec.Row = &r
	}
	if (d.Verdict == CoolingDown || d.Verdict == Grace) && d.Verdict != g.lastVerdict {
		g.log("%s: %s", d.Verdict, d.Reason)
	}
	g.lastVerdict = d.Verdict
	if d.Verdict.Trigger() {
		rec.Samples = assess.Window(g.history, s.Time, s.Time.Sub(d.StreakStart)+time.Nanosecond)
		g.log("%s: %s", d.Verdict, d.Reason)
	}
	notified := false
	if d.Verdict == Acted {
		g.state.Begin(now, s.Time, a.Severity)
		if err := g.save(d, a); err != nil {
			return fmt.Errorf("record the decision before acting (nothing was rolled back): %w", err)
		}
		notified = g.act(ctx, &rec)
	}
	if err := g.save(d, a); err != nil {
		return err
	}
	if d.Verdict.Trigger() {
		runID := rec.RunID
		if runID == "" {
			runID = g.session
		}
		if err := g.deps.Journal(context.WithoutCancel(ctx), runID, rec); err != nil {
			g.log("decision not journaled: %v", err)
		}
		if !notified {
			g.notify(ctx, rec)
		}
	}
	return nil
}

// act runs the emergency and records its result in rec and the memory. The
// webhooks hear guard_acted at the rollback's outcome, not after the standby
// refresh that follows it; notified says they did (else the caller sends it).
func (g *guard) act(ctx context.Context, rec *Record) (notified bool) {
	res, err := g.deps.Act(ctx, func(res *runbook.Result) {
		rec.setResult(res, g.deps.Now())
		rec.Error = res.Error
		g.notify(ctx, *rec)
		notified = true
	})
	outcome := "failed"
	if res != nil {
		outcome = res.Outcome
	}
	end := g.deps.Now()
	if !notified {
		rec.setResult(res, end)
	}
	if err != nil {
		rec.Error = err.Error()
	}
	g.state.End(end, rec.RunID, outcome, g.opt.Policy.Grace)
	g.log("rollback %s (run %s)%s; samples until %s are no evidence", outcome, orDash(rec.RunID), errSuffix(rec.Error), g.state.Cutoff.Format(time.RFC3339))
	return notified
}

// setResult records the rollback's result (nil: it did not run); end is when it ended.
func (rec *Record) setResult(res *runbook.Result, end time.Time) {
	if res == nil {
		return
	}
	rec.RunID, rec.Outcome, rec.DowntimeMS = res.RunID, res.Outcome, res.DowntimeMS
	if res.Outcome == "ok" {
		// healthy at the run's outcome, not after its notifications were sent
		rec.HealthyAt = end
		if res.DurationMS > 0 && !res.Started.IsZero() {
			rec.HealthyAt = res.Started.Add(time.Duration(res.DurationMS) * time.Millisecond)
		}
	}
}

func (g *guard) save(d Decision, a assess.Assessment) error {
	g.state.Updated, g.state.Last, g.state.Met = g.deps.Now(), &d, a.Met
	return WriteState(g.opt.StateDir, g.state)
}

func (g *guard) notify(ctx context.Context, rec Record) {
	if g.deps.Notify == nil {
		return
	}
	ev := notify.ByHand(eventOf(rec.Decision.Verdict), g.opt.Service, message(g.opt.Service, rec), nil)
	ev.RunID, ev.Outcome, ev.DowntimeMS = rec.RunID, rec.Outcome, rec.DowntimeMS
	g.sends.Add(1)
	go func() {
		defer g.sends.Done()
		g.deps.Notify(context.WithoutCancel(ctx), ev)
	}()
}

// waitSends lets notifications in flight end, for at most notify.MaxTotal.
func (g *guard) waitSends() {
	done := make(chan struct{})
	go func() { g.sends.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(notify.MaxTotal):
	}
}

func (g *guard) log(format string, args ...any) {
	if g.deps.Log != nil {
		g.deps.Log(fmt.Sprintf(format, args...))
	}
}

func eventOf(v Verdict) string {
	switch v {
	case Acted:
		return notify.GuardActed
	case LimitReached:
		return notify.GuardLimitReached
	}
	return notify.GuardWouldHaveActed
}

// message is the webhook text: what guard did, why, and the evidence.
func message(service string, rec Record) string {
	host, _ := os.Hostname()
	d := rec.Decision
	what := map[Verdict]string{Acted: "rolled back", WouldHaveActed: "would have rolled back", LimitReached: "did NOT roll back"}[d.Verdict]
	m := fmt.Sprintf("%s on %s: cfrollback guard %s: %s since %s (%s). Evidence: %s", service, host, what, d.Severity,
		d.StreakStart.Local().Format("15:04:05"), d.Reason, strings.Join(metEvidence(rec.Assessment), "; "))
	switch {
	case d.Verdict == Acted && rec.Outcome == "ok":
		m += fmt.Sprintf(". Rollback ok (run %s, downtime %s); healthy %s after the first bad sample",
			rec.RunID, ui.Duration(time.Duration(rec.DowntimeMS)*time.Millisecond), ui.Duration(rec.HealthyAt.Sub(d.StreakStart)))
	case d.Verdict == Acted:
		m += fmt.Sprintf(". Rollback %s (run %s): %s; see 'cfrollback history'", orDash(rec.Outcome), orDash(rec.RunID), rec.Error)
	}
	return m
}

func metEvidence(a assess.Assessment) []string {
	var out []string
	for _, c := range a.Conditions {
		if c.Status == assess.Met {
			out = append(out, c.ID+": "+c.Evidence)
		}
	}
	if len(out) == 0 {
		return []string{a.Action}
	}
	return out
}

func after(samples []assess.Sample, cutoff time.Time) []assess.Sample {
	for i, s := range samples {
		if s.Time.After(cutoff) {
			return samples[i:]
		}
	}
	return nil
}

func severities(ss []assess.Severity) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}

func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
