package assess

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/logs"
	"github.com/cfrollback/cfrollback/internal/service"
)

// watchSources are the patterns of monitor's --watch-for conditions; "" for one judged
// otherwise (memory-leak: on the RSS series, not on log lines).
var watchSources = map[string]string{
	"agent-spawn-failure": `(?i)(failed to spawn|spawn\w*\W+(\w+\W+){0,3}(fail|error)|agent\W+(\w+\W+){0,3}(spawn\w*\W+)?fail)`,
	"api-timeout":         `(?i)(timed?[ -]?out|ETIMEDOUT|deadline exceeded)`,
	"memory-leak":         "",
}

// WatchPatterns are the log lines each of monitor's --watch-for conditions counts (nil for
// memory-leak). Compiled at first use, not at every start of every command: the spawn
// pattern's {0,3} repeats make it one of the larger programs, and the command tree only
// needs the names (WatchNames).
var WatchPatterns = sync.OnceValue(func() map[string]*regexp.Regexp {
	m := make(map[string]*regexp.Regexp, len(watchSources))
	for name, src := range watchSources {
		if src == "" {
			m[name] = nil
			continue
		}
		m[name] = regexp.MustCompile(src)
	}
	return m
})

// WatchNames are the --watch-for conditions, sorted.
func WatchNames() []string {
	names := make([]string, 0, len(watchSources))
	for n := range watchSources {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Sampler takes monitor's samples: the manager's state and restarts, the main process's RSS
// and CPU, one health request, and the log lines gained since the last sample. The three
// reads (manager and process, request, log) run at once: a sample takes as long as the
// slowest of them, not their sum.
type Sampler struct {
	Service service.Manager
	// PID is the process to measure; 0: the manager's main pid when PIDVisible says it is
	// seen from here.
	PID        int
	PIDVisible func(pid int) (bool, string)
	// CPUSample > 0 measures CPU over a window of that length within each sample. 0 (guard):
	// no waiting: the CPU between this sample and the previous one of the same process (the
	// average over the interval, from the kernel's counters), and for a process's first
	// sample its average since it started.
	CPUSample time.Duration
	// ReadProcess reads a process's counters (nil: health.ReadProcessCounters).
	ReadProcess func(pid int) (health.ProcessCounters, error)
	HealthURL   string
	Timeout     time.Duration
	WatchFor    []string
	// Tail is the log (nil: not read); ErrorRE marks its error lines.
	Tail    *logs.Tail
	ErrorRE *regexp.Regexp
	Warn    func(string)
	Now     func() time.Time

	failed string // the last read error warned about, so a failing log warns once
	// prev is the last reading of the process's counters, for the CPU between samples.
	prev processReading
}

type processReading struct {
	pid      int
	counters health.ProcessCounters
	at       time.Time
}

// Take takes one sample. A part that cannot be measured is left out (nil), never zero:
// an unread log is no evidence of a clean one.
func (sm *Sampler) Take(ctx context.Context) Sample {
	s := Sample{Time: sm.Now().UTC()}
	var (
		wg               sync.WaitGroup
		probe            *Probe
		errs, agentFails int
		watch            map[string]int
		logRead          bool
	)
	if sm.HealthURL != "" {
		wg.Go(func() {
			r := health.HTTPProbe{URL: sm.HealthURL, Timeout: sm.Timeout}.Probe(ctx)
			probe = &Probe{OK: r.OK, LatencyMS: float64(r.Duration.Microseconds()) / 1000, StatusCode: r.StatusCode, Network: !r.OK && r.StatusCode == 0}
			if !r.OK {
				probe.Detail = r.Detail
			}
		})
	}
	wg.Go(func() { errs, agentFails, watch, logRead = sm.readLog(ctx) })
	sm.sampleProcess(ctx, &s)
	wg.Wait()
	s.Probe = probe
	if logRead {
		s.ErrorLines, s.AgentFailures = Ptr(errs), Ptr(agentFails)
		for _, w := range sm.WatchFor {
			if WatchPatterns()[w] != nil {
				if s.Watch == nil {
					s.Watch = map[string]int{}
				}
				s.Watch[w] = watch[w]
			}
		}
	}
	if slices.Contains(sm.WatchFor, "api-timeout") && s.Probe != nil && strings.Contains(s.Probe.Detail, "timeout") {
		if s.Watch == nil {
			s.Watch = map[string]int{}
		}
		s.Watch["api-timeout"]++
	}
	return s
}

// sampleProcess fills in the manager's view and the main process's RSS and CPU.
func (sm *Sampler) sampleProcess(ctx context.Context, s *Sample) {
	st, err := sm.Service.Status(ctx)
	if err == nil {
		s.Active, s.State, s.CrashLoop, s.Restarts = Ptr(st.Active), st.State, health.CrashLooping(st), Ptr(st.Restarts)
	}
	pid := sm.PID
	if pid == 0 && err == nil && st.MainPID > 0 && sm.PIDVisible != nil {
		if ok, _ := sm.PIDVisible(st.MainPID); ok {
			pid = st.MainPID
		}
	}
	if pid <= 0 {
		return
	}
	if sm.CPUSample > 0 {
		if ps, err := health.SampleProcess(ctx, pid, sm.CPUSample); err == nil {
			s.PID, s.RSS, s.CPUPercent = pid, Ptr(ps.RSS), Ptr(ps.CPUPercent)
		}
		return
	}
	read := sm.ReadProcess
	if read == nil {
		read = health.ReadProcessCounters
	}
	pc, err := read(pid)
	if err != nil {
		return
	}
	now := sm.Now()
	s.PID, s.RSS = pid, Ptr(pc.RSS)
	cpu, ok := 0.0, false
	if sm.prev.pid == pid {
		cpu, ok = health.CPUPercentBetween(sm.prev.counters, pc, now.Sub(sm.prev.at))
	}
	if !ok {
		cpu, ok = pc.LifetimeCPUPercent()
	}
	if ok {
		s.CPUPercent = Ptr(cpu)
	}
	sm.prev = processReading{pid: pid, counters: pc, at: now}
}

// readLog counts the new lines; ok is false when the log is not read or this read failed.
func (sm *Sampler) readLog(ctx context.Context) (errs, agentFails int, watch map[string]int, ok bool) {
	if sm.Tail == nil {
		return 0, 0, nil, false
	}
	watch = map[string]int{}
	spawn := WatchPatterns()["agent-spawn-failure"]
	err := sm.Tail.Read(ctx, sm.Now(), func(l logs.Line) error {
		if sm.ErrorRE.MatchString(l.Message) {
			errs++
		}
		if spawn.MatchString(l.Message) {
			agentFails++
		}
		for _, w := range sm.WatchFor {
			if re := WatchPatterns()[w]; re != nil && re.MatchString(l.Message) {
				watch[w]++
			}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil && err.Error() != sm.failed && sm.Warn != nil {
			sm.Warn(fmt.Sprintf("%v; this sample has no error count", err))
		}
		sm.failed = err.Error()
		return 0, 0, nil, false
	}
	sm.failed = ""
	return errs, agentFails, watch, true
}

// Alerts says which of the sampler's --watch-for conditions the newest sample s trips,
// history holding the samples so far (memory-leak is judged on it with th).
func (sm *Sampler) Alerts(history []Sample, s Sample, th Thresholds) []string {
	var out []string
	for _, w := range sm.WatchFor {
		if w == "memory-leak" {
			c := MemoryGrowth(history, s.Time, th)
			if c.Status == Met {
				out = append(out, "memory-leak: "+c.Evidence)
			}
			continue
		}
		if n := s.Watch[w]; n > 0 {
			out = append(out, fmt.Sprintf("%s: %d since the last sample", w, n))
		}
	}
	return out
}
