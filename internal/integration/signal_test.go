package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// Bounds of TestSignal. The goal is an exit within 1 s of the signal; a run
// that takes longer than signalExitBound fails, and one that has not ended
// after signalGiveUp is SIGKILLed (its group) so a hang fails in seconds.
const (
	signalExitBound = 3 * time.Second
	signalGiveUp    = 15 * time.Second
	reachWaitBound  = 20 * time.Second
)

// bgRun is the real binary running in the background in its own process group,
// its stdout and stderr going to files (not pipes: a grandchild that inherits
// them must not keep Wait waiting).
type bgRun struct {
	t              *testing.T
	cmd            *exec.Cmd
	outPath, errPa string
	done           chan struct{}
	waitErr        error
	exited         time.Time
}

func (s *sandbox) startBG(env []string, args ...string) *bgRun {
	t := s.t
	t.Helper()
	dir := t.TempDir()
	b := &bgRun{t: t, outPath: filepath.Join(dir, "stdout"), errPa: filepath.Join(dir, "stderr"), done: make(chan struct{})}
	out, err := os.Create(b.outPath)
	mustDo(t, err)
	errf, err := os.Create(b.errPa)
	mustDo(t, err)
	b.cmd = exec.Command(binary(t), args...)
	b.cmd.Env = append(append(os.Environ(), s.Env...), env...)
	b.cmd.Stdout, b.cmd.Stderr = out, errf
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	errf.Close()
	go func() {
		b.waitErr = b.cmd.Wait()
		b.exited = time.Now()
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
			<-b.done
		}
	})
	return b
}

func (b *bgRun) stdout() string { x, _ := os.ReadFile(b.outPath); return string(x) }
func (b *bgRun) stderr() string { x, _ := os.ReadFile(b.errPa); return string(x) }

// reach polls cond until it holds: the run is provably inside the wait under
// test. It fails if the run ended first or cond does not hold within 20 s.
func (b *bgRun) reach(what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(reachWaitBound)
	for {
		if cond() {
			// still inside it? a run that has just ended proves nothing
			select {
			case <-b.done:
				b.t.Fatalf("the run ended (%v) before the signal; it was never inside %s\nstdout:\n%s\nstderr:\n%s", b.waitErr, what, b.stdout(), b.stderr())
			default:
			}
			return
		}
		select {
		case <-b.done:
			b.t.Fatalf("the run ended (%v) before reaching %s\nstdout:\n%s\nstderr:\n%s", b.waitErr, what, b.stdout(), b.stderr())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the run did not reach %s within %s\nstdout:\n%s\nstderr:\n%s", what, reachWaitBound, b.stdout(), b.stderr())
		}
	}
}

// interrupt sends sig the way it arrives in practice: SIGINT to the whole
// foreground process group (Ctrl-C), SIGTERM to the process (kill, systemd).
// It returns the exit code and how long the run took to end.
func (b *bgRun) interrupt(sig syscall.Signal) (code int, latency time.Duration) {
	b.t.Helper()
	pid := b.cmd.Process.Pid
	target := pid
	if sig == syscall.SIGINT {
		target = -pid
	}
	sent := time.Now()
	mustDo(b.t, syscall.Kill(target, sig))
	select {
	case <-b.done:
	case <-time.After(signalGiveUp):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-b.done
		b.t.Fatalf("still running %s after %v; SIGKILLed\nstdout:\n%s\nstderr:\n%s", signalGiveUp, sig, b.stdout(), b.stderr())
	}
	latency = b.exited.Sub(sent)
	var ee *exec.ExitError
	switch {
	case b.waitErr == nil:
	case errors.As(b.waitErr, &ee):
		code = ee.ExitCode()
	default:
		b.t.Fatal(b.waitErr)
	}
	lines := strings.Split(strings.TrimSpace(b.stderr()), "\n")
	b.t.Logf("%v: exit %d after %d ms; stderr ends: %s", sig, code, latency.Milliseconds(), strings.Join(lines[max(0, len(lines)-2):], " | "))
	if latency > signalExitBound {
		b.t.Errorf("exit %s after %v, want < %s (goal 1 s)", latency.Round(time.Millisecond), sig, signalExitBound)
	}
	return code, latency
}

// assertInterrupted: the exit code is want and the run said it was interrupted.
func (b *bgRun) assertInterrupted(code, want int) {
	b.t.Helper()
	if code != want && (want != -1 || code <= 0) {
		b.t.Errorf("exit %d, want %d (-1: any failure)\nstdout:\n%s\nstderr:\n%s", code, want, b.stdout(), b.stderr())
	}
	if !strings.Contains(strings.ToLower(b.stdout()+b.stderr()), "interrupted") {
		b.t.Errorf("no message says the run was interrupted\nstdout:\n%s\nstderr:\n%s", b.stdout(), b.stderr())
	}
}

// assertLockFree: nobody holds the lock file (a second run could take it at once).
func assertLockFree(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	mustDo(t, err)
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("the lock %s is still held after the run ended: %v", path, err)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// liveInGroup lists the processes of process group pgid that are not zombies.
func liveInGroup(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:])) // state ppid pgrp ...
		if len(f) < 3 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg == pgid && f[0] != "Z" && f[0] != "X" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// assertGroupDead: the user command that wrote its shell's pid (its process
