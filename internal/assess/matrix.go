package assess

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// Severity is the decision matrix's row, or none / inconclusive.
type Severity string

// The severities, most urgent first. Inconclusive means no condition was
// met but at least one could not be judged: it is not "all clear".
const (
	P0           Severity = "P0"
	P1           Severity = "P1"
	P2           Severity = "P2"
	P3           Severity = "P3"
	Inconclusive Severity = "inconclusive"
	None         Severity = "none"
)

// rank orders severities; lower is more urgent.
func (s Severity) rank() int {
	switch s {
	case P0:
		return 0
	case P1:
		return 1
	case P2:
		return 2
	case P3:
		return 3
	case Inconclusive:
		return 4
	}
	return 5
}

// Row is one row of the seed's decision matrix.
type Row struct {
	Severity Severity
	Label    string // "Service Down"
	Action   string // "Immediate rollback"
	Timeline time.Duration
	Command  string // what to run
}

// Matrix is the seed's "Rollback Decision Matrix".
var Matrix = []Row{
	{P0, "Service down", "Immediate rollback", 5 * time.Minute, "cfrollback emergency"},
	{P1, "Data loss risk", "Emergency rollback", 15 * time.Minute, "cfrollback emergency"},
	{P2, "Performance issues", "Scheduled rollback", time.Hour, "cfrollback emergency --dry-run, then plan the rollback"},
	{P3, "Minor issues", "Investigate first", 4 * time.Hour, "cfrollback logs --since 1h; cfrollback monitor"},
}

// RowFor returns the matrix row of s; ok is false for none and inconclusive.
func RowFor(s Severity) (Row, bool) {
	for _, r := range Matrix {
		if r.Severity == s {
			return r, true
		}
	}
	return Row{}, false
}

// Status is one condition's outcome.
type Status string

// Condition outcomes. Unknown is reported as "inconclusive".
const (
	Met     Status = "met"
	Clear   Status = "clear"
	Unknown Status = "inconclusive"
)

// Condition is one judged row of "When to Rollback", with its evidence.
type Condition struct {
	ID       string   `json:"id"`       // service_down, data_corrupt, agent_failures, response_time, error_rate, network_failures, memory_growth
	Severity Severity `json:"severity"` // what it means when met
	Status   Status   `json:"status"`
	// Evidence says what was measured and against what, with numbers, or
	// what is missing when inconclusive.
	Evidence  string   `json:"evidence"`
	Value     *float64 `json:"value,omitempty"`
	Threshold float64  `json:"threshold,omitempty"`
	Unit      string   `json:"unit,omitempty"`
	Samples   int      `json:"samples,omitempty"`
}

// Thresholds are every number Evaluate judges by. Defaults are the seed's.
type Thresholds struct {
	ResponseFactor    float64       // p95 now over this times the baseline p95: P2
	MinLatencySamples int           // fewer successful requests: inconclusive
	ErrorRate         float64       // failed health requests over the window: P2
	ErrorWindow       time.Duration // 30m
	NetworkRate       float64       // requests without an HTTP answer: P3
	NetworkWindow     time.Duration // 15m
	MemoryPerHour     float64       // RSS growth, bytes per hour: P3
	MemoryWindow      time.Duration // the growth is fitted over this
	MemoryMinSpan     time.Duration // the RSS series must span at least this
	MinWindowSamples  int           // fewer samples in a window: inconclusive
	// Coverage is the fraction of a window the samples must span: a rate
	// "for 30 minutes" needs about 30 minutes of samples.
	Coverage      float64
	CrashRestarts int           // this many restarts within CrashWindow: crash loop, P0
	CrashWindow   time.Duration // 10m
	// AgentFailures log lines about agents failing to spawn within AgentWindow: the
	// seed's critical "multiple agents failing to spawn", P1.
	AgentFailures int
	AgentWindow   time.Duration // 15m
}

// MB is the seed's megabyte in "50MB/hour": 2^20 bytes.
const MB = 1 << 20

// DefaultThresholds are the seed's "When to Rollback" numbers.
var DefaultThresholds = Thresholds{
	ResponseFactor: 5, MinLatencySamples: 5,
	ErrorRate: 0.10, ErrorWindow: 30 * time.Minute,
	NetworkRate: 0.05, NetworkWindow: 15 * time.Minute,
	MemoryPerHour: 50 * MB, MemoryWindow: time.Hour, MemoryMinSpan: 15 * time.Minute,
	MinWindowSamples: 10, Coverage: 0.8,
	CrashRestarts: 3, CrashWindow: 10 * time.Minute,
	AgentFailures: 3, AgentWindow: 15 * time.Minute,
}

