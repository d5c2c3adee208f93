package assess

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/health"
)

var t0 = time.Date(2025, 1, 4, 14, 0, 0, 0, time.UTC)

// series makes n samples ending at end, every step, filled by fill(i).
func series(end time.Time, n int, step time.Duration, fill func(i int, s *Sample)) []Sample {
	out := make([]Sample, n)
	for i := range out {
		out[i] = Sample{Time: end.Add(-time.Duration(n-1-i) * step), Active: Ptr(true), State: "active", Restarts: Ptr(0), PID: 4242}
		if fill != nil {
			fill(i, &out[i])
		}
	}
	return out
}

func okProbe(ms float64) *Probe { return &Probe{OK: true, LatencyMS: ms, StatusCode: 200} }

// healthy is an hour of samples a minute apart: all requests fine, flat RSS.
func healthy(end time.Time) []Sample {
	return series(end, 61, time.Minute, func(i int, s *Sample) {
		s.Probe = okProbe(20)
		s.RSS = Ptr(uint64(200 * MB))
		s.AgentFailures = Ptr(0)
	})
}

func lat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

var goodData = []health.Check{
	{Name: "app config", Verdict: health.Pass, Detail: "config.json is valid JSON"},
	{Name: "database memory", Verdict: health.Pass, Detail: "quick_check ok"},
}

var baseline = &Baseline{Latency: Latency{Count: 20, P95MS: 40}}

func healthyInput() Input {
	return Input{Now: t0, Service: &ServiceState{Active: true, State: "active"}, Data: goodData,
		Latency: lat(10, 30*time.Millisecond), Baseline: baseline, Samples: healthy(t0)}
}

