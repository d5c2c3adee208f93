package testenv

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// recordingTB records what Require does instead of stopping the test.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper()                      {}
func (r *recordingTB) Skipf(f string, args ...any)  { r.skipped = fmt.Sprintf(f, args...) }
func (r *recordingTB) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

func TestRequire(t *testing.T) {
	for _, tt := range []struct {
		ci                    string
		ok                    bool
		wantSkip, wantFailure bool
	}{
		{ci: "", ok: true},
		{ci: "true", ok: true},
		{ci: "", ok: false, wantSkip: true},
		{ci: "false", ok: false, wantSkip: true},
		{ci: "0", ok: false, wantSkip: true},
		{ci: "true", ok: false, wantFailure: true},
		{ci: "1", ok: false, wantFailure: true},
	} {
		t.Run(fmt.Sprintf("ci=%q,ok=%v", tt.ci, tt.ok), func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recordingTB{TB: t}
			Require(r, tt.ok, "frobnicator", "apt-get install frob")
			if (r.skipped != "") != tt.wantSkip || (r.failed != "") != tt.wantFailure {
				t.Errorf("skipped=%q failed=%q", r.skipped, r.failed)
			}
			for _, msg := range []string{r.skipped, r.failed} {
				if msg != "" && (!strings.Contains(msg, "frobnicator is missing") || !strings.Contains(msg, "apt-get install frob")) {
					t.Errorf("message %q does not say what is missing and how to get it", msg)
				}
			}
		})
	}
}

func TestInCI(t *testing.T) {
	for v, want := range map[string]bool{
		"true": true, "1": true, "TRUE": true, "yes": true, "woodpecker": true,
		"": false, "false": false, "0": false, "False": false,
	} {
		t.Setenv("CI", v)
		if got := InCI(); got != want {
			t.Errorf("CI=%q: InCI = %v", v, got)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testenv")); err != nil {
		t.Errorf("RepoRoot = %s, which is not this module: %v", root, err)
	}
}

func TestParseExports(t *testing.T) {
	vars := parseExports([]byte("export SYSTEMD_SANDBOX_PID=123\nexport DBUS_SYSTEM_BUS_ADDRESS=unix:path=/proc/123/root/run/dbus/system_bus_socket\n"))
	if vars["SYSTEMD_SANDBOX_PID"] != "123" || vars["DBUS_SYSTEM_BUS_ADDRESS"] != "unix:path=/proc/123/root/run/dbus/system_bus_socket" {
		t.Errorf("got %v", vars)
	}
}

func TestSystemdSandbox(t *testing.T) {
	sb := Systemd(t)
	if got := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); got != sb.BusAddress || !strings.HasPrefix(got, "unix:path=/proc/") {
		t.Errorf("DBUS_SYSTEM_BUS_ADDRESS = %q, BusAddress = %q", got, sb.BusAddress)
	}
	if err := sb.WriteUnit("cfr-testenv.service", "[Service]\nExecStart=/bin/sleep 3600\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Exec("systemctl", "start", "cfr-testenv.service"); err != nil {
		t.Fatal(err)
	}
	out, err := sb.Exec("systemctl", "is-active", "cfr-testenv.service")
	if err != nil || strings.TrimSpace(string(out)) != "active" {
		t.Errorf("is-active: %q, %v", out, err)
	}
	if _, err := sb.Exec("false"); err == nil {
		t.Error("Exec of a failing command returned no error")
	}
}

// The sandbox and everything in it is gone after the test that booted it.
func TestSystemdSandboxCleanup(t *testing.T) {
	var pid int
	var state string
	t.Run("boot", func(t *testing.T) {
		sb := Systemd(t)
		pid, state = sb.PID, sb.StateDir
	})
	if pid == 0 {
		t.Skip("the sandbox did not boot")
	}
	deadline := time.Now().Add(5 * time.Second)
	for running(fmt.Sprint(pid)) {
		if time.Now().After(deadline) {
			t.Fatalf("sandbox systemd %d still running after its test ended", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state dir %s left behind", state)
	}
}

func TestPM2Home(t *testing.T) {
	pm2 := PM2(t)
	var home string
	var daemon string
	t.Run("use", func(t *testing.T) {
		home = PM2Home(t, pm2)
		if len(filepath.Join(home, "rpc.sock")) > 100 {
			t.Errorf("PM2_HOME %s is too long for unix sockets", home)
		}
		if os.Getenv("PM2_HOME") != home {
			t.Errorf("PM2_HOME not set for the test")
		}
		cmd := exec.Command(pm2, "start", "/bin/sleep", "--name", "cfr-testenv", "--interpreter", "none", "--", "3600")
		cmd.Env = append(os.Environ(), "PM2_HOME="+home)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pm2 start: %v\n%s", err, out)
		}
		b, err := os.ReadFile(filepath.Join(home, "pm2.pid"))
		if err != nil {
			t.Fatal(err)
		}
		daemon = strings.TrimSpace(string(b))
	})
	if home == "" || daemon == "" {
		t.Skip("pm2 did not start")
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("PM2_HOME %s left behind", home)
	}
	// 'pm2 kill' returns as the daemon exits; give it a moment. A zombie counts as gone:
	// reaping the detached daemon is init's job.
	deadline := time.Now().Add(5 * time.Second)
	for running(daemon) {
		if time.Now().After(deadline) {
			t.Fatalf("pm2 daemon %s still running", daemon)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func running(pid string) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// The one skip rule is Require's: no other test reads CI itself (one did, and took CI=1 for
// "not CI").
func TestNoOtherSkipRule(t *testing.T) {
	root := RepoRoot(t)
	self := filepath.Join(root, "internal", "testenv")
	var found []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (p == self || d.Name() == "tools" || d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if ciRead.Match(b) {
			found = append(found, strings.TrimPrefix(p, root+"/"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Errorf("these files read CI themselves; use testenv.Require (RequireRoot, RequireTool) instead: %v", found)
	}
}

var ciRead = regexp.MustCompile(`(Getenv|LookupEnv)\("CI"\)`)
