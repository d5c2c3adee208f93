package guard

import (
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/assess"
)

var t0 = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

func testPolicy() Policy {
	return Policy{Act: []assess.Severity{assess.P0}, Consecutive: 3, Interval: 10 * time.Second, Requests: 5,
		Cooldown: time.Minute, MaxRollbacks: 2, Window: time.Hour, Grace: 2 * time.Minute}
}

// step drives a Judge with one evaluation every interval on a fake clock.
type step struct {
	j   *Judge
	mem *Memory
	now time.Time
}

func (s *step) next(sev assess.Severity, p Pause) Decision {
	s.now = s.now.Add(s.j.Policy.Interval)
	d := s.j.Decide(s.now, s.now, sev, s.mem, p)
	if d.Verdict == Acted {
		s.mem.Begin(s.now, s.now, sev)
		s.mem.End(s.now.Add(5*time.Second), "run", "ok", s.j.Policy.Grace)
	}
	return d
}

func verdicts(s *step, sev assess.Severity, n int) []Verdict {
	var out []Verdict
	for range n {
		out = append(out, s.next(sev, Pause{}).Verdict)
	}
	return out
}

func equal(t *testing.T, got, want []Verdict) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("verdicts %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("verdicts %v, want %v", got, want)
		}
	}
}

func TestConsecutiveEvaluations(t *testing.T) {
	s := &step{j: &Judge{Policy: testPolicy()}, mem: &Memory{}, now: t0}
	// two bad, one clear: the streak starts again
	equal(t, verdicts(s, assess.P0, 2), []Verdict{Watching, Watching})
	equal(t, verdicts(s, assess.None, 1), []Verdict{Clear})
	d := s.next(assess.P0, Pause{})
	if d.Verdict != Watching || d.Streak != 1 {
		t.Fatalf("after a clear evaluation: %+v, want watching with streak 1", d)
	}
	first := d.StreakStart
	s.next(assess.P0, Pause{})
	d = s.next(assess.P0, Pause{})
	if d.Verdict != Acted || d.Streak != 3 || !d.StreakStart.Equal(first) {
		t.Fatalf("third evaluation in a row: %+v, want acted with the streak's first sample %s", d, first)
	}
}

func TestOnlyActingSeveritiesCount(t *testing.T) {
	s := &step{j: &Judge{Policy: testPolicy()}, mem: &Memory{}, now: t0}
	equal(t, verdicts(s, assess.P1, 5), []Verdict{Clear, Clear, Clear, Clear, Clear})
	equal(t, verdicts(s, assess.Inconclusive, 2), []Verdict{Clear, Clear})
	p := testPolicy()
	p.Act = []assess.Severity{assess.P0, assess.P1}
	s = &step{j: &Judge{Policy: p}, mem: &Memory{}, now: t0}
	// P1 then P0 then P1: one streak of acting severities
	equal(t, []Verdict{s.next(assess.P1, Pause{}).Verdict, s.next(assess.P0, Pause{}).Verdict, s.next(assess.P1, Pause{}).Verdict},
		[]Verdict{Watching, Watching, Acted})
}

func TestGracePeriodAfterOwnRollback(t *testing.T) {
	s := &step{j: &Judge{Policy: testPolicy()}, mem: &Memory{}, now: t0}
	equal(t, verdicts(s, assess.P0, 3), []Verdict{Watching, Watching, Acted})
	acted := s.now
	// the rollback ended 5s after acting; grace 2m: evaluations until acted+5s+2m are grace
	var got []Verdict
	for s.now.Add(s.j.Policy.Interval).Before(acted.Add(5*time.Second + 2*time.Minute)) {
		got = append(got, s.next(assess.P0, Pause{}).Verdict)
	}
	if len(got) < 10 {
		t.Fatalf("only %d evaluations fell in the grace period", len(got))
	}
	for _, v := range got {
		if v != Grace {
			t.Fatalf("within the grace period: %v", got)
		}
	}
	// after it, a new streak: three more evaluations, and the cooldown (1m) is long over
	equal(t, verdicts(s, assess.P0, 3), []Verdict{Watching, Watching, Acted})
}

