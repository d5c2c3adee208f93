package backup

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
)

// backupsAt returns candidates (newest first) taken days ago, one each.
func backupsAt(now time.Time, daysAgo ...int) []Candidate {
	var out []Candidate
	for _, d := range daysAgo {
		t := now.Add(-time.Duration(d) * 24 * time.Hour)
		name := "backup-" + t.Format("20060102-150405") + ".tar.gz"
		out = append(out, Candidate{Path: "/b/" + name, Name: name, Time: t, Size: 100})
	}
	return out
}

func deleted(items []PruneItem) string {
	var ids []string
	for _, it := range items {
		if it.Delete {
			ids = append(ids, it.ID)
		}
	}
	return strings.Join(ids, " ")
}

func TestPlanPrune(t *testing.T) {
	now := time.Date(2025, 1, 20, 2, 0, 0, 0, time.Local)
	cands := backupsAt(now, 0, 1, 2, 8, 9, 10, 30)
	id := func(i int) string { return ID(cands[i].Name) }
	state := func(f func(s *State)) *State {
		s := &State{}
		f(s)
		return s
	}
	week := 7 * 24 * time.Hour
	for _, tc := range []struct {
		name  string
		keep  int
		st    *State
		inUse map[string]string
		want  []int
	}{
		{name: "older than max-age beyond keep", keep: 2, st: &State{}, want: []int{3, 4, 5, 6}},
		{name: "keep covers them", keep: 5, st: &State{}, want: []int{5, 6}},
		{name: "keep everything", keep: 10, st: &State{}, want: nil},
		{name: "newest good is kept however old", keep: 2, st: state(func(s *State) {
			s.SetMark(cands[5].Name, Mark{Value: MarkGood})
			s.SetMark(cands[6].Name, Mark{Value: MarkGood})
		}), want: []int{3, 4, 6}},
		{name: "newest verified is kept, a failed verify is not", keep: 2, st: state(func(s *State) {
			s.SetVerify(cands[3].Name, VerifyRecord{OK: false})
			s.SetVerify(cands[4].Name, VerifyRecord{OK: true})
			s.SetVerify(cands[6].Name, VerifyRecord{OK: true})
		}), want: []int{3, 5, 6}},
		{name: "bad marks do not protect", keep: 2, st: state(func(s *State) {
			s.SetMark(cands[3].Name, Mark{Value: MarkBad})
		}), want: []int{3, 4, 5, 6}},
		{name: "in use by a run", keep: 2, st: &State{}, inUse: map[string]string{cands[6].Path: "run-1"}, want: []int{3, 4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items := PlanPrune(cands, tc.st, PruneOptions{Keep: tc.keep, MaxAge: week, Now: now, InUse: tc.inUse})
			var want []string
			for _, i := range tc.want {
				want = append(want, id(i))
			}
			if got := deleted(items); got != strings.Join(want, " ") {
				t.Fatalf("deleted %q, want %q\n%+v", got, strings.Join(want, " "), items)
			}
			for _, it := range items {
				if it.Reason == "" {
					t.Errorf("%s has no reason", it.ID)
				}
			}
		})
	}
	// the clock decides: a day later, the 2-day-old one is still young
	items := PlanPrune(cands, &State{}, PruneOptions{Keep: 1, MaxAge: week, Now: now.Add(24 * time.Hour)})
	if got := deleted(items); got != strings.Join([]string{id(3), id(4), id(5), id(6)}, " ") {
		t.Fatalf("a day later: %q", got)
	}
	items = PlanPrune(cands, &State{}, PruneOptions{Keep: 1, MaxAge: week, Now: now.Add(6 * 24 * time.Hour)})
	if got := deleted(items); got != strings.Join([]string{id(2), id(3), id(4), id(5), id(6)}, " ") {
		t.Fatalf("six days later: %q", got)
	}
}