// group: the runner starts each command as a group leader) is gone, sleep and all.
func assertGroupDead(t *testing.T, pidFile string) {
	t.Helper()
	pgid, err := strconv.Atoi(readFile(t, pidFile))
	if err != nil || pgid <= 1 {
		t.Fatalf("pid file %s: %q", pidFile, readFile(t, pidFile))
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		live := liveInGroup(pgid)
		if len(live) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range live {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			t.Fatalf("process group %d of the user command still has live processes %v after the run ended", pgid, live)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fileHasContent(p string) func() bool {
	return func() bool {
		b, err := os.ReadFile(p)
		return err == nil && len(bytes.TrimSpace(b)) > 0
	}
}

// healthServer is a loopback HTTP server the test controls: it hangs (accepts,
// reads the request, never answers), answers 503, or answers 200.
type healthServer struct {
	URL  string
	hits atomic.Int64
	mode atomic.Int32
	quit chan struct{}
}

const (
	modeHang = iota
	mode503
	mode200
)

func newHealthServer(t *testing.T, mode int32) *healthServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustDo(t, err)
	h := &healthServer{URL: "http://" + ln.Addr().String() + "/health", quit: make(chan struct{})}
	h.mode.Store(mode)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		switch h.mode.Load() {
		case modeHang:
			select {
			case <-r.Context().Done():
			case <-h.quit:
			}
		case mode503:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"starting"}`))
		default:
			_, _ = w.Write([]byte(`{"status":"ok"}`))
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		close(h.quit)
		_ = srv.Close()
	})
	return h
}

func (h *healthServer) hit() func() bool { return func() bool { return h.hits.Load() > 0 } }

// withEnv replaces (or adds) NAME=VALUE entries.
func withEnv(env []string, kv ...string) []string {
	out := append([]string(nil), env...)
	for _, e := range kv {
		name, _, _ := strings.Cut(e, "=")
		out = append(without(out, name+"="), e)
	}
	return out
}

// hugeBackup writes a valid backup-*.tar.gz holding files files of each bytes
// of zeros (at most 16 GiB, archive.DefaultLimits' per file), made of
// concatenated gzip members (one 64 MiB member of zeros, compressed once,
// repeated), so it is small and quick to make but long to read or extract.
func hugeBackup(t *testing.T, path string, files int, each int64) {
	t.Helper()
	const chunk = 64 << 20
	if each%chunk != 0 {
		t.Fatal("size must be a multiple of 64 MiB")
	}
	member := func(b []byte) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(b)
		mustDo(t, zw.Close())
		return buf.Bytes()
	}
	header := func(h *tar.Header) []byte {
		var b bytes.Buffer
		h.ModTime = time.Unix(1735999200, 0)
		mustDo(t, tar.NewWriter(&b).WriteHeader(h)) // no Close: its data follows in the next members
		return member(b.Bytes())
	}
	zeros := member(make([]byte, chunk))
	f, err := os.Create(path)
	mustDo(t, err)
	write := func(b []byte) {
		_, err := f.Write(b)
		mustDo(t, err)
	}
	write(header(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}))
	for i := range files {
		write(header(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("./big%d.bin", i), Mode: 0o644, Size: each}))
		for range each / chunk {
			write(zeros)
		}
	}
	write(member(make([]byte, 1024))) // the end-of-archive blocks
	mustDo(t, f.Close())
}

// interruptedRunRecovered asserts the style of crash_test.go: history shows the
// run INTERRUPTED, and a rerun of emergency reports recovering it with action
// and ends with the good version installed and exactly one failed dir holding
// the broken one.
func (s *sandbox) interruptedRunRecovered(env []string, action string) {
	t := s.t
	t.Helper()
	hist := s.run(nil, "history")
	if !strings.Contains(hist.Stdout, "INTERRUPTED") {
		t.Fatalf("history does not show the interrupted run:\n%s\n%s", hist.Stdout, hist.Stderr)
	}
	r := s.run(env, "emergency", "--json")
	if r.Code != 0 {
		t.Fatalf("rerun: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	rec, _ := r.JSON["recovered"].(map[string]any)
	if rec == nil || rec["action"] != action {
		t.Fatalf("rerun recovered %v, want action %q\n%s", rec, action, r.Stdout)
	}
	if got := readFile(t, filepath.Join(s.Install, drillapp.VersionFile)); got != "1.0.0" {
		t.Fatalf("after the rerun the install holds version %q", got)
	}
	if failed, broken := dirsHolding(t, s.Install+"-failed-*", "2.0.0-phase2"); broken != 1 {
		t.Fatalf("failed dirs %v: %d hold the broken version, want 1", failed, broken)
	}
	if st := glob(t, s.Install+".staging-*"); len(st) != 0 {
		t.Fatalf("staging left behind: %v", st)
	}
	if v := s.run(nil, "journal", "verify"); v.Code != 0 {
		t.Fatalf("journal verify: %s %s", v.Stdout, v.Stderr)
	}
}

func (s *sandbox) lockPath() string { return filepath.Join(s.Dir, "run", "cfrollback.lock") }

// blocker is a user command that records its shell's pid (= its process
// group) in pidFile, then sleeps for a minute.
func blocker(pidFile string) string { return "echo $$ >'" + pidFile + "'; sleep 60" }

// signalScenario starts the real binary, brings it provably inside a wait,
// sends sig and checks what the run left.
type signalScenario struct {
	name string
	run  func(t *testing.T, sig syscall.Signal)
}

var signalScenarios = []signalScenario{
	{"emergency_preflight_status_command", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		s.goodBackupBrokenInstall()
		pidf := filepath.Join(s.Dir, "run", "status.pid")
		env := withEnv(shellService(t, s), "CFROLLBACK_SERVICE_STATUS_COMMAND="+blocker(pidf))
		before := treeDigest(t, s.Dir)
		b := s.startBG(env, "emergency")
		b.reach("the service status command of preflight", fileHasContent(pidf))
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 3)
		assertLockFree(t, s.lockPath())
		assertGroupDead(t, pidf)
		if after := treeDigest(t, s.Dir); after != before {
			t.Fatalf("something changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if _, err := os.Stat(filepath.Join(s.Dir, "service.log")); err == nil {
			t.Fatalf("the service was stopped or started:\n%s", readFile(t, filepath.Join(s.Dir, "service.log")))
		}
	}},
	{"emergency_preflight_extracting_backup", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		if err := drillapp.WriteInstall(s.Install, "2.0.0-phase2", false); err != nil {
			t.Fatal(err)
		}
		hugeBackup(t, filepath.Join(s.Backups, "backup-20250104-140000.tar.gz"), 1, 16<<30)
		env := shellService(t, s)
		before := treeDigest(t, s.Dir)
		b := s.startBG(env, "emergency")
		b.reach("the extraction of the backup into staging", func() bool {
			for _, st := range glob(t, s.Install+".staging-*") {
				if fi, err := os.Stat(filepath.Join(st, "big0.bin")); err == nil && fi.Size() > 0 {
					return true
				}
			}
			return false
		})
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 3)
		assertLockFree(t, s.lockPath())
		if after := treeDigest(t, s.Dir); after != before {
			t.Fatalf("something changed (staging left?):\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if _, err := os.Stat(filepath.Join(s.Dir, "service.log")); err == nil {
			t.Fatalf("the service was stopped or started:\n%s", readFile(t, filepath.Join(s.Dir, "service.log")))
		}
	}},
	{"emergency_stop_command", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		s.goodBackupBrokenInstall()
		env := shellService(t, s)
		pidf := filepath.Join(s.Dir, "run", "stop.pid")
		b := s.startBG(withEnv(env, "CFROLLBACK_SERVICE_STOP_COMMAND="+blocker(pidf)), "emergency")
		b.reach("the service stop command", fileHasContent(pidf))
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 4)
		assertLockFree(t, s.lockPath())
		assertGroupDead(t, pidf)
		s.interruptedRunRecovered(env, "abandoned")
	}},
	{"emergency_carry_over_large", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		s.goodBackupBrokenInstall()
		// live data to carry over: 2 GiB (sparse here, but copied in full: seconds)
		f, err := os.Create(filepath.Join(s.Install, ".swarm", "big.bin"))
		mustDo(t, err)
		mustDo(t, f.Truncate(2<<30))
		mustDo(t, f.Close())
		env := shellService(t, s)
		b := s.startBG(env, "emergency")
		b.reach("copying the live data into staging", func() bool {
			for _, st := range glob(t, s.Install+".staging-*") {
				if fi, err := os.Stat(filepath.Join(st, ".swarm", "big.bin")); err == nil && fi.Size() > 0 {
					return true
				}
			}
			return false
		})
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 4)
		assertLockFree(t, s.lockPath())
		s.interruptedRunRecovered(env, "abandoned")
	}},
	{"emergency_health_wait_503", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		s.goodBackupBrokenInstall()
		h := newHealthServer(t, mode503)
		// a webhook that never answers: the interrupted run still tries to tell it, briefly
		hook := newHealthServer(t, modeHang)
		mustDo(t, os.WriteFile(filepath.Join(s.Dir, "none.yaml"), []byte("notify:\n  timeout: 30s\n  webhooks:\n    - name: hook\n      url: "+hook.URL+"\n"), 0o644))
		env := withEnv(shellService(t, s), "CFROLLBACK_HEALTH_URL="+h.URL, "CFROLLBACK_HEALTH_WAIT_TIMEOUT=60s")
		b := s.startBG(env, "emergency")
		b.reach("the wait for health after the start", func() bool { return strings.Contains(b.stderr(), "==> health") && h.hits.Load() > 0 })
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 4)
		assertLockFree(t, s.lockPath())
		if hook.hits.Load() < 2 { // rollback_started before the stop, then the interrupted run's outcome
			t.Errorf("the webhook was not told about the interrupted run")
		}
		mustDo(t, os.WriteFile(filepath.Join(s.Dir, "none.yaml"), []byte("{}\n"), 0o644))
		h.mode.Store(mode200)
		s.interruptedRunRecovered(env, "completed")
	}},
	{"emergency_second_signal_kills", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		s.goodBackupBrokenInstall()
		h := newHealthServer(t, mode503)
		// the first signal's run ends by telling a webhook that never answers (0.5 s)
		hook := newHealthServer(t, modeHang)
		mustDo(t, os.WriteFile(filepath.Join(s.Dir, "none.yaml"), []byte("notify:\n  timeout: 30s\n  webhooks:\n    - name: hook\n      url: "+hook.URL+"\n"), 0o644))
		env := withEnv(shellService(t, s), "CFROLLBACK_HEALTH_URL="+h.URL, "CFROLLBACK_HEALTH_WAIT_TIMEOUT=60s")
		b := s.startBG(env, "emergency")
		b.reach("the wait for health after the start", func() bool { return strings.Contains(b.stderr(), "==> health") && h.hits.Load() > 0 })
		pid := b.cmd.Process.Pid
		mustDo(t, syscall.Kill(pid, sig))
		b.reach("the webhook told of the interrupted run", func() bool { return hook.hits.Load() >= 2 }) // after rollback_started
		sent := time.Now()
		mustDo(t, syscall.Kill(pid, sig))
		select {
		case <-b.done:
		case <-time.After(signalGiveUp):
			t.Fatalf("still running %s after a second %v", signalGiveUp, sig)
		}
		var ee *exec.ExitError
		if !errors.As(b.waitErr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != sig {
			t.Fatalf("after a second %v: %v, want killed by it", sig, b.waitErr)
		}
		t.Logf("second %v: killed after %d ms", sig, b.exited.Sub(sent).Milliseconds())
		if d := b.exited.Sub(sent); d > signalExitBound {
			t.Errorf("killed %s after the second signal, want < %s", d, signalExitBound)
		}
		assertLockFree(t, s.lockPath())
		h.mode.Store(mode200)
		mustDo(t, os.WriteFile(filepath.Join(s.Dir, "none.yaml"), []byte("{}\n"), 0o644))
		s.interruptedRunRecovered(env, "completed")
	}},
	{"emergency_health_wait_hanging_url", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		s.goodBackupBrokenInstall()
		h := newHealthServer(t, modeHang)
		env := withEnv(shellService(t, s), "CFROLLBACK_HEALTH_URL="+h.URL, "CFROLLBACK_HEALTH_WAIT_TIMEOUT=60s", "CFROLLBACK_HEALTH_TIMEOUT=30s")
		b := s.startBG(env, "emergency")
		b.reach("a health request that is never answered", func() bool { return strings.Contains(b.stderr(), "==> health") && h.hits.Load() > 0 })
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 4)
		assertLockFree(t, s.lockPath())
		h.mode.Store(mode200)
		s.interruptedRunRecovered(env, "completed")
	}},
	{"health_check_hanging_url", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		h := newHealthServer(t, modeHang)
		b := s.startBG(withEnv(shellService(t, s), "CFROLLBACK_HEALTH_URL="+h.URL), "health-check", "--timeout", "60s")
		b.reach("the health request", h.hit())
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
	}},
	{"health_check_status_command", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		pidf := filepath.Join(s.Dir, "run", "status.pid")
		b := s.startBG(withEnv(shellService(t, s), "CFROLLBACK_SERVICE_STATUS_COMMAND="+blocker(pidf)), "health-check")
		b.reach("the service status command", fileHasContent(pidf))
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
		assertGroupDead(t, pidf)
	}},
	{"monitor_sampling", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		h := newHealthServer(t, modeHang)
		logf := filepath.Join(s.Dir, "app.log")
		mustDo(t, os.WriteFile(logf, []byte("start\n"), 0o644))
		b := s.startBG(withEnv(shellService(t, s), "CFROLLBACK_HEALTH_URL="+h.URL, "CFROLLBACK_HEALTH_TIMEOUT=60s"),
			"monitor", "--interval", "100ms", "--log-files", logf)
		b.reach("a sample's health request", h.hit())
		code, _ := b.interrupt(sig)
		// monitor runs until interrupted: that is its normal end (EXIT STATUS 0)
		if code != 0 {
			t.Errorf("exit %d, want 0 (monitor's EXIT STATUS: stopped, interrupted)\nstdout:\n%s\nstderr:\n%s", code, b.stdout(), b.stderr())
		}
		assertLockFree(t, filepath.Join(s.Dir, "state", "monitor.lock"))
	}},
	{"logs_follow", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		logf := filepath.Join(s.Dir, "app.log")
		mustDo(t, os.WriteFile(logf, []byte("2025-01-04T14:00:00Z first line\n"), 0o644))
		b := s.startBG(nil, "logs", "--follow", "--files", logf)
		b.reach("following the log file", func() bool {
			f, err := os.OpenFile(logf, os.O_APPEND|os.O_WRONLY, 0)
			if err == nil {
				fmt.Fprintf(f, "%s marker line\n", time.Now().UTC().Format(time.RFC3339))
				f.Close()
			}
			return strings.Contains(b.stdout(), "marker line")
		})
		code, _ := b.interrupt(sig)
		// --follow prints "until interrupted": that is its normal end (EXIT STATUS 0)
		if code != 0 {
			t.Errorf("exit %d, want 0 (logs --follow ends when interrupted)\nstdout:\n%s\nstderr:\n%s", code, b.stdout(), b.stderr())
		}
	}},
	{"verify_hanging_url", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		s.goodBackupBrokenInstall()
		env := shellService(t, s)
		if r := s.run(env, "emergency", "--json"); r.Code != 0 { // a run for verify to record against
			t.Fatalf("emergency: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
		}
		h := newHealthServer(t, modeHang)
		logf := filepath.Join(s.Dir, "app.log")
		mustDo(t, os.WriteFile(logf, []byte("ok\n"), 0o644))
		b := s.startBG(withEnv(env, "CFROLLBACK_HEALTH_URL="+h.URL, "CFROLLBACK_HEALTH_TIMEOUT=60s"),
			"verify", "--log-files", logf, "--api-url", h.URL)
		b.reach("a health request of verify", h.hit())
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
		assertLockFree(t, s.lockPath())
		if j := readFile(t, filepath.Join(s.Dir, "log", "journal.jsonl")); strings.Contains(j, `"event":"verify"`) {
			t.Fatalf("an interrupted verify was recorded in the journal as a verdict:\n%s", j)
		}
	}},
	{"verify_hanging_api", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		ok := newHealthServer(t, mode200)
		api := newHealthServer(t, modeHang)
		logf := filepath.Join(s.Dir, "app.log")
		mustDo(t, os.WriteFile(logf, []byte("ok\n"), 0o644))
		b := s.startBG(withEnv(shellService(t, s), "CFROLLBACK_HEALTH_URL="+ok.URL),
			"verify", "--no-record", "--log-files", logf, "--api-url", api.URL)
		b.reach("the API connectivity step's request", api.hit())
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
	}},
	{"undo_stop_command", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		s.goodBackupBrokenInstall()
		env := shellService(t, s)
		r := s.run(env, "emergency", "--json")
		if r.Code != 0 {
			t.Fatalf("emergency: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
		}
		runID, _ := r.JSON["run_id"].(string)
		pidf := filepath.Join(s.Dir, "run", "stop.pid")
		b := s.startBG(withEnv(env, "CFROLLBACK_SERVICE_STOP_COMMAND="+blocker(pidf)), "undo", runID)
		b.reach("the service stop command of undo", fileHasContent(pidf))
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 4)
		assertLockFree(t, s.lockPath())
		assertGroupDead(t, pidf)
		// as after a kill: the same undo again completes it
		u := s.run(env, "undo", runID)
		if u.Code != 0 {
			t.Fatalf("undo again: exit %d\n%s\n%s", u.Code, u.Stdout, u.Stderr)
		}
		if got := readFile(t, filepath.Join(s.Install, drillapp.VersionFile)); got != "2.0.0-phase2" {
			t.Fatalf("after the undo the install holds version %q, want the failed one back", got)
		}
	}},
	{"logs_follow_journalctl", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		pidf := filepath.Join(s.Dir, "run", "journalctl.pid")
		b := s.startBG(append(shim(t, "journalctl", blocker(pidf)), "CFROLLBACK_SERVICE_MANAGER=systemd"), "logs", "--follow")
		b.reach("journalctl -f", fileHasContent(pidf))
		code, _ := b.interrupt(sig)
		if code != 0 {
			t.Errorf("exit %d, want 0 (logs --follow ends when interrupted)\nstdout:\n%s\nstderr:\n%s", code, b.stdout(), b.stderr())
		}
		assertGroupDead(t, pidf)
	}},
	{"health_check_pm2", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		pidf := filepath.Join(s.Dir, "run", "pm2.pid")
		env := shim(t, "pm2", blocker(pidf))
		// a "running daemon" (this test's pid), so cfrollback asks pm2
		home := filepath.Join(s.Dir, "pm2home")
		mustDo(t, os.MkdirAll(home, 0o700))
		mustDo(t, os.WriteFile(filepath.Join(home, "pm2.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644))
		b := s.startBG(append(env, "CFROLLBACK_SERVICE_MANAGER=pm2", "CFROLLBACK_SERVICE_PM2_HOME="+home, "CFROLLBACK_HEALTH_URL="), "health-check")
		b.reach("a pm2 command", fileHasContent(pidf))
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, -1)
		assertGroupDead(t, pidf)
	}},
	{"health_check_systemctl", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		pidf := filepath.Join(s.Dir, "run", "systemctl.pid")
		// no system bus: the systemd manager falls back to systemctl
		env := append(shim(t, "systemctl", blocker(pidf)), "CFROLLBACK_SERVICE_MANAGER=systemd", "CFROLLBACK_HEALTH_URL=",
			"DBUS_SYSTEM_BUS_ADDRESS=unix:path="+filepath.Join(s.Dir, "run", "no-bus"))
		b := s.startBG(env, "health-check")
		b.reach("systemctl", fileHasContent(pidf))
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
		assertGroupDead(t, pidf)
	}},
	{"health_check_silent_system_bus", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		sock := filepath.Join(s.Dir, "run", "bus")
		ln, err := net.Listen("unix", sock)
		mustDo(t, err)
		var accepted atomic.Int64
		var conns []net.Conn
		var mu sync.Mutex
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				mu.Lock()
				conns = append(conns, c) // held open, never answered
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			ln.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		})
		env := []string{"CFROLLBACK_SERVICE_MANAGER=systemd", "CFROLLBACK_HEALTH_URL=", "DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + sock}
		b := s.startBG(env, "health-check")
		b.reach("the D-Bus handshake", func() bool { return accepted.Load() > 0 })
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, -1)
	}},
	{"rollback_to_version_npm_view", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "2.0.0-phase2", false))
		pkg := filepath.Join(s.Install, "node_modules", "claude-flow", "package.json")
		mustDo(t, os.MkdirAll(filepath.Dir(pkg), 0o755))
		mustDo(t, os.WriteFile(pkg, []byte(`{"name": "claude-flow", "version": "2.0.0"}`+"\n"), 0o644))
		pidf := filepath.Join(s.Dir, "run", "npm.pid")
		env := append(shim(t, "npm", blocker(pidf)), shellService(t, s)...)
		env = withEnv(env, "CFROLLBACK_VERSION_INSTALL_COMMAND=npm install --prefix {install_dir} claude-flow@{version}")
		before := treeDigest(t, s.Dir)
		b := s.startBG(env, "rollback", "--to-version", "1.0.0", "--yes")
		b.reach("npm view (is the version published?)", fileHasContent(pidf))
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 3)
		assertLockFree(t, s.lockPath())
		assertGroupDead(t, pidf)
		if after := treeDigest(t, s.Dir); after != before {
			t.Fatalf("something changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if _, err := os.Stat(filepath.Join(s.Dir, "service.log")); err == nil {
			t.Fatalf("the service was stopped or started:\n%s", readFile(t, filepath.Join(s.Dir, "service.log")))
		}
	}},
	{"assess_hanging_url", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		h := newHealthServer(t, modeHang)
		logf := filepath.Join(s.Dir, "app.log")
		mustDo(t, os.WriteFile(logf, []byte("ok\n"), 0o644))
		b := s.startBG(withEnv(shellService(t, s), "CFROLLBACK_HEALTH_URL="+h.URL, "CFROLLBACK_HEALTH_TIMEOUT=60s"), "assess")
		b.reach("a health request of assess", h.hit())
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
	}},
	{"test_api_connection_hanging", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		h := newHealthServer(t, modeHang)
		b := s.startBG(nil, "test", "api-connection", "--url", h.URL, "--no-key", "--timeout", "60s")
		b.reach("the API request", h.hit())
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
	}},
	{"test_load_hanging", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		h := newHealthServer(t, modeHang)
		b := s.startBG(nil, "test", "load", "--url", h.URL, "--timeout", "60s", "--duration", "5m")
		b.reach("the load requests", h.hit())
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
	}},
	{"test_response_time_hanging", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		h := newHealthServer(t, modeHang)
		b := s.startBG(nil, "test", "response-time", "--url", h.URL, "--timeout", "60s")
		b.reach("a timed request", h.hit())
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
	}},
	{"test_webhooks_hanging", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		h := newHealthServer(t, modeHang)
		mustDo(t, os.WriteFile(filepath.Join(s.Dir, "none.yaml"), []byte("notify:\n  timeout: 60s\n  webhooks:\n    - name: hook\n      url: "+h.URL+"\n"), 0o644))
		b := s.startBG(nil, "test", "webhooks")
		b.reach("the webhook request", h.hit())
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
	}},
	{"test_backup_restore_huge", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		hugeBackup(t, filepath.Join(s.Backups, "backup-20250104-140000.tar.gz"), 1, 16<<30)
		scratch := filepath.Join(s.Dir, "scratch")
		mustDo(t, os.MkdirAll(scratch, 0o755))
		b := s.startBG(nil, "test", "backup-restore", "--dir", scratch)
		b.reach("the restore into a throwaway dir", func() bool {
			found := false
			_ = filepath.WalkDir(scratch, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Name() == "big0.bin" {
					found = true
				}
				return nil
			})
			return found
		})
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
		if left, _ := os.ReadDir(scratch); len(left) != 0 {
			t.Fatalf("the throwaway dir was not removed: %v", left)
		}
	}},
	{"database_check_large", func(t *testing.T, sig syscall.Signal) {
		testenv.RequireTool(t, "sqlite3")
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		bigDB(t, filepath.Join(s.Install, ".swarm", "memory.db"), 3000)
		b := s.startBG(nil, "database", "check", "--db", "memory")
		b.reach("integrity_check", func() bool { return cpuTicks(b.cmd.Process.Pid) > 30 })
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 3) // an interrupted check changed nothing: exit 3
	}},
	{"database_check_locked", func(t *testing.T, sig syscall.Signal) {
		testenv.RequireTool(t, "sqlite3")
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		db := filepath.Join(s.Install, ".swarm", "memory.db")
		bigDB(t, db, 1)
		holdExclusive(t, db)
		b := s.startBG([]string{"CFROLLBACK_DATABASE_BUSY_TIMEOUT=60s"}, "database", "check", "--db", "memory")
		start := time.Now()
		b.reach("the wait for the database lock", func() bool { return time.Since(start) > 1500*time.Millisecond })
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 3) // an interrupted check changed nothing: exit 3, as a run stopped before it acts
	}},
	{"database_backup_locked", func(t *testing.T, sig syscall.Signal) {
		testenv.RequireTool(t, "sqlite3")
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		db := filepath.Join(s.Install, ".swarm", "memory.db")
		bigDB(t, db, 1)
		holdExclusive(t, db)
		b := s.startBG([]string{"CFROLLBACK_DATABASE_BUSY_TIMEOUT=60s"}, "database", "backup", "--db", "memory")
		start := time.Now()
		b.reach("the wait for the database lock", func() bool { return time.Since(start) > 1500*time.Millisecond })
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
	}},
	{"memory_test_locked", func(t *testing.T, sig syscall.Signal) {
		testenv.RequireTool(t, "sqlite3")
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		db := filepath.Join(s.Install, ".swarm", "memory.db")
		bigDB(t, db, 1)
		holdExclusive(t, db)
		b := s.startBG([]string{"CFROLLBACK_DATABASE_BUSY_TIMEOUT=60s"}, "memory", "test")
		start := time.Now()
		b.reach("the wait for the database lock", func() bool { return time.Since(start) > 1500*time.Millisecond })
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
	}},
	{"database_restore_stop_command", func(t *testing.T, sig syscall.Signal) {
		testenv.RequireTool(t, "sqlite3")
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		db := filepath.Join(s.Install, ".swarm", "memory.db")
		bigDB(t, db, 1)
		env := shellService(t, s)
		if r := s.run(env, "database", "backup", "--db", "memory"); r.Code != 0 {
			t.Fatalf("database backup: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
		}
		pidf := filepath.Join(s.Dir, "run", "stop.pid")
		b := s.startBG(withEnv(env, "CFROLLBACK_SERVICE_STOP_COMMAND="+blocker(pidf)), "database", "restore", "--db", "memory", "--latest", "--stop-service")
		b.reach("the service stop command", fileHasContent(pidf))
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, -1)
		assertLockFree(t, s.lockPath())
		assertGroupDead(t, pidf)
	}},
	{"agents_status_locked_hive", func(t *testing.T, sig syscall.Signal) {
		testenv.RequireTool(t, "sqlite3")
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		db := filepath.Join(s.Install, ".hive-mind", "hive.db")
		mustDo(t, os.MkdirAll(filepath.Dir(db), 0o755))
		if out, err := exec.Command("sqlite3", db, "CREATE TABLE agents(id TEXT, status TEXT); INSERT INTO agents VALUES('a','active');").CombinedOutput(); err != nil {
			t.Fatalf("sqlite3: %v %s", err, out)
		}
		holdExclusive(t, db)
		b := s.startBG([]string{"CFROLLBACK_DATABASE_BUSY_TIMEOUT=60s"}, "agents", "status", "--health-check")
		start := time.Now()
		b.reach("the wait for the hive database's lock", func() bool { return time.Since(start) > 1500*time.Millisecond })
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, -1)
	}},
	{"baseline_hanging_url", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		h := newHealthServer(t, modeHang)
		b := s.startBG(withEnv(shellService(t, s), "CFROLLBACK_HEALTH_URL="+h.URL, "CFROLLBACK_HEALTH_TIMEOUT=60s"), "baseline", "record")
		b.reach("a baseline request", h.hit())
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, -1)
		if _, err := os.Stat(filepath.Join(s.Dir, "state", "baseline.json")); err == nil {
			t.Fatalf("an interrupted baseline was saved")
		}
	}},
	{"drill", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		dir := filepath.Join(s.Dir, "drill")
		b := s.startBG(nil, "drill", "--dir", dir)
		b.reach("the drill's app running", func() bool { return len(testenv.ProcsMentioning(dir, "drill-app")) > 0 })
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, -1)
		deadline := time.Now().Add(2 * time.Second)
		for len(testenv.ProcsMentioning(dir, "")) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if left := testenv.ProcsMentioning(dir, ""); len(left) > 0 {
			for _, p := range left {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			t.Fatalf("the drill's processes outlived it: %v", left)
		}
	}},
	{"backup_verify_huge", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		hugeBackup(t, filepath.Join(s.Backups, "backup-20250104-140000.tar.gz"), 4, 16<<30)
		b := s.startBG(nil, "backup", "verify")
		// no progress is printed off a terminal: give it time to be inside the read
		b.reach("reading the backup", func() bool { return cpuTicks(b.cmd.Process.Pid) > 50 })
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
		if _, err := os.Stat(filepath.Join(s.Dir, "state", "backups.json")); err == nil {
			t.Fatalf("an interrupted verify recorded a result:\n%s", readFile(t, filepath.Join(s.Dir, "state", "backups.json")))
		}
	}},
	{"backup_create_large_tree", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		// sparse: no disk used, but 64 GiB to read and compress
		for i := range 8 {
			f, err := os.Create(filepath.Join(s.Install, fmt.Sprintf("big%d.bin", i)))
			mustDo(t, err)
			mustDo(t, f.Truncate(8<<30))
			mustDo(t, f.Close())
		}
		b := s.startBG(nil, "backup", "create")
		b.reach("writing the archive", func() bool {
			for _, p := range glob(t, filepath.Join(s.Backups, ".*")) {
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
					return true
				}
			}
			return false
		})
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
		if left := glob(t, filepath.Join(s.Backups, "*")); len(left) != 0 {
			t.Fatalf("left behind in the backup dir: %v", left)
		}
		if left := glob(t, filepath.Join(s.Backups, ".*")); len(left) != 0 {
			t.Fatalf("temp files left behind in the backup dir: %v", left)
		}
	}},
	{"database_backup_large", func(t *testing.T, sig syscall.Signal) {
		testenv.RequireTool(t, "sqlite3")
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "1.0.0", true))
		bigDB(t, filepath.Join(s.Install, ".swarm", "memory.db"), 1500)
		dir := filepath.Join(s.Dir, "dbbackups")
		b := s.startBG(nil, "database", "backup", "--db", "memory")
		b.reach("copying the database", func() bool {
			for _, p := range append(glob(t, filepath.Join(dir, "*")), glob(t, filepath.Join(dir, ".*"))...) {
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
					return true
				}
			}
			return false
		})
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 1)
		var left []string
		for _, p := range append(glob(t, filepath.Join(dir, "*")), glob(t, filepath.Join(dir, ".*"))...) {
			left = append(left, filepath.Base(p))
		}
		if len(left) != 0 {
			t.Fatalf("left behind in %s: %v", dir, left)
		}
	}},
	{"rollback_to_version_install_command", func(t *testing.T, sig syscall.Signal) {
		s := newSandbox(t)
		mustDo(t, drillapp.WriteInstall(s.Install, "2.0.0-phase2", false))
		pkg := filepath.Join(s.Install, "node_modules", "claude-flow", "package.json")
		mustDo(t, os.MkdirAll(filepath.Dir(pkg), 0o755))
		mustDo(t, os.WriteFile(pkg, []byte(`{"name": "claude-flow", "version": "2.0.0"}`+"\n"), 0o644))
		env := shellService(t, s)
		pidf := filepath.Join(s.Dir, "run", "install.pid")
		// {version} is required in the template; the comment keeps it out of the way
		b := s.startBG(withEnv(env, "CFROLLBACK_VERSION_INSTALL_COMMAND="+blocker(pidf)+" # {version}"),
			"rollback", "--to-version", "1.0.0", "--yes")
		b.reach("the version install command", fileHasContent(pidf))
		code, _ := b.interrupt(sig)
		b.assertInterrupted(code, 4)
		assertLockFree(t, s.lockPath())
		assertGroupDead(t, pidf)
		hist := s.run(nil, "history")
		if !strings.Contains(hist.Stdout, "INTERRUPTED") {
			t.Fatalf("history does not show the interrupted run:\n%s\n%s", hist.Stdout, hist.Stderr)
		}
		// a rerun takes over from it
		install := fmt.Sprintf(`sed -i 's/"version": *"[^"]*"/"version": "'{version}'"/' '%s'`, pkg)
		r := s.run(withEnv(env, "CFROLLBACK_VERSION_INSTALL_COMMAND="+install), "rollback", "--to-version", "1.0.0", "--yes", "--json")
		if r.Code != 0 || !strings.Contains(r.Stderr+r.Stdout, "interrupted") {
			t.Fatalf("rerun: exit %d, want 0 and taking over the interrupted run\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
		}
	}},
}

// bigDB makes a SQLite database of mib MiB (zeroblobs: quick to write).
func bigDB(t *testing.T, db string, mib int) {
	t.Helper()
	mustDo(t, os.MkdirAll(filepath.Dir(db), 0o755))
	sql := fmt.Sprintf("PRAGMA page_size=4096; CREATE TABLE t(b BLOB); "+
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<%d) INSERT INTO t SELECT zeroblob(1<<20) FROM c;", mib)
	if out, err := exec.Command("sqlite3", db, sql).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v %s", err, out)
	}
}

// procsMentioning lists the live processes whose command line mentions s and word.
// holdExclusive keeps an exclusive SQLite lock on db (an open EXCLUSIVE
// transaction of the sqlite3 shell) until the test ends.
func holdExclusive(t *testing.T, db string) {
	t.Helper()
	cmd := exec.Command("sqlite3", "-bail", db) // -bail: a failed BEGIN ends the shell, it prints no 1
	in, err := cmd.StdinPipe()
	mustDo(t, err)
	out, err := cmd.StdoutPipe()
	mustDo(t, err)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	mustDo(t, cmd.Start())
	t.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	_, err = io.WriteString(in, "BEGIN EXCLUSIVE; SELECT 1;\n")
	mustDo(t, err)
	// the shell has taken the lock once it answers the SELECT
	reply := make(chan string, 1)
	go func() {
		line := make([]byte, 2)
		n, _ := io.ReadFull(out, line)
		reply <- string(line[:n])
	}()
	select {
	case r := <-reply:
		if r != "1\n" {
			t.Fatalf("sqlite3 did not take the exclusive lock on %s (it said %q)", db, r)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("sqlite3 took no exclusive lock on %s in 30s", db)
	}
}

// shim puts an executable name running script first in PATH, and returns
// the environment that does so.
func shim(t *testing.T, name, script string) []string {
	t.Helper()
	dir := t.TempDir()
	mustDo(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755))
	return []string{"PATH=" + dir + ":" + os.Getenv("PATH"), "CFROLLBACK_SERVICE_PM2_BIN=" + filepath.Join(dir, "pm2")}
}

// cpuTicks is the user+system CPU time of pid in clock ticks.
func cpuTicks(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// TestSignal: Ctrl-C (SIGINT to the process group) or SIGTERM while the real
// binary is provably inside a read or a wait ends it within a bound (goal 1 s,
// failing at 3 s), with a message that says it was interrupted and the exit
// code its EXIT STATUS gives; the lock is released; user commands die with
// their process group; before the stop nothing changed, after it the next
// run resumes as after a kill.
func TestSignal(t *testing.T) {
	binary(t)
	for _, sc := range signalScenarios {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			name := sc.name + "/" + map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[sig]
			t.Run(name, func(t *testing.T) { sc.run(t, sig) })
		}
	}
}
