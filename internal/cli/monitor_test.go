package cli

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// leakStep and leakMax shape the leaking child: 4 MiB every 100 ms, at most
// 100 MiB, then it holds still until killed (at most 20 s).
const (
	leakStep  = 4 << 20
	leakEvery = 100 * time.Millisecond
	leakMax   = 100 << 20
)

// The test binary re-executed with CFROLLBACK_TEST_LEAK=1 is a process whose
// RSS grows on purpose. init runs before testscript's TestMain.
func init() {
	if os.Getenv("CFROLLBACK_TEST_LEAK") != "1" {
		return
	}
	// mmap with MAP_POPULATE makes the pages resident without Go code
	// touching them, so the race detector's shadow memory (which instrumented
	// writes would grow too) does not skew the rate.
	var keep [][]byte
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if len(keep)*leakStep < leakMax {
			b, err := syscall.Mmap(-1, 0, leakStep, syscall.PROT_READ|syscall.PROT_WRITE,
				syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_POPULATE)
			if err != nil {
				fmt.Println("mmap:", err)
				os.Exit(1)
			}
			keep = append(keep, b)
			if len(keep) == 1 {
				fmt.Println("leaking")
			}
		}
		time.Sleep(leakEvery)
	}
	os.Exit(0)
}

// fakeService is a service manager made of a status function.
type fakeService struct {
	status func(ctx context.Context) (service.Status, error)
}

var _ service.Manager = (*fakeService)(nil)

func (f *fakeService) Name() string { return "fake service" }
func (f *fakeService) Kind() string { return service.KindCommand }
func (f *fakeService) Status(ctx context.Context) (service.Status, error) {
	if f.status == nil {
		return service.Status{Manager: service.KindCommand, Exists: true, Active: true, State: "active"}, nil
	}
	return f.status(ctx)
}
func (f *fakeService) Stop(context.Context) error  { return nil }
func (f *fakeService) Start(context.Context) error { return nil }

