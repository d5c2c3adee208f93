package assess

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/service"
)

type downService struct{}

func (downService) Name() string { return "down" }
func (downService) Kind() string { return service.KindCommand }
func (downService) Status(context.Context) (service.Status, error) {
	return service.Status{Manager: service.KindCommand, Exists: true, State: "inactive"}, nil
}
func (downService) Stop(context.Context) error  { return nil }
func (downService) Start(context.Context) error { return nil }

// A sample leaves out what it could not measure (no log, no URL, no process): nil, not zero.
func TestSamplerLeavesOutWhatItCannotMeasure(t *testing.T) {
	sm := &Sampler{Service: downService{}, WatchFor: []string{"api-timeout"}, Now: time.Now}
	s := sm.Take(context.Background())
	if s.Active == nil || *s.Active || s.State != "inactive" {
		t.Errorf("state: %v %q", s.Active, s.State)
	}
	if s.ErrorLines != nil || s.AgentFailures != nil || s.Probe != nil || s.RSS != nil || s.Watch != nil {
		t.Errorf("unmeasured parts are set: %+v", s)
	}
}

func TestSamplerAlerts(t *testing.T) {
	sm := &Sampler{WatchFor: []string{"agent-spawn-failure", "api-timeout", "memory-leak"}}
	now := time.Now()
	s := Sample{Time: now, Watch: map[string]int{"agent-spawn-failure": 2, "api-timeout": 0}}
	got := sm.Alerts([]Sample{s}, s, DefaultThresholds)
	if len(got) != 1 || got[0] != "agent-spawn-failure: 2 since the last sample" {
		t.Errorf("alerts %q", got)
	}
	if names := WatchNames(); len(names) != 3 || names[0] != "agent-spawn-failure" {
		t.Errorf("names %v", names)
	}
}

// upService is a running service whose Status runs status (nil: at once).
type upService struct {
	pid    int
	status func(ctx context.Context) error
}

func (upService) Name() string { return "up" }
func (upService) Kind() string { return service.KindCommand }
func (u upService) Status(ctx context.Context) (service.Status, error) {
	if u.status != nil {
		if err := u.status(ctx); err != nil {
			return service.Status{}, err
		}
	}
	return service.Status{Manager: service.KindCommand, Exists: true, Active: true, State: "active", MainPID: u.pid}, nil
}
func (upService) Stop(context.Context) error  { return nil }
func (upService) Start(context.Context) error { return nil }

// fakeClock advances by step at every reading.
type fakeClock struct {
	now  time.Time
	step time.Duration
}

func (c *fakeClock) Now() time.Time { c.now = c.now.Add(c.step); return c.now }

// Without a CPU window the CPU is the kernel's counters' delta since the previous sample of
// the same process, the first sample of a process its average since it started; no sleep.
func TestSamplerCPUBetweenSamples(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)}
	counters := map[int]health.ProcessCounters{7: {RSS: 100, CPU: 2 * time.Second, Age: 20 * time.Second}}
	svc := &upService{pid: 7}
	sm := &Sampler{Service: svc, PIDVisible: func(int) (bool, string) { return true, "" }, Now: clock.Now,
		ReadProcess: func(pid int) (health.ProcessCounters, error) {
			pc, ok := counters[pid]
			if !ok {
				return pc, errors.New("no such process")
			}
			return pc, nil
		}}
	cpu := func(s Sample) float64 {
		t.Helper()
		if s.CPUPercent == nil {
			t.Fatalf("no CPU in %+v", s)
		}
		return *s.CPUPercent
	}
	// first sample: 2 s of CPU in 20 s
	if s := sm.Take(t.Context()); s.PID != 7 || *s.RSS != 100 || math.Abs(cpu(s)-10) > 1e-9 {
		t.Fatalf("first sample: pid %d rss %v cpu %v", s.PID, s.RSS, cpu(s))
	}
	// 10 s later the process used 5 s more: 50% over the interval, not its lifetime's 23%
	clock.now = clock.now.Add(10*time.Second - 2*clock.step)
	counters[7] = health.ProcessCounters{RSS: 200, CPU: 7 * time.Second, Age: 30 * time.Second}
	if s := sm.Take(t.Context()); math.Abs(cpu(s)-50) > 1e-9 || *s.RSS != 200 {
		t.Fatalf("second sample: cpu %v rss %v", cpu(s), *s.RSS)
	}
	// a restart: another pid, whose first sample is its own lifetime again
	svc.pid, counters[8] = 8, health.ProcessCounters{CPU: time.Second, Age: 4 * time.Second}
	if s := sm.Take(t.Context()); s.PID != 8 || math.Abs(cpu(s)-25) > 1e-9 {
		t.Fatalf("new pid: %d cpu %v", s.PID, cpu(s))
	}
	// a process that cannot be read leaves RSS and CPU out
	svc.pid = 9
	if s := sm.Take(t.Context()); s.PID != 0 || s.RSS != nil || s.CPUPercent != nil {
		t.Fatalf("unreadable process: %+v", s)
	}
	// and a first sample of unknown age has no CPU rather than a made-up one
	svc.pid, counters[10] = 10, health.ProcessCounters{RSS: 1, CPU: time.Second}
	if s := sm.Take(t.Context()); s.PID != 10 || s.RSS == nil || s.CPUPercent != nil {
		t.Fatalf("unknown age: %+v", s)
	}
}

// The health request runs while the manager is asked: the manager's answer here waits for
// the request to arrive, which a sampler that asked first and requested after never sends.
func TestSamplerRequestsWhileAskingTheManager(t *testing.T) {
	arrived := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		once.Do(func() { close(arrived) })
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	svc := upService{status: func(ctx context.Context) error {
		select {
		case <-arrived:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	sm := &Sampler{Service: svc, HealthURL: srv.URL, Timeout: 5 * time.Second, Now: time.Now}
	s := sm.Take(ctx)
	if s.Active == nil || !*s.Active {
		t.Fatalf("the manager's answer waited for the request that never came: %+v", s)
	}
	if s.Probe == nil || s.Probe.OK || s.Probe.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("probe %+v", s.Probe)
	}
}