// ServiceState is what the manager says now.
type ServiceState struct {
	Active    bool
	State     string
	CrashLoop bool
	Restarts  int
}

// Input is everything Evaluate judges.
type Input struct {
	Now time.Time
	// Service is nil when the manager could not be asked; ServiceErr says why.
	Service    *ServiceState
	ServiceErr string
	// Data are the app config and database rows of health-check
	// --comprehensive: any FAIL is a data-loss risk.
	Data []health.Check
	// Latency are the successful requests to the health URL just now;
	// LatencyFailed counts the ones that failed. Both empty: no URL.
	Latency       []time.Duration
	LatencyFailed int
	Baseline      *Baseline
	Samples       []Sample // the monitor store, oldest first
}

// Assessment is the verdict.
type Assessment struct {
	Time       time.Time   `json:"time"`
	Severity   Severity    `json:"severity"`
	Action     string      `json:"action"`
	Timeline   string      `json:"timeline,omitempty"` // "< 5 minutes"
	Deadline   time.Time   `json:"deadline,omitzero"`
	Command    string      `json:"command,omitempty"`
	Met        []string    `json:"met"`          // ids of the conditions met
	Missing    []string    `json:"inconclusive"` // ids that could not be judged
	Conditions []Condition `json:"conditions"`
}

// Evaluate applies the decision matrix.
func Evaluate(in Input, th Thresholds) Assessment {
	conds := []Condition{
		serviceDown(in, th),
		dataCorrupt(in),
		agentFailures(in, th),
		responseTime(in, th),
		probeRate(in, th, "error_rate", P2, th.ErrorRate, th.ErrorWindow, func(p Probe) bool { return !p.OK }),
		probeRate(in, th, "network_failures", P3, th.NetworkRate, th.NetworkWindow, func(p Probe) bool { return p.Network }),
		memoryGrowth(in, th),
	}
	a := Assessment{Time: in.Now, Severity: None, Conditions: conds, Met: []string{}, Missing: []string{}}
	for _, c := range conds {
		switch c.Status {
		case Met:
			a.Met = append(a.Met, c.ID)
			if c.Severity.rank() < a.Severity.rank() {
				a.Severity = c.Severity
			}
		case Unknown:
			a.Missing = append(a.Missing, c.ID)
		}
	}
	if len(a.Met) == 0 && len(a.Missing) > 0 {
		a.Severity = Inconclusive
	}
	if r, ok := RowFor(a.Severity); ok {
		a.Action, a.Timeline, a.Deadline, a.Command = r.Action, "< "+human(r.Timeline), in.Now.Add(r.Timeline), r.Command
	} else if a.Severity == Inconclusive {
		a.Action = "no condition met, but " + strings.Join(a.Missing, ", ") + " could not be judged: gather the data named in the evidence"
	} else {
		a.Action = "no rollback needed"
	}
	return a
}

