package health

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Disk is the space of one filesystem.
type Disk struct {
	Total, Avail uint64 // bytes; Avail is what an unprivileged process may still use
}

// AvailPercent is Avail as a percentage of Total.
func (d Disk) AvailPercent() float64 {
	if d.Total == 0 {
		return 0
	}
	return 100 * float64(d.Avail) / float64(d.Total)
}

// DiskUsage statfs()s the filesystem holding path.
func DiskUsage(path string) (Disk, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return Disk{}, fmt.Errorf("free space of %s: %w", path, err)
	}
	bs := uint64(st.Bsize) //nolint:gosec // a block size is positive
	return Disk{Total: st.Blocks * bs, Avail: st.Bavail * bs}, nil
}

// SameFilesystem reports whether a and b exist and are on one filesystem, so
// one disk row covers both.
func SameFilesystem(a, b string) bool {
	var sa, sb syscall.Stat_t
	if syscall.Stat(a, &sa) != nil || syscall.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev
}

// procRoot is /proc; tests point it at a fake tree.
var procRoot = "/proc"

// PIDVisible reports whether pid is a process in our PID namespace and, when
// cgroupUnit is set (a systemd unit such as "claude-flow.service"), whether
// it is in that unit's cgroup. The check matters because systemd's MainPID
// is a pid of systemd's namespace: from inside a container, or next to a
// sandboxed systemd, the same number may be nobody, or somebody else.
func PIDVisible(pid int, cgroupUnit string) (bool, string) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/cgroup", procRoot, pid))
	if err != nil {
		return false, fmt.Sprintf("pid %d is not visible in this PID namespace (the manager's pids are of its own namespace)", pid)
	}
	if cgroupUnit != "" && !bytes.Contains(b, []byte("/"+cgroupUnit)) {
		return false, fmt.Sprintf("pid %d here is not in %s's cgroup: the manager runs in another PID namespace", pid, cgroupUnit)
	}
	return true, ""
}

// ProcessStats is one process's resource use.
type ProcessStats struct {
	RSS        uint64  // resident set size in bytes (VmRSS)
	CPUPercent float64 // user+system CPU over the sample, as % of one core
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc on every
// architecture Go supports.
const clockTicks = 100

// SampleProcess reads pid's RSS and measures its CPU use over sample.
func SampleProcess(ctx context.Context, pid int, sample time.Duration) (ProcessStats, error) {
	t0, err := cpuTicks(pid)
	if err != nil {
		return ProcessStats{}, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return ProcessStats{}, fmt.Errorf("sample pid %d: %w", pid, ctx.Err())
	case <-time.After(sample):
	}
	t1, err := cpuTicks(pid)
	if err != nil {
		return ProcessStats{}, err
	}
	rss, err := rssBytes(pid)
	if err != nil {
		return ProcessStats{}, err
	}
	wall := time.Since(start).Seconds()
	cpu := float64(t1-t0) / clockTicks / wall * 100
	return ProcessStats{RSS: rss, CPUPercent: cpu}, nil
}

// cpuTicks is utime+stime of /proc/PID/stat.
func cpuTicks(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("read pid %d's CPU time: short /proc/%d/stat", pid, pid)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("read pid %d's CPU time: %w", pid, err)
	}
	return u + s, nil
}

// rssBytes is VmRSS of /proc/PID/status.
func rssBytes(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("%s/%d/status", procRoot, pid))
	if err != nil {
		return 0, fmt.Errorf("read pid %d's memory: %w", pid, err)
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read pid %d's memory: VmRSS: %w", pid, err)
		}
		return kb << 10, nil
	}
	// Kernel threads and zombies have no VmRSS.
	return 0, fmt.Errorf("read pid %d's memory: no VmRSS (a zombie or kernel thread?)", pid)
}
