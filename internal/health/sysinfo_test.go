package health

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeProc points procRoot at a temp tree for the test.
func fakeProc(t *testing.T, pid string, files map[string]string) {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		writeFile(t, filepath.Join(root, pid, name), content)
	}
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
}

func TestCPUTicksOddCommandName(t *testing.T) {
	// A command name may hold spaces and parentheses: "(a) b)".
	fakeProc(t, "42", map[string]string{
		"stat":   "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10 18446744073709551615",
		"status": "Name:\tnode\nVmPeak:\t  9000 kB\nVmRSS:\t  2048 kB\n",
	})
	ticks, err := cpuTicks(42)
	if err != nil || ticks != 300 {
		t.Fatalf("cpuTicks = %d, %v; want 300", ticks, err)
	}
	rss, err := rssBytes(42)
	if err != nil || rss != 2048<<10 {
		t.Fatalf("rssBytes = %d, %v", rss, err)
	}
	ps, err := SampleProcess(t.Context(), 42, time.Millisecond)
	if err != nil || ps.RSS != 2048<<10 || ps.CPUPercent != 0 {
		t.Fatalf("SampleProcess = %+v, %v", ps, err)
	}
}

func TestRSSMissing(t *testing.T) {
	fakeProc(t, "43", map[string]string{"status": "Name:\tkthreadd\n"})
	if _, err := rssBytes(43); err == nil || !strings.Contains(err.Error(), "no VmRSS") {
		t.Fatalf("err = %v", err)
	}
}

func TestPIDVisible(t *testing.T) {
	fakeProc(t, "50", map[string]string{"cgroup": "0::/system.slice/claude-flow.service\n"})
	if ok, why := PIDVisible(50, "claude-flow.service"); !ok {
		t.Errorf("in the unit's cgroup: %s", why)
	}
	if ok, why := PIDVisible(50, "other.service"); ok || !strings.Contains(why, "another PID namespace") {
		t.Errorf("another unit's cgroup: %v %s", ok, why)
	}
	if ok, why := PIDVisible(51, ""); ok || !strings.Contains(why, "not visible") {
		t.Errorf("no such pid: %v %s", ok, why)
	}
}

func TestDiskUsageAndSameFilesystem(t *testing.T) {
	dir := t.TempDir()
	d, err := DiskUsage(dir)
	if err != nil || d.Total == 0 || d.Avail > d.Total || d.AvailPercent() <= 0 || d.AvailPercent() > 100 {
		t.Fatalf("DiskUsage = %+v, %v", d, err)
	}
	if !SameFilesystem(dir, dir) {
		t.Error("a dir is on its own filesystem")
	}
	if SameFilesystem(dir, filepath.Join(dir, "missing")) {
		t.Error("a missing dir is on no filesystem")
	}
	if _, err := os.Stat("/proc/self/stat"); err == nil && SameFilesystem(dir, "/proc") {
		t.Error("/proc is its own filesystem")
	}
}