func testConfig(t *testing.T) settings.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := settings.Defaults()
	cfg.InstallDir, cfg.Backup.Dir = filepath.Join(dir, "opt/app"), filepath.Join(dir, "backups")
	cfg.StateDir, cfg.Journal, cfg.Lock = filepath.Join(dir, "state"), filepath.Join(dir, "log/journal.jsonl"), filepath.Join(dir, "run/lock")
	cfg.Health.URL = ""
	cfg.Service.Manager = service.KindCommand
	cfg.Databases = nil
	for _, d := range []string{cfg.InstallDir, cfg.Backup.Dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// TestMonitorAssessMemoryLeak runs monitor against a real process whose RSS
// grows by a known rate and checks that assess finds the leak at that rate,
// with the windows scaled from an hour to seconds.
func TestMonitorAssessMemoryLeak(t *testing.T) {
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "CFROLLBACK_TEST_LEAK=1")
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "leaking\n" {
		t.Fatalf("child said %q", line)
	}

	cfg := testConfig(t)
	th := assess.DefaultThresholds
	th.MemoryWindow, th.MemoryMinSpan, th.MinWindowSamples = time.Minute, time.Second, 8
	th.MemoryPerHour = 10 * assess.MB * 3600 // 10 MB/s: the child leaks 40
	io, out, errOut := testIO()
	opts := &monitorOptions{IO: io, Config: cfg, Service: &fakeService{}, Interval: 100 * time.Millisecond, Samples: 15,
		PID: child.Process.Pid, CPUSample: 10 * time.Millisecond, Retention: time.Hour, Thresholds: th,
		WatchFor: []string{"memory-leak"}, Logs: logCountOptions{Files: filepath.Join(t.TempDir(), "none-*.log")}, Now: time.Now}
	if err := runMonitor(t.Context(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if n := strings.Count(out.String(), "\n"); n != 15 {
		t.Errorf("%d lines for 15 samples:\n%s", n, out)
	}
	if !strings.Contains(errOut.String(), "ALERT memory-leak: RSS of pid") {
		t.Errorf("no memory-leak alert:\n%s", errOut)
	}
	samples, _, err := assess.Store{Path: assess.StorePath(cfg.StateDir)}.Read()
	if err != nil || len(samples) != 15 {
		t.Fatalf("store: %d samples, %v", len(samples), err)
	}

	io, out, _ = testIO()
	aopts := &assessOptions{IO: io, JSON: true, Config: cfg, Service: &fakeService{}, Thresholds: th, Now: time.Now}
	err = runAssess(t.Context(), aopts)
	if exitCodeOf(err) != ExitAssessP3 {
		t.Fatalf("exit %d (%v), want %d (P3)\n%s", exitCodeOf(err), err, ExitAssessP3, out)
	}
	a := assess.Evaluate(assess.Input{Now: time.Now(), Service: &assess.ServiceState{Active: true}, Samples: samples}, th)
	c := assess.MemoryGrowth(samples, time.Now(), th)
	if c.Status != assess.Met || c.Value == nil {
		t.Fatalf("memory growth %s: %s", c.Status, c.Evidence)
	}
	// The child can only leak slower than nominal (a loaded machine delays
	// its 100 ms sleeps), never faster: the bound below is loose on purpose.
	want := float64(leakStep) / leakEvery.Hours()
	if got := *c.Value; got < want*0.5 || got > want*1.25 {
		t.Errorf("growth %.0f MB/h, want about %.0f MB/h (%s)", got/assess.MB, want/assess.MB, c.Evidence)
	}
	t.Logf("detected %s", c.Evidence)
	if a.Severity != assess.P3 || !strings.Contains(out.String(), `"memory_growth"`) || !strings.Contains(out.String(), `"severity": "P3"`) {
		t.Errorf("severity %s\n%s", a.Severity, out)
	}
}

// TestMonitorSamples checks one sample's fields: the probe, error lines
// counted from what the log gained, the watch counts, and JSON lines.
func TestMonitorSamples(t *testing.T) {
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	cfg := testConfig(t)
	cfg.Health.URL = srv.URL
	logDir := t.TempDir()
	logFile := filepath.Join(logDir, "app.log")
	if err := os.WriteFile(logFile, []byte("ERROR old, before the monitor started\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	io, out, errOut := testIO()
	opts := &monitorOptions{IO: io, JSON: true, Config: cfg, Service: &fakeService{}, Interval: 50 * time.Millisecond, Samples: 1,
		Retention: time.Hour, Thresholds: assess.DefaultThresholds, WatchFor: []string{"agent-spawn-failure", "api-timeout"},
		Logs: logCountOptions{Files: filepath.Join(logDir, "*.log")}, Now: time.Now}
	sampler, _ := newSampler(t.Context(), opts)
	f, _ := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.WriteString("ERROR agent coder failed to spawn: EMFILE\nINFO ok\nERROR request to api timed out after 30s\n")
	_ = f.Close()
	s := sampler.Take(t.Context())
	if s.ErrorLines == nil || *s.ErrorLines != 2 || s.Watch["agent-spawn-failure"] != 1 || s.Watch["api-timeout"] != 1 {
		t.Errorf("error lines %v, watch %v", s.ErrorLines, s.Watch)
	}
	if s.Probe == nil || !s.Probe.OK || s.Active == nil || !*s.Active {
		t.Errorf("probe %+v active %v", s.Probe, s.Active)
	}
	fail.Store(true)
	if err := runMonitor(t.Context(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.HasPrefix(out.String(), `{"time":`) || !strings.Contains(out.String(), `"status_code":503`) {
		t.Errorf("JSON line: %s", out)
	}

	// a second monitor is refused while one runs
	lk, err := acquireForTest(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer lk()
	if err := runMonitor(t.Context(), opts); exitCode(err) != ExitLocked {
		t.Errorf("second monitor: %v", err)
	}
}

func acquireForTest(cfg settings.Config) (func(), error) {
	lk, err := lock.Acquire(filepath.Join(cfg.StateDir, "monitor.lock"), lock.Holder{Command: "test"})
	if err != nil {
		return nil, err
	}
	return func() { _ = lk.Release() }, nil
}