func TestCooldown(t *testing.T) {
	p := testPolicy()
	p.Consecutive, p.Cooldown, p.Grace = 1, 35*time.Second, 0
	s := &step{j: &Judge{Policy: p, DryRun: true}, mem: &Memory{}, now: t0}
	// dry run: would_have_acted, then silent for the cooldown, then again
	equal(t, verdicts(s, assess.P0, 5), []Verdict{WouldHaveActed, CoolingDown, CoolingDown, CoolingDown, WouldHaveActed})
	if len(s.mem.Actions) != 0 || !s.mem.Cutoff.IsZero() {
		t.Fatalf("a dry run recorded an action: %+v", s.mem)
	}
}

func TestPerWindowLimit(t *testing.T) {
	p := testPolicy()
	p.Consecutive, p.Cooldown, p.Grace, p.Window = 1, 0, 0, 10*time.Minute
	s := &step{j: &Judge{Policy: p}, mem: &Memory{}, now: t0}
	// a flapping service: bad at every evaluation
	got := verdicts(s, assess.P0, 6)
	acted := 0
	for _, v := range got {
		if v == Acted {
			acted++
		}
	}
	if acted != 2 || got[2] != LimitReached {
		t.Fatalf("verdicts %v: want exactly 2 rollbacks, then limit_reached", got)
	}
	d := s.next(assess.P0, Pause{})
	if d.Verdict != LimitReached || !strings.Contains(d.Reason, "2 rollbacks in the last 10m0s") {
		t.Fatalf("decision %+v", d)
	}
	// once the first rollback is older than the window, one more is allowed
	s.now = t0.Add(p.Window + time.Second)
	s.mem.Prune(s.now, p.Window)
	if d := s.next(assess.P0, Pause{}); d.Verdict != Acted {
		t.Fatalf("after the window: %+v", d)
	}
}

func TestPauseAndResume(t *testing.T) {
	p := testPolicy()
	p.Cooldown = 0
	s := &step{j: &Judge{Policy: p}, mem: &Memory{}, now: t0}
	pause := Pause{Paused: true, Since: t0, Until: t0.Add(time.Minute), By: "ops"}
	var got []Verdict
	for range 3 {
		got = append(got, s.next(assess.P0, pause).Verdict)
	}
	equal(t, got, []Verdict{Watching, Watching, WouldHaveActed})
	if len(s.mem.Actions) != 0 {
		t.Fatal("acted while paused")
	}
	// the pause ran out (--for 1m): the next streak acts
	s.now = t0.Add(time.Minute)
	got = nil
	for range 3 {
		got = append(got, s.next(assess.P0, pause).Verdict)
	}
	equal(t, got, []Verdict{Watching, Watching, Acted})
	// paused until resumed: never expires
	forever := Pause{Paused: true, Since: t0}
	if !forever.Active(t0.Add(1000*time.Hour)) || (Pause{}).Active(t0) {
		t.Fatal("Active is wrong")
	}
}

func TestRestartDoesNotReuseEvidence(t *testing.T) {
	p := testPolicy()
	mem := &Memory{}
	s := &step{j: &Judge{Policy: p}, mem: mem, now: t0}
	equal(t, verdicts(s, assess.P0, 2), []Verdict{Watching, Watching})
	s.now = s.now.Add(p.Interval)
	if d := s.j.Decide(s.now, s.now, assess.P0, mem, Pause{}); d.Verdict != Acted {
		t.Fatalf("%+v", d)
	}
	evidence := s.now
	mem.Begin(s.now, evidence, assess.P0) // written before the rollback ran; guard is killed during it
	// a new guard: new Judge (no streak), the memory as it was written
	restart := evidence.Add(30 * time.Second)
	a := mem.Interrupted(restart, p.Grace)
	if a == nil || a.Outcome != "interrupted" {
		t.Fatalf("the unfinished action was not ended: %+v", mem.Actions)
	}
	j2 := &Judge{Policy: p}
	// the old samples (at or before the evidence) are never evidence, nor those within grace of the restart
	for _, at := range []time.Time{evidence.Add(-20 * time.Second), evidence, restart, restart.Add(p.Grace)} {
		if d := j2.Decide(restart, at, assess.P0, mem, Pause{}); d.Verdict != Grace {
			t.Fatalf("sample at %s after the restart: %+v, want grace", at, d)
		}
	}
	if mem.ActionsSince(restart.Add(-p.Window)) != 1 {
		t.Fatal("the interrupted rollback does not count toward the limit")
	}
	if mem.Interrupted(restart, p.Grace) != nil {
		t.Fatal("an ended action was ended again")
	}
}