func TestPlanFailedDirs(t *testing.T) {
	now := time.Date(2025, 1, 20, 2, 0, 0, 0, time.Local)
	root := t.TempDir()
	mk := func(daysAgo int) string {
		p := filepath.Join(root, "app-failed-"+now.Add(-time.Duration(daysAgo)*24*time.Hour).Format("20060102-150405"))
		writeTree(t, p, map[string]string{"a.txt": "12345"})
		return p
	}
	young, old, used := mk(1), mk(40), mk(50)
	dirs, err := FailedDirs(filepath.Join(root, "app-failed-*"))
	if err != nil || len(dirs) != 3 || dirs[0].Size != 5 {
		t.Fatalf("failed dirs %+v %v", dirs, err)
	}
	plan := PlanFailedDirs(dirs, PruneOptions{Now: now})
	if deleted(plan) != "" {
		t.Fatalf("without --failed-older-than nothing is deleted: %+v", plan)
	}
	dirs, _ = FailedDirs(filepath.Join(root, "app-failed-*"))
	plan = PlanFailedDirs(dirs, PruneOptions{Now: now, FailedOlderThan: 30 * 24 * time.Hour, InUse: map[string]string{used: "r"}})
	if got := deleted(plan); got != filepath.Base(old) {
		t.Fatalf("deleted %q, want only %s (young %s, used %s)", got, filepath.Base(old), young, used)
	}
}

func TestAutoMarkDoesNotFlipFlop(t *testing.T) {
	s := &State{}
	good := Mark{Value: MarkGood, By: "emergency"}
	bad := Mark{Value: MarkBad, By: "emergency"}
	if !s.AutoMark("a", good) || s.Get("a").Mark.Value != MarkGood {
		t.Fatal("first mark")
	}
	if !s.AutoMark("a", bad) || s.Get("a").Mark.Value != MarkBad {
		t.Fatal("an unhealthy restore must mark a good backup bad")
	}
	if s.AutoMark("a", good) || s.Get("a").Mark.Value != MarkBad {
		t.Fatal("a bad mark was flipped back by a run")
	}
	s.SetMark("b", Mark{Value: MarkGood, By: "manual"})
	if s.AutoMark("b", bad) || s.Get("b").Mark.By != "manual" {
		t.Fatal("a run overwrote a mark made by hand")
	}
	s.SetMark("a", Mark{Value: MarkGood, By: "manual"})
	if s.Get("a").Mark.Value != MarkGood {
		t.Fatal("a person must be able to clear a bad mark")
	}
}

