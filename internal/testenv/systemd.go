package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SystemdSandbox is a real systemd booted by scripts/systemd-sandbox as PID 1 of its own PID,
// mount and UTS namespaces. It shares the host's filesystem (except /run and the unit
// directories) and network, and its system bus is reachable from the test at BusAddress.
type SystemdSandbox struct {
	PID        int    // the sandbox's systemd, as seen from the test's PID namespace
	BusAddress string // its system bus; Systemd also sets DBUS_SYSTEM_BUS_ADDRESS to it
	UnitDir    string // /proc/PID/root/run/systemd/system: drop test units here
	StateDir   string // the script's state dir (console.log holds systemd's own log)

	script string
}

// Systemd boots a fresh systemd sandbox for this test (about 0.3 s) and tears it down, with
// everything it started, in t.Cleanup. It sets DBUS_SYSTEM_BUS_ADDRESS for the rest of the
// test, so code that dials the system bus talks to the sandbox, never the host; because of
// that t.Setenv the test must not be parallel. Each test gets its own sandbox: booting is
// cheap and no unit state leaks between tests.
//
// Needs root, /lib/systemd/systemd, dbus-daemon, unshare, nsenter and pgrep (Require
// semantics: skipped locally, failed with CI=true).
//
// MainPID values the sandbox reports are in its own PID namespace and differ from the pids
// the test sees. Sandboxes share the host's cgroup tree (there is no cgroup namespace), so
// concurrent sandboxes see each other's unit cgroups; systemd only signals the pids it
// tracks, so this has not caused interference, but keep test unit names specific.
func Systemd(t testing.TB) *SystemdSandbox {
	t.Helper()
	const how = "run scripts/setup-deps.sh as root (apt-get install systemd dbus util-linux procps)"
	RequireRoot(t)
	Require(t, isExecutable("/lib/systemd/systemd"), "/lib/systemd/systemd", how)
	for _, tool := range []string{"dbus-daemon", "unshare", "nsenter", "pgrep"} {
		RequireTool(t, tool)
	}
	script := filepath.Join(RepoRoot(t), "scripts", "systemd-sandbox")
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("systemd sandbox: %v", err)
	}
	state, err := os.MkdirTemp("/tmp", "sbx")
	if err != nil {
		t.Fatalf("systemd sandbox: %v", err)
	}
	sb := &SystemdSandbox{StateDir: state, script: script}
	// Registered before 'up' so that a half-booted sandbox is torn down too.
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(state, "console.log")); err == nil && len(log) > 0 {
				t.Logf("systemd sandbox console.log (last 4 KiB):\n%s", lastBytes(log, 4096))
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "sh", script, "down", state).CombinedOutput(); err != nil {
			t.Logf("systemd-sandbox down: %v\n%s", err, out)
		}
		_ = os.RemoveAll(state)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "sh", script, "up", state)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("systemd-sandbox up: %v\n%s%s", err, out, stderr.Bytes())
	}
	vars := parseExports(out)
	sb.BusAddress = vars["DBUS_SYSTEM_BUS_ADDRESS"]
	sb.PID, err = strconv.Atoi(vars["SYSTEMD_SANDBOX_PID"])
	if err != nil || sb.PID <= 1 || sb.BusAddress == "" {
		t.Fatalf("systemd-sandbox up: unexpected output (want SYSTEMD_SANDBOX_PID and DBUS_SYSTEM_BUS_ADDRESS):\n%s", out)
	}
	sb.UnitDir = fmt.Sprintf("/proc/%d/root/run/systemd/system", sb.PID)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", sb.BusAddress)
	return sb
}

// Exec runs args inside the sandbox's namespaces (systemctl there talks to the sandbox's
// systemd) and returns the combined output.
func (sb *SystemdSandbox) Exec(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", append([]string{sb.script, "exec", sb.StateDir}, args...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("systemd-sandbox exec %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// WriteUnit writes a unit file into the sandbox's /run/systemd/system and reloads systemd.
func (sb *SystemdSandbox) WriteUnit(name, content string) error {
	if err := os.WriteFile(filepath.Join(sb.UnitDir, name), []byte(content), 0o644); err != nil {
		return fmt.Errorf("write unit %s: %w", name, err)
	}
	_, err := sb.Exec("systemctl", "daemon-reload")
	return err
}

// parseExports reads the "export KEY=VALUE" lines systemd-sandbox up prints.
func parseExports(out []byte) map[string]string {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	return vars
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
