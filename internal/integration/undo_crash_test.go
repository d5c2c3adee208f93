package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/drillapp"
)

// TestUndoKilledAtEveryStep SIGKILLs `cfrollback undo` at each of its step boundaries
// after a successful emergency, then runs the same undo again: it must finish with the
// broken install that the emergency had replaced back in place and running, the install
// the emergency had restored kept in exactly one -undone- dir, and nothing else left.
func TestUndoKilledAtEveryStep(t *testing.T) {
	for _, point := range []string{
		"stop:start", "stop:done", "swap:start", "swap:done",
		"keep_restored:start", "keep_restored:done", "start:start", "start:done",
	} {
		t.Run(strings.ReplaceAll(point, ":", "_"), func(t *testing.T) {
			s := newSandbox(t)
			s.goodBackupBrokenInstall()
			env, url := commandService(t, s)
			startBroken(t, s, env, url)
			r := s.run(env, "emergency", "--json")
			s.assertRolledBack(r, url)
			runID, _ := r.JSON["run_id"].(string)
			failed, _ := r.JSON["failed_dir"].(string)

			killed := s.run(append([]string{"CFROLLBACK_TEST_KILL_AT=" + point}, env...), "undo", runID, "--json")
			if killed.Code != -1 {
				t.Fatalf("undo with kill at %s: exit %d, want killed\n%s\n%s", point, killed.Code, killed.Stdout, killed.Stderr)
			}
			if _, err := os.Stat(filepath.Join(s.Install, drillapp.VersionFile)); err != nil {
				t.Fatalf("after a kill at %s the install dir is incomplete: %v", point, err)
			}

			u := s.run(env, "undo", runID, "--json")
			if u.Code != 0 {
				t.Fatalf("undo after a kill at %s: exit %d\n%s\n%s", point, u.Code, u.Stdout, u.Stderr)
			}
			if v := readFile(t, filepath.Join(s.Install, drillapp.VersionFile)); v != "2.0.0-phase2" {
				t.Fatalf("after the undo the install holds %q, want the broken 2.0.0-phase2 back", v)
			}
			undone, good := dirsHolding(t, s.Install+"-undone-*", "1.0.0")
			if good != 1 {
				t.Fatalf("undone dirs %v: %d hold the restored 1.0.0, want exactly 1", undone, good)
			}
			if _, err := os.Stat(failed); !os.IsNotExist(err) {
				t.Errorf("the failed dir %s is still there: %v", failed, err)
			}
			if m := glob(t, s.Install+"-failed-*"); len(m) != 0 {
				t.Errorf("failed dirs left: %v", m)
			}
			// the broken version runs again (it answers 503, as before the emergency)
			waitHTTP(t, url, 503, 10*time.Second)
			again := s.run(env, "undo", runID)
			if again.Code != 3 || !strings.Contains(again.Stderr, "was undone already, by run") {
				t.Errorf("a third undo: exit %d, want 3 saying it was undone already\n%s", again.Code, again.Stderr)
			}
			if v := s.run(nil, "journal", "verify"); v.Code != 0 {
				t.Errorf("journal verify: exit %d\n%s%s", v.Code, v.Stdout, v.Stderr)
			}
		})
	}
}