func TestStoreRoundTripAndDamage(t *testing.T) {
	st := Store{Path: filepath.Join(t.TempDir(), "sub", "state.json"), CreateDir: true}
	if s, err := st.Load(); err != nil || len(s.Backups) != 0 {
		t.Fatalf("missing file: %v %+v", err, s)
	}
	for i := range 3 {
		if err := st.Update(t.Context(), func(s *State) error {
			s.SetVerify(fmt.Sprintf("b%d", i), VerifyRecord{OK: true})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := st.Load()
	if err != nil || len(s.Backups) != 3 {
		t.Fatalf("%v %+v", err, s)
	}
	if fi, _ := os.Stat(st.Path); fi.Mode().Perm() != 0o600 {
		t.Errorf("state mode %v", fi.Mode())
	}
	if err := os.WriteFile(st.Path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load(); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged: %v", err)
	}
	noDir := Store{Path: filepath.Join(t.TempDir(), "missing", "state.json")}
	if err := noDir.Update(t.Context(), func(*State) error { return nil }); err == nil {
		t.Fatal("Update without CreateDir created the dir")
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute, "0.5d": 12 * time.Hour,
	} {
		if got, err := ParseAge(in); err != nil || got != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "7", "-1d", "seven days", "7x"} {
		if _, err := ParseAge(bad); err == nil {
			t.Errorf("ParseAge(%q) succeeded", bad)
		}
	}
}

func TestInUseReadsUnfinishedRunsAndTheLock(t *testing.T) {
	dir := t.TempDir()
	jp, lp := filepath.Join(dir, "journal.jsonl"), filepath.Join(dir, "lock")
	if m, err := InUse(jp, lp); err != nil || len(m) != 0 {
		t.Fatalf("no journal: %v %v", m, err)
	}
	j, err := journal.Open(jp)
	if err != nil {
		t.Fatal(err)
	}
	// finished run: nothing in use
	_, _ = j.Append("done-1", "intent", "", map[string]string{"command": "emergency", "backup": "/b/old.tar.gz"})
	_, _ = j.Append("done-1", "outcome", "", map[string]string{"outcome": "ok"})
	// killed after preflight chose a backup
	_, _ = j.Append("killed-2", "intent", "", map[string]string{"command": "emergency", "failed_dir": "/opt/app-failed-x"})
	_, _ = j.Append("killed-2", "step_done", "preflight", map[string]any{"data": map[string]string{"backup": "/b/chosen.tar.gz"}})
	j.Close()
	m, err := InUse(jp, lp)
	if err != nil {
		t.Fatal(err)
	}
	if m["/b/chosen.tar.gz"] != "killed-2" || m["/opt/app-failed-x"] != "killed-2" || m["/b/old.tar.gz"] != "" {
		t.Fatalf("in use %v", m)
	}
	// a live run that holds the lock and has not chosen yet: nothing may go
	lk, err := lock.Acquire(lp, lock.Holder{RunID: "live-3", Command: "cfrollback emergency"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InUse(jp, lp); err == nil || !strings.Contains(err.Error(), "live-3") {
		t.Fatalf("held lock: %v", err)
	}
	_ = lk.Release()
	if _, err := InUse(jp, lp); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestChoose(t *testing.T) {
	now := time.Date(2025, 1, 20, 2, 0, 0, 0, time.Local)
	cands := backupsAt(now, 0, 1, 2, 3)
	st := &State{}
	st.SetMark(cands[0].Name, Mark{Value: MarkBad, Reason: "broke it"})
	st.SetVerify(cands[1].Name, VerifyRecord{OK: false, Error: "corrupt"})
	c, passed, err := Choose(cands, st, Choice{To: "latest"})
	if err != nil || c.Name != cands[2].Name || len(passed) != 2 {
		t.Fatalf("latest: %v %v %v", c.Name, passed, err)
	}
	c, _, err = Choose(cands, st, Choice{To: "latest", Before: cands[2].Time})
	if err != nil || c.Name != cands[3].Name {
		t.Fatalf("before: %v %v", c.Name, err)
	}
	c, _, err = Choose(cands, st, Choice{To: ID(cands[0].Name)})
	if err != nil || c.Name != cands[0].Name {
		t.Fatalf("by id, even marked bad (a person asked): %v %v", c.Name, err)
	}
	if _, _, err = Choose(cands, st, Choice{To: "19990101-000000"}); err == nil {
		t.Fatal("unknown id chosen")
	}
	if _, _, err = Choose(cands, st, Choice{To: "latest", AppVersion: "9.9.9"}); err == nil {
		t.Fatal("no backup has that version")
	}
}

// A run the journal's hash chain no longer vouches for (an outcome forged, an unfinished
// step deleted) may be using what it names: InUse keeps it, finished or not.
func TestInUseKeepsWhatAnUnverifiedRunNames(t *testing.T) {
	dir := t.TempDir()
	jp, lp := filepath.Join(dir, "journal.jsonl"), filepath.Join(dir, "lock")
	j, err := journal.Open(jp)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = j.Append("done-1", "intent", "", map[string]string{"command": "emergency", "backup": "/b/one.tar.gz"})
	_, _ = j.Append("done-1", "outcome", "", map[string]string{"outcome": "ok"})
	_, _ = j.Append("done-2", "intent", "", map[string]string{"command": "emergency", "backup": "/b/two.tar.gz"})
	_, _ = j.Append("done-2", "outcome", "", map[string]string{"outcome": "ok"})
	j.Close()
	m, err := InUse(jp, lp)
	if err != nil || len(m) != 0 {
		t.Fatalf("intact journal, finished runs: %v %v", m, err)
	}
	b, err := os.ReadFile(jp)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	lines[3] = strings.Replace(lines[3], `"outcome":"ok"`, `"outcome":"OK"`, 1) // done-2's outcome, edited
	if err := os.WriteFile(jp, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err = InUse(jp, lp)
	if err != nil {
		t.Fatal(err)
	}
	if m["/b/two.tar.gz"] != "done-2" || m["/b/one.tar.gz"] != "" {
		t.Fatalf("in use %v, want /b/two.tar.gz (its run is unverified) and not /b/one.tar.gz", m)
	}
}