func condition(t *testing.T, a Assessment, id string) Condition {
	t.Helper()
	for _, c := range a.Conditions {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no condition %s", id)
	return Condition{}
}

// TestMatrix covers every row of the decision matrix and every way of being
// inconclusive, on sample series shaped like the monitor store's.
func TestMatrix(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(in *Input)
		severity Severity
		id       string // the condition that decides
		status   Status
		evidence string // a substring of its evidence
	}{
		{"all clear", func(in *Input) {}, None, "memory_growth", Clear, "grew 0.0 MB/hour"},
		{"P0 service inactive", func(in *Input) { in.Service = &ServiceState{State: "failed"} }, P0, "service_down", Met, "reports the service failed"},
		{"P0 crash loop now", func(in *Input) {
			in.Service = &ServiceState{Active: true, State: "activating", CrashLoop: true, Restarts: 7}
		}, P0, "service_down", Met, "crash loop"},
		{"P0 restarts in the window", func(in *Input) {
			in.Service = &ServiceState{Active: true, State: "active", Restarts: 4}
		}, P0, "service_down", Met, "4 restarts in the last 10 minutes"},
		{"P0 active but every request fails", func(in *Input) { in.Latency, in.LatencyFailed = nil, 5 }, P0, "service_down", Met, "all 5 requests"},
		{"P1 database corrupt", func(in *Input) {
			in.Data = append(in.Data[:1:1], health.Check{Name: "database memory", Verdict: health.Fail, Detail: "quick_check: page 3 is never used"})
		}, P1, "data_corrupt", Met, "page 3"},
		{"P1 app config unreadable", func(in *Input) {
			in.Data = []health.Check{{Name: "app config", Verdict: health.Fail, Detail: "line 3 column 14: invalid character"}}
		}, P1, "data_corrupt", Met, "line 3"},
		{"P1 agents failing to spawn", func(in *Input) {
			n := len(in.Samples)
			in.Samples[n-1].AgentFailures, in.Samples[n-5].AgentFailures = Ptr(2), Ptr(1)
			in.Samples[n-20].AgentFailures = Ptr(9) // older than the 15 minute window
		}, P1, "agent_failures", Met, "3 log lines about agents failing to spawn in the last 15 minutes"},
		{"agent spawn failures under the threshold", func(in *Input) {
			in.Samples[len(in.Samples)-1].AgentFailures = Ptr(2)
		}, None, "agent_failures", Clear, "2 log lines"},
		{"P2 response time over 5x baseline", func(in *Input) { in.Latency = lat(10, 250*time.Millisecond) }, P2, "response_time", Met, "p95 250.0ms"},
		{"P2 error rate over 10% for 30 min", func(in *Input) {
			for i := range in.Samples {
				if i%5 == 0 {
					in.Samples[i].Probe = &Probe{StatusCode: 503, Detail: "HTTP 503"}
				}
			}
		}, P2, "error_rate", Met, "6 of 30 requests in the last 30 minutes (20.0%"},
		{"P3 network failures over 5% for 15 min", func(in *Input) {
			for i := len(in.Samples) - 15; i < len(in.Samples); i += 7 {
				in.Samples[i].Probe = &Probe{Network: true, Detail: "connection refused"}
			}
		}, P3, "network_failures", Met, "3 of 15 requests in the last 15 minutes"},
		{"P3 memory growth over 50 MB/hour", func(in *Input) {
			for i := range in.Samples {
				in.Samples[i].RSS = Ptr(uint64(200*MB + i*MB)) // 60 MB over the hour
			}
		}, P3, "memory_growth", Met, "grew 60.0 MB/hour"},
		{"memory growth under the threshold", func(in *Input) {
			for i := range in.Samples {
				in.Samples[i].RSS = Ptr(uint64(200*MB + i*MB/2)) // 30 MB/hour
			}
		}, None, "memory_growth", Clear, "grew 30.0 MB/hour"},
		{"a restart resets the RSS series", func(in *Input) {
			for i := range in.Samples {
				in.Samples[i].RSS = Ptr(uint64(200*MB + i*MB))
				if i >= 40 {
					in.Samples[i].PID = 5000
					in.Samples[i].RSS = Ptr(uint64(200 * MB))
				}
			}
		}, None, "memory_growth", Clear, "pid 5000"},
		{"the worst met condition wins", func(in *Input) {
			in.Latency = lat(10, 250*time.Millisecond)
			in.Service = &ServiceState{State: "inactive"}
		}, P0, "response_time", Met, "limit 5x"},

		// inconclusive: missing data is never a pass
		{"inconclusive: no monitor samples", func(in *Input) { in.Samples = nil }, Inconclusive, "error_rate", Unknown, "0 monitor samples with a health request in the last 30 minutes, 10 needed"},
		{"inconclusive: samples do not cover the window", func(in *Input) { in.Samples = in.Samples[len(in.Samples)-12:] }, Inconclusive, "error_rate", Unknown, "span 11m0s of the 30 minutes window"},
		{"inconclusive: too few RSS samples", func(in *Input) {
			for i := range in.Samples[:55] {
				in.Samples[i].RSS = nil
			}
		}, Inconclusive, "memory_growth", Unknown, "6 RSS samples"},
		{"inconclusive: the app log was not read", func(in *Input) {
			for i := range in.Samples {
				in.Samples[i].AgentFailures = nil
			}
		}, Inconclusive, "agent_failures", Unknown, "no monitor sample read the app log in the last 15 minutes"},
		{"inconclusive: no baseline", func(in *Input) { in.Baseline = nil }, Inconclusive, "response_time", Unknown, "baseline record"},
		{"inconclusive: no health URL", func(in *Input) { in.Latency = nil }, Inconclusive, "response_time", Unknown, "health.url is empty"},
		{"inconclusive: too few requests", func(in *Input) { in.Latency = lat(2, time.Second) }, Inconclusive, "response_time", Unknown, "2 successful requests, 5 needed"},
		{"inconclusive: nothing checked for data", func(in *Input) {
			in.Data = []health.Check{{Name: "database memory", Verdict: health.Skip, Detail: "memory.db does not exist"}}
		}, Inconclusive, "data_corrupt", Unknown, "nothing was checked"},
		{"inconclusive: manager unreachable", func(in *Input) { in.Service, in.ServiceErr = nil, "dbus: no such bus" }, Inconclusive, "service_down", Unknown, "no such bus"},
		{"a met condition is not hidden by missing data", func(in *Input) {
			in.Baseline = nil
			in.Service = &ServiceState{State: "failed"}
		}, P0, "response_time", Unknown, "baseline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := healthyInput()
			tt.edit(&in)
			a := Evaluate(in, DefaultThresholds)
			if a.Severity != tt.severity {
				t.Errorf("severity %s, want %s; conditions %+v", a.Severity, tt.severity, a.Conditions)
			}
			c := condition(t, a, tt.id)
			if c.Status != tt.status || !strings.Contains(c.Evidence, tt.evidence) {
				t.Errorf("%s: %s %q, want %s containing %q", tt.id, c.Status, c.Evidence, tt.status, tt.evidence)
			}
			if a.Action == "" {
				t.Error("no action")
			}
			if r, ok := RowFor(a.Severity); ok && !a.Deadline.Equal(t0.Add(r.Timeline)) {
				t.Errorf("deadline %s, want now + %s", a.Deadline, r.Timeline)
			}
		})
	}
}

