package testenv

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireMounts requires that this process can bind-mount a dir onto itself read-only, as
// the standby's read-only mount does (root with CAP_SYS_ADMIN in its mount namespace), and
// detaches every mount at or under dir at the end of the test (before a t.TempDir made
// earlier is removed).
func RequireMounts(t testing.TB, dir string) {
	t.Helper()
	RequireRoot(t)
	probe := filepath.Join(dir, ".mount-probe")
	ok := os.Mkdir(probe, 0o700) == nil && unix.Mount(probe, probe, "", unix.MS_BIND, "") == nil
	if ok {
		_ = unix.Unmount(probe, unix.MNT_DETACH)
	}
	_ = os.Remove(probe)
	Require(t, ok, "permission to bind-mount (CAP_SYS_ADMIN)", "run the tests as root in a mount namespace that allows mounts")
	DetachMountsAtEnd(t, dir)
}

// DetachMountsAtEnd detaches, when the test ends, every mount at or under dir that a test
// left (a standby's read-only mount): a read-only mount would stop t.TempDir's removal.
// Call it after the t.TempDir that holds dir, so that it runs first.
func DetachMountsAtEnd(t testing.TB, dir string) {
	t.Helper()
	dir, _ = filepath.EvalSymlinks(dir)
	t.Cleanup(func() {
		for _, m := range MountsUnder(dir) {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				t.Errorf("detach the mount at %s the test left: %v", m, err)
			}
		}
	})
}

// MountsUnder lists the mount points at or under dir in this mount namespace, deepest first.
func MountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close() //nolint:errcheck // read-only
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		mp := strings.ReplaceAll(fs[4], `\040`, " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// OtherMountNamespace starts a process (sleep, ended by pid when the test ends) in a private
// copy of this mount namespace, made now, and returns its /proc dir once it runs there.
func OtherMountNamespace(t testing.TB) string {
	t.Helper()
	unshare := RequireTool(t, "unshare")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, unshare, "--mount", "--propagation", "private", "sleep", "120")
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); cancel() })
	dir := fmt.Sprintf("/proc/%d", cmd.Process.Pid)
	own, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ns, _ := os.Readlink(dir + "/ns/mnt"); ns != "" && ns != own {
			if b, _ := os.ReadFile(dir + "/comm"); strings.TrimSpace(string(b)) == "sleep" {
				return dir
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare did not run sleep in a new mount namespace within 30 s")
		}
	}
}
