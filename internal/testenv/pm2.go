package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PM2 returns the pm2 binary for tests: $CFROLLBACK_TEST_PM2 if set, else the copy that
// scripts/setup-deps.sh installs at <repo>/tools/pm2/node_modules/.bin/pm2, else pm2 in PATH.
// pm2 is a node program, so node must be in PATH too.
func PM2(t testing.TB) string {
	t.Helper()
	const how = "run scripts/setup-deps.sh (it installs pm2 into tools/pm2) or set CFROLLBACK_TEST_PM2"
	RequireTool(t, "node")
	if p := os.Getenv("CFROLLBACK_TEST_PM2"); p != "" {
		Require(t, isExecutable(p), "pm2 at CFROLLBACK_TEST_PM2="+p, how)
		return p
	}
	if p := filepath.Join(RepoRoot(t), "tools", "pm2", "node_modules", ".bin", "pm2"); isExecutable(p) {
		return p
	}
	p, err := exec.LookPath("pm2")
	Require(t, err == nil, "pm2", how)
	return p
}

// PM2Home makes a fresh, empty PM2_HOME for one test, sets PM2_HOME to it for the rest of the
// test (so a pm2 run that forgets to pass it still cannot reach ~/.pm2) and returns it.
//
// The directory lives directly under /tmp because pm2 puts unix sockets in it (rpc.sock,
// pub.sock) and socket paths are limited to 108 bytes; t.TempDir paths can be longer.
// Cleanup runs 'pm2 kill' for that home; if the daemon survives that, it kills the daemon's pid
// from that home's pm2.pid and the app pids from its pids/ directory, and nothing else.
//
// Because it calls t.Setenv, the test must not be parallel.
func PM2Home(t testing.TB, pm2 string) string {
	t.Helper()
	home, err := os.MkdirTemp("/tmp", "pm2h")
	if err != nil {
		t.Fatalf("pm2 home: %v", err)
	}
	t.Setenv("PM2_HOME", home)
	t.Cleanup(func() {
		// pm2 7's 'pm2 kill' spawns a daemon first if none runs, so only run it if one might.
		if exists(filepath.Join(home, "pm2.pid")) || exists(filepath.Join(home, "rpc.sock")) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, pm2, "kill")
			cmd.Env = append(os.Environ(), "PM2_HOME="+home)
			cmd.Dir = home
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Logf("pm2 kill (PM2_HOME=%s): %v\n%s", home, err, out)
			}
		}
		if pid, ok := readPID(filepath.Join(home, "pm2.pid")); ok {
			t.Logf("pm2 daemon %d survived 'pm2 kill'; killing it and its apps", pid)
			killPID(pid)
			apps, _ := filepath.Glob(filepath.Join(home, "pids", "*.pid"))
			for _, f := range apps {
				if pid, ok := readPID(f); ok {
					killPID(pid)
				}
			}
		}
		if err := os.RemoveAll(home); err != nil {
			t.Logf("remove pm2 home: %v", err)
		}
	})
	return home
}

// readPID returns the pid stored in file if that process is still alive.
func readPID(file string) (int, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	return pid, syscall.Kill(pid, 0) == nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func killPID(pid int) {
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
