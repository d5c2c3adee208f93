package integration

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// smallFS mounts a size-limited tmpfs at dir for the test (root only).
func smallFS(t *testing.T, dir string, size string) {
	t.Helper()
	testenv.RequireRoot(t)
	mustDo(t, os.MkdirAll(dir, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Require(t, false, "mount -t tmpfs ("+strings.TrimSpace(string(out))+")", "run the tests as root on a kernel that allows tmpfs mounts")
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

// sandboxOn is a sandbox whose install dir sits on fsDir.
func sandboxOn(t *testing.T, fsDir string) *sandbox {
	s := newSandbox(t)
	s.Install = filepath.Join(fsDir, "claude-flow")
	for i, e := range s.Env {
		if strings.HasPrefix(e, "CFROLLBACK_INSTALL_DIR=") {
			s.Env[i] = "CFROLLBACK_INSTALL_DIR=" + s.Install
		}
	}
	return s
}

// TestFaultDiskFullDuringStaging: the backup is small compressed but
// expands past the free space; extraction hits ENOSPC while the service
// still runs. Exit 3, staging gone, install and service untouched.
func TestFaultDiskFullDuringStaging(t *testing.T) {
	fsDir := filepath.Join(t.TempDir(), "small")
	smallFS(t, fsDir, "96m")
	s := sandboxOn(t, fsDir)
	mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
	// 160 MB of zeros compress to ~160 KB: the free-space precheck passes,
	// the extraction cannot.
	mustDo(t, os.WriteFile(filepath.Join(s.Install, "big.bin"), nil, 0o644))
	src := t.TempDir()
	mustDo(t, drillapp.WriteInstall(src, "1.0.0", true))
	mustDo(t, os.WriteFile(filepath.Join(src, "big.bin"), make([]byte, 160<<20), 0o644))
	bk := filepath.Join(s.Backups, "backup-20250104-140000.tar.gz")
	if out, err := exec.Command("tar", "-C", src, "-czf", bk, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	mustDo(t, drillapp.WriteInstall(s.Install, "2.0.0-phase2", false))
	env := shellService(t, s)
	before := treeDigest(t, fsDir)
	r := s.run(env, "emergency", "--json")
	if r.Code != 3 {
		t.Fatalf("exit %d, want 3\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout+r.Stderr, "no space left on device") || !strings.Contains(r.Stdout+r.Stderr, "free some space") {
		t.Fatalf("the error does not say the disk is full and what to do:\n%s\n%s", r.Stdout, r.Stderr)
	}
	if after := treeDigest(t, fsDir); after != before {
		t.Fatalf("the small filesystem changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "service.log")); err == nil {
		t.Fatal("the service was touched")
	}
}

// TestFaultNotEnoughSpaceIsPreflight: incompressible data larger than the
// free space is refused before any extraction, with the sizes named.
func TestFaultNotEnoughSpaceIsPreflight(t *testing.T) {
	fsDir := filepath.Join(t.TempDir(), "small")
	smallFS(t, fsDir, "72m")
	s := sandboxOn(t, fsDir)
	src := t.TempDir()
	mustDo(t, drillapp.WriteInstall(src, "1.0.0", true))
	noise := make([]byte, 16<<20)
	_, _ = rand.Read(noise)
	mustDo(t, os.WriteFile(filepath.Join(src, "noise.bin"), noise, 0o644))
	bk := filepath.Join(s.Backups, "backup-20250104-140000.tar.gz")
	if out, err := exec.Command("tar", "-C", src, "-czf", bk, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	mustDo(t, drillapp.WriteInstall(s.Install, "2.0.0-phase2", false))
	env := shellService(t, s)
	r := s.run(env, "emergency")
	if r.Code != 3 || !strings.Contains(r.Stderr, "not enough free space") {
		t.Fatalf("exit %d, want 3 naming the free space\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if m := glob(t, s.Install+".staging-*"); len(m) != 0 {
		t.Fatalf("staging left: %v", m)
	}
}

// TestFaultNeverHealthy: the backup itself is broken (its app never answers
// 2xx). Exit 5 with the undo command; the failed install kept; undo puts it
// back and keeps the restored one.
func TestFaultNeverHealthy(t *testing.T) {
	s := newSandbox(t)
	mustDo(t, drillapp.WriteInstall(s.Install, "0.9.0-also-broken", false))
	bk := filepath.Join(s.Backups, "backup-20250104-140000.tar.gz")
	if out, err := exec.Command("tar", "-C", s.Install, "-czf", bk, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	mustDo(t, drillapp.WriteInstall(s.Install, "2.0.0-phase2", false))
	env, url := commandService(t, s)
	startBroken(t, s, env, url)
	r := s.run(append(env, "CFROLLBACK_HEALTH_WAIT_TIMEOUT=2s"), "emergency", "--json")
	if r.Code != 5 || r.JSON["outcome"] != "unhealthy" {
		t.Fatalf("exit %d outcome %v, want 5 unhealthy\n%s\n%s", r.Code, r.JSON["outcome"], r.Stdout, r.Stderr)
	}
	runID, _ := r.JSON["run_id"].(string)
	if !strings.Contains(r.Stdout, "cfrollback undo "+runID) {
		t.Fatalf("no undo command in the result:\n%s", r.Stdout)
	}
	failed, _ := r.JSON["failed_dir"].(string)
	if v := readFile(t, filepath.Join(failed, drillapp.VersionFile)); v != "2.0.0-phase2" {
		t.Fatalf("failed dir holds %q", v)
	}
	u := s.run(env, "undo", runID, "--json")
	if u.Code != 0 {
		t.Fatalf("undo: exit %d\n%s\n%s", u.Code, u.Stdout, u.Stderr)
	}
	if v := readFile(t, filepath.Join(s.Install, drillapp.VersionFile)); v != "2.0.0-phase2" {
		t.Fatalf("after undo the install holds %q", v)
	}
	kept, _ := u.JSON["kept_dir"].(string)
	if v := readFile(t, filepath.Join(kept, drillapp.VersionFile)); v != "0.9.0-also-broken" {
		t.Fatalf("the restored install was not kept aside: %q", v)
	}
}

// TestFaultJournalUnwritable: a journal that cannot be written stops the
// run before anything is touched (a step that is not journaled could not
// be resumed).
func TestFaultJournalUnwritable(t *testing.T) {
	s := newSandbox(t)
	s.goodBackupBrokenInstall()
	env := shellService(t, s)
	blocker := filepath.Join(s.Dir, "not-a-dir")
	mustDo(t, os.WriteFile(blocker, nil, 0o644))
	before := treeDigest(t, s.Dir)
	r := s.run(append(env, "CFROLLBACK_JOURNAL="+filepath.Join(blocker, "journal.jsonl")), "emergency")
	if r.Code != 3 || !strings.Contains(r.Stderr, "journal") {
		t.Fatalf("exit %d, want 3 naming the journal\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if after := treeDigest(t, s.Dir); after != before {
		t.Fatalf("changed:\n%s\n%s", before, after)
	}
}

// TestFaultBackupDirUnreadable: backup.dir that cannot be listed is exit 3
// with the path named; the service is never stopped.
func TestFaultBackupDirUnreadable(t *testing.T) {
	s := newSandbox(t)
	mustDo(t, drillapp.WriteInstall(s.Install, "2.0.0-phase2", false))
	env := shellService(t, s)
	notADir := filepath.Join(s.Dir, "backups-file")
	mustDo(t, os.WriteFile(notADir, []byte("x"), 0o644))
	r := s.run(append(env, "CFROLLBACK_BACKUP_DIR="+notADir), "emergency")
	if r.Code != 3 || !strings.Contains(r.Stderr, notADir) {
		t.Fatalf("exit %d, want 3 naming %s\n%s", r.Code, notADir, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "service.log")); err == nil {
		t.Fatal("the service was touched")
	}
}

// TestFaultTwoRunsAtOnce: of two emergencies started together, one wins
// and the other exits 6 naming it; the winner completes.
func TestFaultTwoRunsAtOnce(t *testing.T) {
	s := newSandbox(t)
	s.goodBackupBrokenInstall()
	env := shellService(t, s)
	env = append(env, "CFROLLBACK_SERVICE_STOP_COMMAND=sleep 1; rm -f '"+filepath.Join(s.Dir, "running")+"'")
	ch := make(chan runResult, 2)
	for i := 0; i < 2; i++ {
		go func() { ch <- s.runQuiet(env, "emergency") }()
	}
	a, b := <-ch, <-ch
	codes := fmt.Sprint(a.Code, b.Code)
	if codes != "0 6" && codes != "6 0" {
		t.Fatalf("exit codes %s, want one 0 and one 6\nA: %s%s\nB: %s%s", codes, a.Stdout, a.Stderr, b.Stdout, b.Stderr)
	}
	loser := a
	if a.Code == 0 {
		loser = b
	}
	if !strings.Contains(loser.Stderr, "another cfrollback run holds the lock: pid") {
		t.Fatalf("the loser does not name the holder: %s", loser.Stderr)
	}
	if v := readFile(t, filepath.Join(s.Install, drillapp.VersionFile)); v != "1.0.0" {
		t.Fatalf("install holds %q", v)
	}
}

// TestFaultSystemdIgnoresSIGTERM: a unit whose main process ignores SIGTERM
// is still stopped (systemd escalates to SIGKILL after TimeoutStopSec) and
// the rollback completes. The app runs under a shell that ignores TERM: a
// Go program would re-enable the signal itself.
func TestFaultSystemdIgnoresSIGTERM(t *testing.T) {
	sd := testenv.Systemd(t)
	s := newSandbox(t)
	s.goodBackupBrokenInstall()
	port, err := drillapp.FreePort()
	mustDo(t, err)
	unit := fmt.Sprintf(`[Service]
Type=simple
ExecStart=/bin/sh -c 'trap "" TERM; %s drill-app --install %s --addr 127.0.0.1:%d & wait'
KillMode=mixed
TimeoutStopSec=2
`, binary(t), s.Install, port)
	mustDo(t, sd.WriteUnit("cfr-stubborn.service", unit))
	if out, err := sd.Exec("systemctl", "start", "cfr-stubborn.service"); err != nil {
		t.Fatalf("start: %v %s", err, out)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	waitHTTP(t, url, 503, 10*time.Second)
	r := s.run([]string{"CFROLLBACK_SERVICE_MANAGER=systemd", "CFROLLBACK_SERVICE_UNIT=cfr-stubborn", "CFROLLBACK_HEALTH_URL=" + url,
		"CFROLLBACK_SERVICE_STOP_TIMEOUT=20s"}, "emergency", "--json")
	s.assertRolledBack(r, url)
	// the stop really waited for systemd's SIGKILL: the main process
	// ignored SIGTERM (KillMode=mixed sends TERM to it alone)
	steps, _ := r.JSON["steps"].([]any)
	stopMS := -1.0
	for _, st := range steps {
		if m, _ := st.(map[string]any); m["name"] == "stop" {
			stopMS, _ = m["duration_ms"].(float64)
		}
	}
	if stopMS < 1900 {
		t.Fatalf("stop took %v ms; the unit did not ignore SIGTERM as intended (TimeoutStopSec=2)", stopMS)
	}
}

// TestFaultPM2IgnoresSIGTERM: a pm2 app whose main process ignores SIGTERM
// is still stopped (pm2 SIGKILLs what is left of the process tree after the
// app's kill_timeout) and the rollback completes. The main process is a shell
// that ignores TERM and INT (a Go program would re-enable them itself) and
// outlives its drill-app child; the daemon is told to stop apps with SIGTERM
// (PM2_KILL_SIGNAL; pm2's own default is SIGINT, which the shell ignores too).
func TestFaultPM2IgnoresSIGTERM(t *testing.T) {
	const killTimeout = 1500 * time.Millisecond
	pm2 := testenv.PM2(t)
	home := testenv.PM2Home(t, pm2)
	s := newSandbox(t)
	s.goodBackupBrokenInstall()
	port, err := drillapp.FreePort()
	mustDo(t, err)
	wrapper := filepath.Join(s.Dir, "stubborn.sh")
	mustDo(t, os.WriteFile(wrapper, []byte(fmt.Sprintf(`#!/bin/sh
trap "" TERM INT
'%s' drill-app --install '%s' --addr 127.0.0.1:%d &
while :; do wait; sleep 1; done
`, binary(t), s.Install, port)), 0o755))
	start := exec.Command(pm2, "start", wrapper, "--name", "cfr-stubborn", "--interpreter", "none", "--no-autorestart",
		"--kill-timeout", fmt.Sprint(killTimeout.Milliseconds()))
	start.Env = append(os.Environ(), "PM2_HOME="+home, "PM2_KILL_SIGNAL=SIGTERM")
	start.Dir = s.Dir
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("pm2 start: %v\n%s", err, out)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	waitHTTP(t, url, 503, 15*time.Second)

	r := s.run([]string{"CFROLLBACK_SERVICE_MANAGER=pm2", "CFROLLBACK_SERVICE_PM2_NAME=cfr-stubborn", "CFROLLBACK_SERVICE_PM2_HOME=" + home,
		"CFROLLBACK_SERVICE_PM2_BIN=" + pm2, "CFROLLBACK_HEALTH_URL=" + url, "CFROLLBACK_SERVICE_STOP_TIMEOUT=20s",
		"PATH=" + filepath.Dir(pm2) + ":" + os.Getenv("PATH")}, "emergency", "--json")
	s.assertRolledBack(r, url)
	// the stop really waited for pm2's SIGKILL: the shell ignored SIGTERM
	steps, _ := r.JSON["steps"].([]any)
	stopMS := -1.0
	for _, st := range steps {
		if m, _ := st.(map[string]any); m["name"] == "stop" {
			stopMS, _ = m["duration_ms"].(float64)
		}
	}
	t.Logf("stop took %v ms (kill_timeout %s)", stopMS, killTimeout)
	if stopMS < float64(killTimeout.Milliseconds()) {
		t.Fatalf("stop took %v ms; the app did not ignore SIGTERM as intended (kill_timeout %s)", stopMS, killTimeout)
	}
}

func (s *sandbox) runQuiet(env []string, args ...string) runResult {
	cmd := exec.Command(binary(s.t), args...)
	cmd.Env = append(append(os.Environ(), s.Env...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := runResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		r.Code = -2
		r.Stderr += err.Error()
	}
	return r
}
