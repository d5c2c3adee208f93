package health

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcessCounters are one process's cumulative counters, read at once without
// waiting: two readings of one pid give its CPU use between them
// (CPUPercentBetween), where SampleProcess sleeps through a window.
type ProcessCounters struct {
	RSS uint64 // resident set size in bytes (VmRSS)
	// CPU is the user+system CPU time the process used since it started.
	CPU time.Duration
	// Age is how long the process has run (system uptime less its start
	// time); 0 when the uptime could not be read.
	Age time.Duration
}

// ReadProcessCounters reads pid's counters from /proc/PID/stat, /proc/PID/status
// and /proc/uptime.
func ReadProcessCounters(pid int) (ProcessCounters, error) {
	f, err := statFields(pid)
	if err != nil {
		return ProcessCounters{}, err
	}
	// f[0] is field 3 (state): utime, stime are fields 14, 15; starttime is 22.
	if len(f) < 20 {
		return ProcessCounters{}, fmt.Errorf("read pid %d's CPU time: short /proc/%d/stat", pid, pid)
	}
	var n [3]uint64
	for i, idx := range []int{11, 12, 19} {
		if n[i], err = strconv.ParseUint(f[idx], 10, 64); err != nil {
			return ProcessCounters{}, fmt.Errorf("read pid %d's CPU time: %w", pid, err)
		}
	}
	rss, err := rssBytes(pid)
	if err != nil {
		return ProcessCounters{}, err
	}
	pc := ProcessCounters{RSS: rss, CPU: ticks(n[0] + n[1])}
	if up, err := uptime(); err == nil && up > ticks(n[2]) {
		pc.Age = up - ticks(n[2])
	}
	return pc, nil
}

// CPUPercentBetween is the CPU use between two readings of one process taken
// wall apart, as % of one core; ok is false when it cannot be told (no time
// between them, or counters that went back: not the same process).
func CPUPercentBetween(before, after ProcessCounters, wall time.Duration) (float64, bool) {
	if wall <= 0 || after.CPU < before.CPU {
		return 0, false
	}
	return 100 * float64(after.CPU-before.CPU) / float64(wall), true
}

// LifetimeCPUPercent is the process's CPU use averaged since it started, for a
// first reading with nothing to compare it with; ok is false when its age is unknown.
func (pc ProcessCounters) LifetimeCPUPercent() (float64, bool) {
	if pc.Age <= 0 {
		return 0, false
	}
	return 100 * float64(pc.CPU) / float64(pc.Age), true
}

// statFields are the fields of /proc/PID/stat after the command name: f[0] is field 3.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", procRoot, pid))
	if err != nil {
		return nil, fmt.Errorf("read pid %d's CPU time: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces and
	// parentheses itself: the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("read pid %d's CPU time: unexpected /proc/%d/stat", pid, pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// uptime is the first number of /proc/uptime: the time since boot.
func uptime() (time.Duration, error) {
	b, err := os.ReadFile(procRoot + "/uptime")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("empty %s/uptime", procRoot)
	}
	s, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(s * float64(time.Second)), nil
}

func ticks(n uint64) time.Duration {
	return time.Duration(n) * time.Second / clockTicks //nolint:gosec // CPU ticks fit in int64 for millennia
}
