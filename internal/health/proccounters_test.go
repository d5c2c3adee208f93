package health

import (
	"math"
	"path/filepath"
	"testing"
	"time"
)

func TestReadProcessCounters(t *testing.T) {
	// utime 250 + stime 50 ticks = 3 s of CPU; started 1000 ticks (10 s) after boot
	fakeProc(t, "42", map[string]string{
		"stat":   "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1000 1000 10 18446744073709551615",
		"status": "Name:\tnode\nVmRSS:\t  2048 kB\n",
	})
	writeFile(t, filepath.Join(procRoot, "uptime"), "40.00 70.00\n")
	pc, err := ReadProcessCounters(42)
	if err != nil {
		t.Fatal(err)
	}
	if pc.RSS != 2048<<10 || pc.CPU != 3*time.Second || pc.Age != 30*time.Second {
		t.Fatalf("counters %+v", pc)
	}
	if p, ok := pc.LifetimeCPUPercent(); !ok || p != 10 {
		t.Errorf("lifetime CPU %v %v, want 10%% (3 s in 30 s)", p, ok)
	}
	if _, err := ReadProcessCounters(43); err == nil {
		t.Error("a missing pid reads")
	}
}

func TestReadProcessCountersWithoutUptime(t *testing.T) {
	fakeProc(t, "42", map[string]string{
		"stat":   "42 (node) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1000 1000 10 18446744073709551615",
		"status": "VmRSS:\t  1 kB\n",
	})
	pc, err := ReadProcessCounters(42)
	if err != nil || pc.Age != 0 {
		t.Fatalf("%+v %v", pc, err)
	}
	if _, ok := pc.LifetimeCPUPercent(); ok {
		t.Error("an unknown age gives a lifetime CPU")
	}
}

func TestCPUPercentBetween(t *testing.T) {
	a := ProcessCounters{CPU: time.Second}
	for _, c := range []struct {
		after ProcessCounters
		wall  time.Duration
		want  float64
		ok    bool
	}{
		{ProcessCounters{CPU: 1500 * time.Millisecond}, time.Second, 50, true},
		{ProcessCounters{CPU: 3 * time.Second}, time.Second, 200, true}, // two cores
		{ProcessCounters{CPU: time.Second}, 10 * time.Second, 0, true},
		{ProcessCounters{CPU: 500 * time.Millisecond}, time.Second, 0, false}, // went back: another process
		{ProcessCounters{CPU: 2 * time.Second}, 0, 0, false},
	} {
		got, ok := CPUPercentBetween(a, c.after, c.wall)
		if ok != c.ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("CPUPercentBetween(%v, %v, %v) = %v %v, want %v %v", a.CPU, c.after.CPU, c.wall, got, ok, c.want, c.ok)
		}
	}
}
