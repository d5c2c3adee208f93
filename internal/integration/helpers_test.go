package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cfrollback once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cfrollback-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "cfrollback")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/cfrollback")
		cmd.Dir = testenv.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// sandbox is one test's install, backups, journal and settings.
type sandbox struct {
	t       *testing.T
	Dir     string
	Install string
	Backups string
	Env     []string
}

func newSandbox(t *testing.T) *sandbox {
	dir := t.TempDir()
	s := &sandbox{t: t, Dir: dir, Install: filepath.Join(dir, "opt", "claude-flow"), Backups: filepath.Join(dir, "backups")}
	for _, d := range []string{filepath.Join(dir, "opt"), s.Backups, filepath.Join(dir, "run"), filepath.Join(dir, "log")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.Env = []string{
		"CFROLLBACK_INSTALL_DIR=" + s.Install,
		"CFROLLBACK_BACKUP_DIR=" + s.Backups,
		"CFROLLBACK_JOURNAL=" + filepath.Join(dir, "log", "journal.jsonl"),
		"CFROLLBACK_LOCK=" + filepath.Join(dir, "run", "cfrollback.lock"),
		"CFROLLBACK_LOG_DIR=" + filepath.Join(dir, "log"),
		"CFROLLBACK_BACKUP_STATE=" + filepath.Join(dir, "state", "backups.json"),
		"CFROLLBACK_STATE_DIR=" + filepath.Join(dir, "state"),
		"CFROLLBACK_DATABASE_BACKUP_DIR=" + filepath.Join(dir, "dbbackups"),
		"CFROLLBACK_HEALTH_INTERVAL=100ms",
		"CFROLLBACK_HEALTH_CONSECUTIVE=2",
		"CFROLLBACK_HEALTH_WAIT_TIMEOUT=20s",
		"CFROLLBACK_CONFIG=" + filepath.Join(dir, "none.yaml"),
		"NO_COLOR=1",
	}
	if err := os.WriteFile(filepath.Join(dir, "none.yaml"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// goodBackupBrokenInstall lays out v1 (healthy), backs it up with GNU tar,
// then deploys v2 (broken) in place, the way a bad deploy would.
func (s *sandbox) goodBackupBrokenInstall() string {
	t := s.t
	if err := drillapp.WriteInstall(s.Install, "1.0.0", true); err != nil {
		t.Fatal(err)
	}
	bk := filepath.Join(s.Backups, "backup-20250104-140000.tar.gz")
	if out, err := exec.Command("tar", "-C", s.Install, "-czf", bk, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	if err := drillapp.WriteInstall(s.Install, "2.0.0-phase2", false); err != nil {
		t.Fatal(err)
	}
	return bk
}

type runResult struct {
	Code   int
	Stdout string
	Stderr string
	JSON   map[string]any
}

func (s *sandbox) run(extraEnv []string, args ...string) runResult {
	s.t.Helper()
	cmd := exec.Command(binary(s.t), args...)
	cmd.Env = append(append(os.Environ(), s.Env...), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := runResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode() // -1 when killed by a signal
	default:
		s.t.Fatalf("run %v: %v", args, err)
	}
	if strings.HasPrefix(strings.TrimSpace(r.Stdout), "{") {
		_ = json.Unmarshal(out.Bytes(), &r.JSON)
	}
	return r
}

func waitHTTP(t *testing.T, url string, wantStatus int, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == wantStatus {
				return b.String()
			}
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, b.String())
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d within %s; last: %s", url, wantStatus, within, last)
	return ""
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// assertRolledBack checks the promises of a successful emergency run.
func (s *sandbox) assertRolledBack(r runResult, url string) {
	t := s.t
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("emergency exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if r.JSON["outcome"] != "ok" {
		t.Fatalf("outcome %v", r.JSON["outcome"])
	}
	if d, _ := r.JSON["downtime_ms"].(float64); d <= 0 {
		t.Fatalf("downtime_ms %v, want > 0", r.JSON["downtime_ms"])
	}
	body := waitHTTP(t, url, 200, 5*time.Second)
	if !strings.Contains(body, `"version":"1.0.0"`) {
		t.Fatalf("health after rollback: %s", body)
	}
	failed, _ := r.JSON["failed_dir"].(string)
	if got := readFile(t, filepath.Join(failed, drillapp.VersionFile)); got != "2.0.0-phase2" {
		t.Fatalf("failed dir %s holds version %q", failed, got)
	}
	if got := readFile(t, filepath.Join(s.Install, drillapp.VersionFile)); got != "1.0.0" {
		t.Fatalf("install holds version %q", got)
	}
	// live data written by the broken version was carried over
	if data := readFile(t, filepath.Join(s.Install, drillapp.DataFile)); !strings.Contains(data, "started version 2.0.0-phase2") {
		t.Fatalf("live data lost: %q", data)
	}
	if st := glob(t, s.Install+".staging-*"); len(st) != 0 {
		t.Fatalf("staging left behind: %v", st)
	}
	h := s.run(nil, "history", "--json")
	if h.Code != 0 || !strings.Contains(h.Stdout, `"outcome": "ok"`) {
		t.Fatalf("history: %d %s %s", h.Code, h.Stdout, h.Stderr)
	}
	if v := s.run(nil, "journal", "verify"); v.Code != 0 {
		t.Fatalf("journal verify: %s %s", v.Stdout, v.Stderr)
	}
}

// dirsHolding lists the dirs matching pattern and counts those whose drill app is version.
func dirsHolding(t *testing.T, pattern, version string) (dirs []string, n int) {
	t.Helper()
	dirs = glob(t, pattern)
	for _, d := range dirs {
		if v, err := os.ReadFile(filepath.Join(d, drillapp.VersionFile)); err == nil && strings.TrimSpace(string(v)) == version {
			n++
		}
	}
	return dirs, n
}