func TestMatrixActions(t *testing.T) {
	want := map[Severity]string{P0: "< 5 minutes", P1: "< 15 minutes", P2: "< 1 hour", P3: "< 4 hours"}
	in := healthyInput()
	in.Service = &ServiceState{State: "failed"}
	a := Evaluate(in, DefaultThresholds)
	if a.Timeline != want[P0] || a.Action != "Immediate rollback" {
		t.Errorf("P0: %q %q", a.Action, a.Timeline)
	}
	for _, r := range Matrix {
		if "< "+human(r.Timeline) != want[r.Severity] {
			t.Errorf("%s: timeline %q", r.Severity, human(r.Timeline))
		}
	}
}

func TestGrowthPerHour(t *testing.T) {
	s := series(t0, 11, 6*time.Minute, func(i int, s *Sample) { s.RSS = Ptr(uint64(100*MB + i*10*MB)) })
	if got := GrowthPerHour(s) / MB; got < 99.9 || got > 100.1 {
		t.Errorf("growth %.2f MB/h, want 100", got)
	}
	// one spike does not make a leak
	s = series(t0, 11, 6*time.Minute, func(i int, s *Sample) { s.RSS = Ptr(uint64(100 * MB)) })
	s[5].RSS = Ptr(uint64(900 * MB))
	if got := GrowthPerHour(s) / MB; got > 1 || got < -1 {
		t.Errorf("a spike in the middle: %.2f MB/h, want ~0", got)
	}
	if GrowthPerHour(s[:1]) != 0 {
		t.Error("one sample has no slope")
	}
}

func TestStore(t *testing.T) {
	dir := t.TempDir()
	st := Store{Path: StorePath(dir), Retention: time.Hour, MaxSamples: 50}
	if got, _, err := st.Read(); err != nil || got != nil {
		t.Fatalf("missing store: %v %v", got, err)
	}
	all := series(t0, 120, time.Minute, func(i int, s *Sample) { s.RSS = Ptr(uint64(i)) })
	if err := st.Append(all...); err != nil {
		t.Fatal(err)
	}
	// a torn last line (a crash mid-write) is skipped, not fatal
	f, _ := os.OpenFile(st.Path, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.WriteString(`{"time":"2025-01-04T14:`)
	_ = f.Close()
	got, bad, err := st.Read()
	if err != nil || len(got) != 120 || bad != 1 {
		t.Fatalf("read: %d samples, %d bad, %v", len(got), bad, err)
	}
	n, err := st.Compact(t0)
	if err != nil || n != 50 {
		t.Fatalf("compact kept %d, %v; want the newest 50", n, err)
	}
	got, bad, _ = st.Read()
	if len(got) != 50 || bad != 0 || !got[49].Time.Equal(t0) || *got[0].RSS != 70 {
		t.Fatalf("after compact: %d samples, %d bad, last %v", len(got), bad, got[len(got)-1].Time)
	}
	st.MaxSamples = 0
	if n, _ := st.Compact(t0.Add(30 * time.Minute)); n != 30 {
		t.Errorf("retention 1h at t0+30m kept %d, want 30", n)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) > 0 {
		t.Errorf("temp files left: %v", leftovers)
	}
}

func TestBaseline(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadBaseline(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no baseline: %v", err)
	}
	b := Baseline{Recorded: t0, Latency: Latency{Count: 10, P95MS: 12.5}, RSSBytes: 123, ErrorLinesLastHour: Ptr(0)}
	if err := WriteBaseline(dir, b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBaseline(dir)
	if err != nil || got.Latency.P95MS != 12.5 || got.RSSBytes != 123 || *got.ErrorLinesLastHour != 0 {
		t.Fatalf("%+v %v", got, err)
	}
	if err := os.WriteFile(BaselinePath(dir), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBaseline(dir); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a damaged baseline must be an error of its own: %v", err)
	}
}