func human(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

func serviceDown(in Input, th Thresholds) Condition {
	c := Condition{ID: "service_down", Severity: P0}
	if in.Service == nil {
		c.Status, c.Evidence = Unknown, "the service manager could not be asked: "+in.ServiceErr
		return c
	}
	s := in.Service
	switch {
	case !s.Active:
		c.Status, c.Evidence = Met, fmt.Sprintf("the manager reports the service %s", orDash(s.State))
		return c
	case s.CrashLoop:
		c.Status, c.Evidence = Met, fmt.Sprintf("crash loop: %s after %d restarts", s.State, s.Restarts)
		return c
	}
	if n, span, ok := restartsIn(in.Samples, in.Now, th.CrashWindow, s.Restarts); ok && n >= th.CrashRestarts {
		c.Status, c.Evidence = Met, fmt.Sprintf("%d restarts in the last %s (threshold %d)", n, human(span), th.CrashRestarts)
		c.Value, c.Threshold, c.Unit = Ptr(float64(n)), float64(th.CrashRestarts), "restarts"
		return c
	}
	if total := len(in.Latency) + in.LatencyFailed; total >= 3 && len(in.Latency) == 0 {
		c.Status, c.Evidence = Met, fmt.Sprintf("active, but all %d requests to the health URL failed", total)
		return c
	}
	c.Status, c.Evidence = Clear, fmt.Sprintf("active (%s), %d restarts", orDash(s.State), s.Restarts)
	return c
}

// restartsIn counts restarts within window from the monitor's restart
// counts and the one read now.
func restartsIn(samples []Sample, now time.Time, window time.Duration, current int) (int, time.Duration, bool) {
	for _, s := range Window(samples, now, window) {
		if s.Restarts != nil {
			if n := current - *s.Restarts; n > 0 {
				return n, window, true
			}
			return 0, window, true
		}
	}
	return 0, 0, false
}

func dataCorrupt(in Input) Condition {
	c := Condition{ID: "data_corrupt", Severity: P1}
	var failed, passed, unchecked []string
	for _, d := range in.Data {
		switch d.Verdict {
		case health.Fail:
			failed = append(failed, d.Name+": "+d.Detail)
		case health.Pass:
			passed = append(passed, d.Name)
		default:
			unchecked = append(unchecked, d.Name+" ("+d.Detail+")")
		}
	}
	switch {
	case len(failed) > 0:
		c.Status, c.Evidence = Met, strings.Join(failed, "; ")
	case len(passed) == 0:
		c.Status, c.Evidence = Unknown, "nothing was checked"
		if len(unchecked) > 0 {
			c.Evidence += ": " + strings.Join(unchecked, "; ")
		}
	default:
		c.Status, c.Evidence = Clear, strings.Join(passed, ", ")+" ok"
		if len(unchecked) > 0 {
			c.Evidence += "; not checked: " + strings.Join(unchecked, "; ")
		}
	}
	return c
}

// agentFailures counts the monitor's log lines about agents failing to spawn over the
// window: "multiple agents failing to spawn" is one of the seed's critical conditions.
// The service is up but cannot do its work, so it is an emergency rollback (P1).
func agentFailures(in Input, th Thresholds) Condition {
	c := Condition{ID: "agent_failures", Severity: P1, Threshold: float64(th.AgentFailures), Unit: "log lines"}
	n, read := 0, 0
	for _, s := range Window(in.Samples, in.Now, th.AgentWindow) {
		if s.AgentFailures != nil {
			n += *s.AgentFailures
			read++
		}
	}
	c.Samples = read
	if read == 0 {
		c.Status, c.Evidence = Unknown, fmt.Sprintf("no monitor sample read the app log in the last %s: run 'cfrollback monitor' (it counts agents failing to spawn)", human(th.AgentWindow))
		return c
	}
	c.Value = Ptr(float64(n))
	c.Evidence = fmt.Sprintf("%d log lines about agents failing to spawn in the last %s (%d samples; %d or more is critical)", n, human(th.AgentWindow), read, th.AgentFailures)
	c.Status = Clear
	if n >= th.AgentFailures {
		c.Status = Met
	}
	return c
}

func responseTime(in Input, th Thresholds) Condition {
	c := Condition{ID: "response_time", Severity: P2, Unit: "ms", Samples: len(in.Latency)}
	switch {
	case len(in.Latency)+in.LatencyFailed == 0:
		c.Status, c.Evidence = Unknown, "no latency measured (health.url is empty)"
		return c
	case len(in.Latency) < th.MinLatencySamples:
		c.Status, c.Evidence = Unknown, fmt.Sprintf("%d successful requests, %d needed", len(in.Latency), th.MinLatencySamples)
		return c
	case in.Baseline == nil || in.Baseline.Latency.P95MS <= 0:
		c.Status, c.Evidence = Unknown, "no baseline latency: run 'cfrollback baseline record' after a healthy deploy"
		return c
	}
	p95 := ms(health.Summarise(in.Latency).P95)
	limit := th.ResponseFactor * in.Baseline.Latency.P95MS
	c.Value, c.Threshold = Ptr(p95), limit
	c.Evidence = fmt.Sprintf("p95 %.1fms over %d requests; baseline p95 %.1fms, limit %gx = %.1fms",
		p95, len(in.Latency), in.Baseline.Latency.P95MS, th.ResponseFactor, limit)
	c.Status = Clear
	if p95 > limit {
		c.Status = Met
	}
	return c
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// probeRate judges the fraction of health requests in the monitor's window
// that failed (bad, per sample).
func probeRate(in Input, th Thresholds, id string, sev Severity, limit float64, window time.Duration, bad func(Probe) bool) Condition {
	c := Condition{ID: id, Severity: sev, Threshold: limit, Unit: "fraction"}
	var probes []Sample
	for _, s := range Window(in.Samples, in.Now, window) {
		if s.Probe != nil {
			probes = append(probes, s)
		}
	}
	c.Samples = len(probes)
	if why, ok := covered(probes, in.Now, window, th); !ok {
		why = strings.Replace(why, "monitor samples", "monitor samples with a health request", 1)
		c.Status, c.Evidence = Unknown, why
		return c
	}
	n := 0
	for _, s := range probes {
		if bad(*s.Probe) {
			n++
		}
	}
	rate := float64(n) / float64(len(probes))
	c.Value = Ptr(rate)
	c.Evidence = fmt.Sprintf("%d of %d requests in the last %s (%.1f%%; threshold %.0f%%)", n, len(probes), human(window), 100*rate, 100*limit)
	c.Status = Clear
	if rate > limit {
		c.Status = Met
	}
	return c
}

// covered says whether samples (in one window) are enough to judge it.
func covered(samples []Sample, now time.Time, window time.Duration, th Thresholds) (string, bool) {
	if len(samples) < th.MinWindowSamples {
		return fmt.Sprintf("%d monitor samples in the last %s, %d needed: run 'cfrollback monitor'", len(samples), human(window), th.MinWindowSamples), false
	}
	span := now.Sub(samples[0].Time)
	if need := time.Duration(th.Coverage * float64(window)); span < need {
		return fmt.Sprintf("monitor samples span %s of the %s window, %s needed", span.Round(time.Second), human(window), need.Round(time.Second)), false
	}
	return "", true
}

func memoryGrowth(in Input, th Thresholds) Condition {
	c := Condition{ID: "memory_growth", Severity: P3, Threshold: th.MemoryPerHour, Unit: "bytes/hour"}
	series := rssSeries(Window(in.Samples, in.Now, th.MemoryWindow))
	c.Samples = len(series)
	if len(series) < th.MinWindowSamples {
		c.Status, c.Evidence = Unknown, fmt.Sprintf("%d RSS samples of one process in the last %s, %d needed: run 'cfrollback monitor'", len(series), human(th.MemoryWindow), th.MinWindowSamples)
		return c
	}
	span := series[len(series)-1].Time.Sub(series[0].Time)
	if span < th.MemoryMinSpan {
		c.Status, c.Evidence = Unknown, fmt.Sprintf("RSS samples span %s, %s needed", span.Round(time.Second), th.MemoryMinSpan)
		return c
	}
	rate := GrowthPerHour(series)
	c.Value = Ptr(rate)
	c.Evidence = fmt.Sprintf("RSS of pid %d grew %.1f MB/hour over %s (%d samples, %s -> %s; threshold %.0f MB/hour)",
		series[0].PID, rate/MB, span.Round(time.Second), len(series), ui.Bytes(*series[0].RSS),
		ui.Bytes(*series[len(series)-1].RSS), th.MemoryPerHour/MB)
	c.Status = Clear
	if rate > th.MemoryPerHour {
		c.Status = Met
	}
	return c
}

// rssSeries keeps the samples with an RSS of the newest process: a restart
// frees whatever leaked, so older pids are another series.
func rssSeries(samples []Sample) []Sample {
	pid := -1
	for i := len(samples) - 1; i >= 0; i-- {
		if samples[i].RSS != nil {
			pid = samples[i].PID
			break
		}
	}
	var out []Sample
	for _, s := range samples {
		if s.RSS != nil && s.PID == pid {
			out = append(out, s)
		}
	}
	return out
}

// GrowthPerHour is the least-squares slope of RSS over time, in bytes per
// hour: one spike does not make a leak, a steady climb does. Samples
// without an RSS are ignored; fewer than two give 0.
func GrowthPerHour(samples []Sample) float64 {
	var xs, ys []float64
	for _, s := range samples {
		if s.RSS == nil {
			continue
		}
		xs = append(xs, s.Time.Sub(samples[0].Time).Hours())
		ys = append(ys, float64(*s.RSS))
	}
	if len(xs) < 2 {
		return 0
	}
	mx, my := mean(xs), mean(ys)
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// SortedByTime returns samples ordered by time (the store appends in
// order, but two monitors may have interleaved).
func SortedByTime(samples []Sample) []Sample {
	out := slices.Clone(samples)
	slices.SortStableFunc(out, func(a, b Sample) int { return a.Time.Compare(b.Time) })
	return out
}

// MemoryGrowth judges only the memory-growth condition, for monitor's
// live memory-leak watch.
func MemoryGrowth(samples []Sample, now time.Time, th Thresholds) Condition {
	return memoryGrowth(Input{Now: now, Samples: samples}, th)
}
