package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/install"
)

// commandService runs the drill app under the `command` manager.
func commandService(t *testing.T, s *sandbox) (env []string, url string) {
	t.Helper()
	port, err := drillapp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	pid := filepath.Join(s.Dir, "run", "app.pid")
	logf := filepath.Join(s.Dir, "run", "app.log")
	url = fmt.Sprintf("http://127.0.0.1:%d/health", port)
	env = []string{
		"CFROLLBACK_SERVICE_MANAGER=command",
		fmt.Sprintf("CFROLLBACK_SERVICE_START_COMMAND=nohup '%s' drill-app --install '%s' --addr 127.0.0.1:%d --pidfile '%s' >>'%s' 2>&1 </dev/null &",
			binary(t), s.Install, port, pid, logf),
		fmt.Sprintf("CFROLLBACK_SERVICE_STOP_COMMAND=[ -f '%[1]s' ] && kill $(cat '%[1]s') 2>/dev/null; true", pid),
		fmt.Sprintf("CFROLLBACK_SERVICE_STATUS_COMMAND=[ -f '%[1]s' ] && kill -0 $(cat '%[1]s') 2>/dev/null", pid),
		"CFROLLBACK_HEALTH_URL=" + url,
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(pid); err == nil {
			var p int
			if _, err := fmt.Sscan(string(b), &p); err == nil && p > 0 {
				if proc, err := os.FindProcess(p); err == nil {
					_ = proc.Kill()
				}
			}
		}
	})
	return env, url
}

// TestCrashAtEveryStep SIGKILLs cfrollback at each step boundary of the
// emergency procedure, inside the extraction into staging, and between the
// two renames of the swap's fallback, then runs it again: the second run must
// end healthy with the install complete, exactly one failed dir holding the
// broken version, live data carried over and no staging left.
//
// The install dir is never missing in between, except at swap:between: the
// fallback (for filesystems that refuse RENAME_EXCHANGE) has renamed the
// install away and not yet renamed staging in, so the install path is empty
// until the rerun, which finds the staged tree by its recorded inode, renames
// it in and completes the run. The RENAME_EXCHANGE swap is one syscall: the
// kills right before and after it are swap:start and swap:done.
func TestCrashAtEveryStep(t *testing.T) {
	const forceTwoRenames = "CFROLLBACK_TEST_FORCE_TWO_RENAMES=1"
	type crashPoint struct {
		point string
		env   []string // extra environment of the killed run
		// midExtract: killed inside the extraction, a partial staging dir is left
		midExtract bool
		// installMissing: killed between the fallback's renames
		installMissing bool
	}
	var points []crashPoint
	for _, p := range []string{
		"preflight:start", "preflight:done", "stop:start", "stop:done", "carry_over:start", "carry_over:done",
		"check_data:start", "check_data:done", "swap:start", "swap:done", "keep_failed:start", "keep_failed:done", "start:start", "start:done", "health:start",
	} {
		points = append(points, crashPoint{point: p})
	}
	points = append(points,
		crashPoint{point: "extract:1", midExtract: true},
		crashPoint{point: "extract:5", midExtract: true},
		crashPoint{point: "swap:between", env: []string{forceTwoRenames}, installMissing: true},
	)
	for _, cp := range points {
		point := cp.point
		t.Run(strings.ReplaceAll(point, ":", "_"), func(t *testing.T) {
			s := newSandbox(t)
			s.goodBackupBrokenInstall()
			env, url := commandService(t, s)
			startBroken(t, s, env, url)

			killEnv := append(append([]string{"CFROLLBACK_TEST_KILL_AT=" + point}, cp.env...), env...)
			killed := s.run(killEnv, "emergency", "--json")
			if killed.Code != -1 {
				t.Fatalf("run with kill at %s: exit %d, want killed by SIGKILL\n%s\n%s", point, killed.Code, killed.Stdout, killed.Stderr)
			}
			switch {
			case cp.installMissing:
				// Between the renames: the old tree is already at the failed
				// dir, the restored one still at its staging path.
				if install.Exists(s.Install) {
					t.Fatalf("after a kill at %s the install dir exists: the kill was not between the renames", point)
				}
				if n := len(glob(t, s.Install+".staging-*")); n != 1 {
					t.Fatalf("after a kill at %s: %d staging dirs, want the staged tree", point, n)
				}
			default:
				if _, err := os.Stat(filepath.Join(s.Install, drillapp.VersionFile)); err != nil {
					t.Fatalf("after a kill at %s the install dir is incomplete: %v", point, err)
				}
			}
			if cp.midExtract && len(glob(t, s.Install+".staging-*")) != 1 {
				t.Fatalf("after a kill at %s no partial staging dir: the kill was not inside the extraction", point)
			}
			hist := s.run(nil, "history")
			if !strings.Contains(hist.Stdout, "INTERRUPTED") {
				t.Fatalf("history does not show the interrupted run:\n%s", hist.Stdout)
			}

			r := s.run(env, "emergency", "--json")
			s.assertRolledBack(r, url)
			rec, _ := r.JSON["recovered"].(map[string]any)
			if rec == nil {
				t.Fatalf("second run did not report recovering the interrupted one:\n%s", r.Stdout)
			}
			if cp.installMissing && rec["action"] != "completed" {
				t.Fatalf("recovery after a kill between the renames: %v, want completed (no second rollback)", rec)
			}
			// exactly one failed dir holds the broken version: nothing lost, nothing doubled
			failed, broken := dirsHolding(t, s.Install+"-failed-*", "2.0.0-phase2")
			if broken != 1 {
				t.Fatalf("failed dirs %v: %d hold the broken version, want 1", failed, broken)
			}
		})
	}
}

// TestTwoRenameFallback runs a whole emergency through the swap's fallback
// (forced, as on a filesystem that refuses RENAME_EXCHANGE): it must keep
// the same promises as the atomic swap.
func TestTwoRenameFallback(t *testing.T) {
	s := newSandbox(t)
	s.goodBackupBrokenInstall()
	env, url := commandService(t, s)
	startBroken(t, s, env, url)
	r := s.run(append(env, "CFROLLBACK_TEST_FORCE_TWO_RENAMES=1"), "emergency", "--json")
	s.assertRolledBack(r, url)
	if !strings.Contains(r.Stdout, "two renames") {
		t.Fatalf("the swap did not take the fallback:\n%s", r.Stdout)
	}
}

func startBroken(t *testing.T, s *sandbox, env []string, url string) {
	t.Helper()
	var startCmd string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "CFROLLBACK_SERVICE_START_COMMAND="); ok {
			startCmd = v
		}
	}
	if err := runShell(startCmd); err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, url, 503, 10*time.Second)
}
