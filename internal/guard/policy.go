package guard

import (
	"fmt"
	"slices"
	"time"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// Policy is when guard acts (settings: guard.*).
type Policy struct {
	// Act are the severities that roll back; any other is only watched.
	Act []assess.Severity
	// Consecutive evaluations at an acting severity before guard acts.
	Consecutive int
	Interval    time.Duration
	// Requests to the health URL per evaluation.
	Requests int
	// Cooldown is the least time between two triggers (acted, would have
	// acted, limit reached).
	Cooldown time.Duration
	// MaxRollbacks within Window; once reached, guard only notifies.
	MaxRollbacks int
	Window       time.Duration
	// Grace after guard's own rollback: samples taken then are no evidence.
	Grace time.Duration
}

// PolicyFrom is the policy of the guard settings (validated by settings).
func PolicyFrom(g settings.GuardConfig) Policy {
	p := Policy{Consecutive: g.Consecutive, Interval: g.Interval, Requests: g.Requests, Cooldown: g.Cooldown,
		MaxRollbacks: g.MaxRollbacks, Window: g.Window, Grace: g.Grace}
	for _, s := range g.Act {
		p.Act = append(p.Act, assess.Severity(s))
	}
	return p
}

// Acts reports whether s is a severity guard rolls back on.
func (p Policy) Acts(s assess.Severity) bool { return slices.Contains(p.Act, s) }

// Verdict is what guard made of one evaluation.
type Verdict string

// The verdicts. Acted, WouldHaveActed and LimitReached are triggers: they
// are journaled and notified, and start a Cooldown.
const (
	Clear          Verdict = "clear"            // no acting severity
	Watching       Verdict = "watching"         // acting severity, fewer than Consecutive in a row
	Acted          Verdict = "acted"            // run the emergency rollback now
	WouldHaveActed Verdict = "would_have_acted" // dry run, or paused
	LimitReached   Verdict = "limit_reached"    // MaxRollbacks in Window already: notify only
	CoolingDown    Verdict = "cooldown"         // triggered again within Cooldown: already announced
	Grace          Verdict = "grace"            // the sample is at or before Memory.Cutoff: no evidence
)

// Trigger reports whether v is journaled and notified.
func (v Verdict) Trigger() bool { return v == Acted || v == WouldHaveActed || v == LimitReached }

// Decision is one evaluation's verdict with why.
type Decision struct {
	Time     time.Time       `json:"time"`
	Verdict  Verdict         `json:"verdict"`
	Severity assess.Severity `json:"severity"`
	Streak   int             `json:"streak"`
	// StreakStart is the time of the streak's first evaluation: the first bad sample.
	StreakStart time.Time `json:"streak_start,omitzero"`
	Reason      string    `json:"reason,omitempty"`
}

// Action is one rollback guard started.
type Action struct {
	Started time.Time `json:"started"`
	// Ended is zero while it runs (or when guard was killed during it).
	Ended time.Time `json:"ended,omitzero"`
	// Evidence is the time of the newest sample the decision was made on.
	Evidence time.Time       `json:"evidence"`
	Severity assess.Severity `json:"severity"`
	RunID    string          `json:"run_id,omitempty"`
	Outcome  string          `json:"outcome,omitempty"`
}

// Memory is what guard keeps across restarts.
type Memory struct {
	// Actions are the rollbacks guard started, oldest first, pruned to the window.
	Actions []Action `json:"actions"`
	// Cutoff: samples at or before it are no evidence (acted on, or in a grace period).
	Cutoff time.Time `json:"cutoff,omitzero"`
	// LastTrigger is the time of the last acted, would_have_acted or limit_reached.
	LastTrigger time.Time `json:"last_trigger,omitzero"`
}

// ActionsSince counts the actions started after t.
func (m *Memory) ActionsSince(t time.Time) int {
	n := 0
	for _, a := range m.Actions {
		if a.Started.After(t) {
			n++
		}
	}
	return n
}

// Begin records a rollback about to start on evidence up to evidence: those
// samples are never evidence again.
func (m *Memory) Begin(now, evidence time.Time, sev assess.Severity) {
	m.Actions = append(m.Actions, Action{Started: now, Evidence: evidence, Severity: sev})
	if evidence.After(m.Cutoff) {
		m.Cutoff = evidence
	}
}

// End records the rollback's result; the samples until now+grace are no evidence.
func (m *Memory) End(now time.Time, runID, outcome string, grace time.Duration) {
	if len(m.Actions) == 0 {
		return
	}
	a := &m.Actions[len(m.Actions)-1]
	a.Ended, a.RunID, a.Outcome = now, runID, outcome
	if c := now.Add(grace); c.After(m.Cutoff) {
		m.Cutoff = c
	}
}

// Interrupted ends an action a killed guard left running, as of now (its
// restart), and returns it; nil when there is none.
func (m *Memory) Interrupted(now time.Time, grace time.Duration) *Action {
	if len(m.Actions) == 0 || !m.Actions[len(m.Actions)-1].Ended.IsZero() {
		return nil
	}
	m.End(now, m.Actions[len(m.Actions)-1].RunID, "interrupted", grace)
	a := m.Actions[len(m.Actions)-1]
	return &a
}

// Prune drops the actions that started before now-window.
func (m *Memory) Prune(now time.Time, window time.Duration) {
	keep := m.Actions[:0]
	for _, a := range m.Actions {
		if a.Started.After(now.Add(-window)) || a.Ended.IsZero() {
			keep = append(keep, a)
		}
	}
	m.Actions = keep
}

// Judge applies a Policy to one evaluation after another; it holds the
// streak of consecutive evaluations at an acting severity (a restarted guard
// starts a new streak: evidence is never carried over a restart).
type Judge struct {
	Policy Policy
	DryRun bool

	streak      int
	streakStart time.Time
}

// Decide judges the evaluation of the sample taken at sampleTime, of
// severity sev, at now. It updates mem.LastTrigger for a trigger; the
// caller records an Acted with mem.Begin and mem.End.
func (j *Judge) Decide(now, sampleTime time.Time, sev assess.Severity, mem *Memory, pause Pause) Decision {
	d := Decision{Time: now, Severity: sev}
	if !sampleTime.After(mem.Cutoff) {
		j.streak = 0
		d.Verdict, d.Reason = Grace, fmt.Sprintf("samples until %s are no evidence (acted on, or the grace period after a rollback)", mem.Cutoff.Format(time.RFC3339))
		return d
	}
	if !j.Policy.Acts(sev) {
		j.streak = 0
		d.Verdict = Clear
		return d
	}
	if j.streak == 0 {
		j.streakStart = sampleTime
	}
	j.streak++
	d.Streak, d.StreakStart = j.streak, j.streakStart
	if j.streak < j.Policy.Consecutive {
		d.Verdict, d.Reason = Watching, fmt.Sprintf("%s for %d of %d evaluations", sev, j.streak, j.Policy.Consecutive)
		return d
	}
	if !mem.LastTrigger.IsZero() && now.Sub(mem.LastTrigger) < j.Policy.Cooldown {
		d.Verdict, d.Reason = CoolingDown, fmt.Sprintf("the last decision to act was at %s, within the cooldown of %s", mem.LastTrigger.Format(time.RFC3339), j.Policy.Cooldown)
		return d
	}
	switch n := mem.ActionsSince(now.Add(-j.Policy.Window)); {
	case pause.Active(now):
		d.Verdict, d.Reason = WouldHaveActed, "guard is paused: "+pause.String()
	case n >= j.Policy.MaxRollbacks:
		d.Verdict, d.Reason = LimitReached, fmt.Sprintf("%d rollbacks in the last %s already (guard.max_rollbacks %d): not rolling back again, a person has to look", n, j.Policy.Window, j.Policy.MaxRollbacks)
	case j.DryRun:
		d.Verdict, d.Reason = WouldHaveActed, "dry run"
	default:
		d.Verdict, d.Reason = Acted, fmt.Sprintf("%s for %d evaluations in a row", sev, j.streak)
	}
	mem.LastTrigger = now
	j.streak = 0
	return d
}
