package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/ui"
)

// versionSandbox points every setting into a temp dir through CFROLLBACK_*
// variables: a command-driven service over a marker file, an install dir
// whose package.json says 2.0.0-phase2, and an install command that only
// rewrites that package.json. Nothing outside the temp dir is touched.
func versionSandbox(t *testing.T) string {
	t.Helper()
	w := t.TempDir()
	install := filepath.Join(w, "opt", "app")
	if err := os.MkdirAll(install, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		filepath.Join(install, "package.json"): `{"name":"claude-flow","version":"2.0.0-phase2"}`,
		filepath.Join(install, "config.json"):  `{"claude": {"model": "phase2"}}`,
		filepath.Join(w, "running"):            "",
	} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range map[string]string{
		"INSTALL_DIR": install, "BACKUP_DIR": w + "/backups", "JOURNAL": w + "/log/journal.jsonl",
		"LOCK": w + "/run/cfrollback.lock", "LOG_DIR": w + "/log", "BACKUP_STATE": w + "/state/backups.json",
		"STATE_DIR": w + "/state", "DATABASE_BACKUP_DIR": w + "/dbbackups",
		"SERVICE_MANAGER":        "command",
		"SERVICE_START_COMMAND":  "touch " + w + "/running; echo start >>" + w + "/service.log",
		"SERVICE_STOP_COMMAND":   "rm -f " + w + "/running; echo stop >>" + w + "/service.log",
		"SERVICE_STATUS_COMMAND": "test -f " + w + "/running",
		"SERVICE_STOP_TIMEOUT":   "5s", "SERVICE_START_TIMEOUT": "5s",
		"HEALTH_URL": "", "HEALTH_INTERVAL": "20ms", "HEALTH_CONSECUTIVE": "2", "HEALTH_WAIT_TIMEOUT": "5s",
		"VERSION_INSTALL_COMMAND": "echo installing {version} >>" + w + "/ran.log; " +
			"printf '{\"name\":\"claude-flow\",\"version\":\"%s\"}' {version} >" + install + "/package.json",
		"VERSION_MIGRATE_COMMAND": "echo migrating {from} {to} >>" + w + "/ran.log",
	} {
		t.Setenv("CFROLLBACK_"+k, v)
	}
	t.Setenv("NO_COLOR", "1")
	return w
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Run(context.Background(), &ui.IO{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
	return code, out.String(), errOut.String()
}

func TestRollbackToVersionUsage(t *testing.T) {
	w := versionSandbox(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"rollback", "--to", "latest", "--to-version", "1.0.73"}, "--to and --to-version cannot be used together"},
		{[]string{"rollback", "--to-version", "1.0.73", "--before", "2025-01-04 14:00", "--yes"}, "do not apply to --to-version"},
		{[]string{"rollback", "--to-version", "1.0; rm -rf /", "--yes"}, "not a version"},
		{[]string{"rollback", "--to-version", "", "--yes"}, "not a version"},
		{[]string{"rollback"}, "--to-version V"},
		// No terminal to ask on and no --yes.
		{[]string{"rollback", "--to-version", "1.0.73"}, "pass --yes"},
	} {
		code, _, stderr := runCLI(c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with %q", c.args, code, stderr, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(w, "service.log")); err == nil {
		t.Fatal("a usage error touched the service")
	}
	if _, err := os.Stat(filepath.Join(w, "log", "journal.jsonl")); err == nil {
		t.Fatal("a usage error wrote the journal")
	}
}

// --dry-run prints the plan (here as JSON) and runs no command at all.
func TestRollbackToVersionDryRun(t *testing.T) {
	w := versionSandbox(t)
	code, stdout, stderr := runCLI("rollback", "--to-version", "1.0.73", "--dry-run", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var res struct {
		Outcome     string   `json:"outcome"`
		FromVersion string   `json:"from_version"`
		ToVersion   string   `json:"to_version"`
		Plan        []string `json:"plan"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	plan := strings.Join(res.Plan, "\n")
	if res.Outcome != "planned" || res.FromVersion != "2.0.0-phase2" || res.ToVersion != "1.0.73" ||
		!strings.Contains(plan, "would run: echo installing 1.0.73") || !strings.Contains(plan, "migrating 2.0.0-phase2 1.0.73") {
		t.Fatalf("result %+v", res)
	}
	for _, p := range []string{"ran.log", "service.log", "log/journal.jsonl", "backups/config"} {
		if _, err := os.Stat(filepath.Join(w, p)); err == nil {
			t.Errorf("dry run wrote %s", p)
		}
	}
}

// The real run through the CLI: exit 0, then a failing migrate is exit 4
// with the error as JSON on stderr, naming what was put back.
func TestRollbackToVersionRunAndPutBack(t *testing.T) {
	w := versionSandbox(t)
	code, stdout, stderr := runCLI("rollback", "--to-version", "1.0.73", "--yes")
	if code != ExitOK || !strings.Contains(stdout, "2.0.0-phase2 -> 1.0.73") || !strings.Contains(stdout, "cfrollback rollback --to-version 2.0.0-phase2") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Setenv("CFROLLBACK_VERSION_MIGRATE_COMMAND", "exit 7")
	code, _, stderr = runCLI("rollback", "--to-version", "2.0.0-alpha.82", "--yes", "--json")
	var e struct {
		Error    string `json:"error"`
		ExitCode int    `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(stderr), &e); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if code != ExitAfterStop || e.ExitCode != ExitAfterStop || !strings.Contains(e.Error, "exit status 7") || !strings.Contains(e.Error, "claude-flow 1.0.73 reinstalled") {
		t.Fatalf("exit %d, error %+v", code, e)
	}
	if b, _ := os.ReadFile(filepath.Join(w, "opt", "app", "package.json")); !strings.Contains(string(b), `"1.0.73"`) {
		t.Fatalf("package.json after the put-back: %s", b)
	}
	if _, err := os.Stat(filepath.Join(w, "running")); err != nil {
		t.Fatal("service not started again")
	}
}
