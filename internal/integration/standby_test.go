package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/journal"
)

// standbyOf returns the "standby" object of an emergency's JSON result.
func standbyOf(t *testing.T, r runResult) map[string]any {
	t.Helper()
	sb, _ := r.JSON["standby"].(map[string]any)
	if sb == nil {
		t.Fatalf("the result does not say whether the standby was used:\n%s", r.Stdout)
	}
	return sb
}

// refreshStandby runs `standby refresh` and checks that it left a standby that is ready.
func (s *sandbox) refreshStandby(env []string) {
	t := s.t
	t.Helper()
	r := s.run(env, "standby", "refresh", "--json")
	if r.Code != 0 || r.JSON["outcome"] != "ok" {
		t.Fatalf("standby refresh: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if st := s.run(env, "standby", "status"); st.Code != 0 {
		t.Fatalf("standby status after a refresh: exit %d\n%s", st.Code, st.Stdout)
	}
}

// TestStandbyEmergency is the warm path end to end, through the real binary and the drill app
// under the command manager: a refreshed standby is taken by the emergency (no extraction),
// the service is healthy on the good version with the broken version's live data carried
// over, and the standby is refreshed again after the health check passed.
func TestStandbyEmergency(t *testing.T) {
	s := newSandbox(t)
	s.goodBackupBrokenInstall()
	env, url := commandService(t, s)
	s.refreshStandby(env)
	standbyTree := s.Install + ".standby"
	if got := readFile(t, filepath.Join(standbyTree, drillapp.VersionFile)); got != "1.0.0" {
		t.Fatalf("the standby holds version %q, want the backup's 1.0.0", got)
	}
	startBroken(t, s, env, url)

	r := s.run(env, "emergency", "--json")
	s.assertRolledBack(r, url)
	sb := standbyOf(t, r)
	if sb["used"] != true {
		t.Fatalf("the emergency did not take the standby: %v", sb)
	}
	if !strings.Contains(r.Stdout, "took the standby") {
		t.Fatalf("the preflight step does not say it took the standby:\n%s", r.Stdout)
	}
	refresh, _ := sb["refresh"].(map[string]any)
	if refresh == nil || refresh["outcome"] != "ok" {
		t.Fatalf("the standby was not refreshed after the healthy rollback: %v", sb)
	}
	if got := readFile(t, filepath.Join(standbyTree, drillapp.VersionFile)); got != "1.0.0" {
		t.Fatalf("the refreshed standby holds version %q", got)
	}
	if st := s.run(env, "standby", "status"); st.Code != 0 {
		t.Fatalf("standby status after the emergency: exit %d\n%s", st.Code, st.Stdout)
	}
	if left := glob(t, standbyTree+".tmp-*"); len(left) != 0 {
		t.Fatalf("refresh temp dirs left: %v", left)
	}
}

// TestStandbyRefreshKilled SIGKILLs `standby refresh` at each of its step boundaries and
// inside its extraction. Before the seal is written no standby is used: the next emergency
// says why, extracts, and ends healthy, and its own refresh removes what the killed one left.
// Killed after the seal (seal:done, cleanup:start), the standby is complete and is used.
func TestStandbyRefreshKilled(t *testing.T) {
	for _, point := range []string{
		"prepare:start", "prepare:done", "extract:start", "extract:1", "extract:done",
		"swap_in:start", "swap_in:done", "seal:start", "seal:done", "cleanup:start",
	} {
		t.Run(strings.ReplaceAll(point, ":", "_"), func(t *testing.T) {
			s := newSandbox(t)
			s.goodBackupBrokenInstall()
			env, url := commandService(t, s)
			killed := s.run(append([]string{"CFROLLBACK_TEST_KILL_AT=" + point}, env...), "standby", "refresh")
			if killed.Code != -1 {
				t.Fatalf("refresh with a kill at %s: exit %d, want killed\n%s\n%s", point, killed.Code, killed.Stdout, killed.Stderr)
			}
			sealed := point == "seal:done" || point == "cleanup:start"
			if st := s.run(env, "standby", "status"); (st.Code == 0) != sealed {
				t.Fatalf("standby status after a kill at %s: exit %d\n%s", point, st.Code, st.Stdout)
			}
			if point == "extract:1" || point == "cleanup:start" {
				// extract:1 is inside the extraction, which runs without the run lock, in the
				// refresh's private work dir; cleanup:start is after the seal, before the work
				// dir is removed.
				work := glob(t, s.Install+".standby.tmp-*")
				if len(work) != 1 {
					t.Fatalf("no work dir after a kill at %s: %v", point, work)
				}
				fi, err := os.Stat(work[0])
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o700 {
					t.Fatalf("the refresh's work dir %s has mode %v, want 0700", work[0], fi.Mode().Perm())
				}
			}
			startBroken(t, s, env, url)
			r := s.run(env, "emergency", "--json")
			s.assertRolledBack(r, url)
			sb := standbyOf(t, r)
			if used, _ := sb["used"].(bool); used != sealed {
				t.Fatalf("after a refresh killed at %s the emergency's standby: %v", point, sb)
			}
			if !sealed && sb["reason"] == "" {
				t.Fatalf("the emergency does not say why it did not use the standby: %v", sb)
			}
			if left := glob(t, s.Install+".standby.tmp-*"); len(left) != 0 {
				t.Fatalf("what the killed refresh left is still there: %v", left)
			}
			if left := glob(t, s.Install+".standby.old-*"); len(left) != 0 {
				t.Fatalf("a set-aside standby is still there: %v", left)
			}
			// the emergency's own refresh gave the killed refresh an outcome
			s.noUnfinishedRuns("after a refresh killed at " + point + " and an emergency")
		})
	}
}

// TestStandbyEmergencyKilled SIGKILLs an emergency that took the standby, before and after
// its swap: the rerun recovers it as it recovers any emergency (the staging dir that was the
// standby is removed, or the swapped-in tree kept) and ends healthy.
func TestStandbyEmergencyKilled(t *testing.T) {
	for _, point := range []string{"preflight:done", "stop:done", "check_data:done", "swap:done", "start:done"} {
		t.Run(strings.ReplaceAll(point, ":", "_"), func(t *testing.T) {
			s := newSandbox(t)
			s.goodBackupBrokenInstall()
			env, url := commandService(t, s)
			s.refreshStandby(env)
			startBroken(t, s, env, url)
			killed := s.run(append([]string{"CFROLLBACK_TEST_KILL_AT=" + point}, env...), "emergency", "--json")
			if killed.Code != -1 {
				t.Fatalf("emergency with a kill at %s: exit %d, want killed\n%s\n%s", point, killed.Code, killed.Stdout, killed.Stderr)
			}
			if _, err := os.Stat(s.Install + ".standby.seal"); err == nil {
				t.Fatalf("after a kill at %s the standby's seal is still there: the emergency did not take it", point)
			}
			r := s.run(env, "emergency", "--json")
			s.assertRolledBack(r, url)
			if rec, _ := r.JSON["recovered"].(map[string]any); rec == nil {
				t.Fatalf("the rerun did not report recovering the killed run:\n%s", r.Stdout)
			}
			if _, broken := dirsHolding(t, s.Install+"-failed-*", "2.0.0-phase2"); broken != 1 {
				t.Fatalf("%d failed dirs hold the broken version, want 1", broken)
			}
			if st := s.run(env, "standby", "status"); st.Code != 0 {
				t.Fatalf("no ready standby after the recovered emergency: exit %d\n%s", st.Code, st.Stdout)
			}
		})
	}
}

// TestStandbyRefreshAfterEmergencyKilled SIGKILLs the emergency inside the standby refresh it
// runs after its outcome (the emergency took the standby, so the only extraction is the
// refresh's, which runs without the lock): the rollback is finished and journaled ok, the
// service healthy; no seal vouches for the half-extracted tree; the next refresh removes the
// work dir it left and ends ok, and history shows no run without an outcome.
func TestStandbyRefreshAfterEmergencyKilled(t *testing.T) {
	s := newSandbox(t)
	s.goodBackupBrokenInstall()
	env, url := commandService(t, s)
	s.refreshStandby(env)
	startBroken(t, s, env, url)
	killed := s.run(append([]string{"CFROLLBACK_TEST_KILL_AT=extract:1"}, env...), "emergency", "--json")
	if killed.Code != -1 {
		t.Fatalf("emergency with a kill in its refresh: exit %d, want killed\n%s\n%s", killed.Code, killed.Stdout, killed.Stderr)
	}
	body := waitHTTP(t, url, 200, 5*time.Second)
	if !strings.Contains(body, `"version":"1.0.0"`) {
		t.Fatalf("health after the killed refresh: %s", body)
	}
	if work := glob(t, s.Install+".standby.tmp-*"); len(work) != 1 {
		t.Fatalf("no work dir: the kill was not inside the refresh's extraction: %v", work)
	}
	if st := s.run(env, "standby", "status"); st.Code == 0 {
		t.Fatalf("standby status says ready after a refresh killed mid-extraction:\n%s", st.Stdout)
	}
	h := s.run(env, "history", "--json")
	if h.Code != 0 || !strings.Contains(h.Stdout, `"outcome": "ok"`) {
		t.Fatalf("history does not show the rollback ok: exit %d\n%s", h.Code, h.Stdout)
	}
	s.refreshStandby(env)
	if left := glob(t, s.Install+".standby.tmp-*"); len(left) != 0 {
		t.Fatalf("the next refresh left the killed one's work dir: %v", left)
	}
	s.noUnfinishedRuns("after the next refresh")
	if v := s.run(nil, "journal", "verify"); v.Code != 0 {
		t.Fatalf("journal verify: %s %s", v.Stdout, v.Stderr)
	}
}

// noUnfinishedRuns fails when the journal holds a run without an outcome.
func (s *sandbox) noUnfinishedRuns(when string) {
	s.t.Helper()
	recs, err := journal.ReadAll(filepath.Join(s.Dir, "log", "journal.jsonl"))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, run := range journal.Runs(recs) {
		if run.Unfinished() {
			s.t.Fatalf("run %s (%s) has no outcome %s", run.ID, run.Command, when)
		}
	}
}
