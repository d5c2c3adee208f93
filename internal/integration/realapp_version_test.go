package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// appPIDs are the pids (as this test sees them) of the real app's server processes: every
// process whose command line runs this install's claude-flow with `--port <a.Port>`. A
// restart changes them all; a refused run must leave them as they were.
func appPIDs(t *testing.T, a *realApp) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	port := "\x00--port\x00" + strconv.Itoa(a.Port)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if cmd := string(b); strings.Contains(cmd, a.Install) && strings.Contains(cmd+"\x00", port+"\x00") {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// installedClaudeFlow is the version in the install's node_modules/claude-flow/package.json.
func installedClaudeFlow(t *testing.T, a *realApp) string {
	t.Helper()
	var pkg struct{ Version string }
	b, err := os.ReadFile(filepath.Join(a.Install, "node_modules", "claude-flow", "package.json"))
	if err != nil || json.Unmarshal(b, &pkg) != nil {
		t.Fatalf("read the installed claude-flow's package.json: %v", err)
	}
	return pkg.Version
}

// shellWords is how /bin/sh splits line into words (printf stands in for the program).
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(line, " ")
	if !ok {
		t.Fatalf("no arguments in %q", line)
	}
	out, err := exec.Command("/bin/sh", "-c", `printf '%s\n' `+rest).Output()
	if err != nil {
		t.Fatalf("sh cannot read %q: %v", line, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// TestRealClaudeFlowVersionRollback: the real app runs under real systemd on the new release;
// `rollback --to-version` with the default profile's install command (npm --prefix into the
// install dir) puts the good release back and the service comes back healthy. A version that
// is not published is refused before anything is stopped, and --dry-run shows the command it
// would run with the install dir as the shell will read it.
func TestRealClaudeFlowVersionRollback(t *testing.T) {
	good, bad := testenv.ClaudeFlowGood, testenv.ClaudeFlowNew
	testenv.RequireTool(t, "npm")
	a := newRealApp(t, good)
	binary(t) // built now, so the timings below are cfrollback's alone
	svc := systemdService(t, a)
	a.waitHealthy(t, 90*time.Second)
	a.deploy(t, bad)
	svc.restart(t)
	a.waitHealthy(t, 90*time.Second)
	a.notify(t, "written-on-"+bad)
	// cfrollback's install command inherits its environment: npm works from the cache
	// setup-deps filled and writes nothing under the real HOME.
	env := append(slices.Clone(svc.env), "HOME="+a.Home, "npm_config_cache="+npmCache(), "npm_config_update_notifier=false")

	pids := appPIDs(t, a)
	if len(pids) == 0 {
		t.Fatalf("no process runs %s with --port %d", a.bin(), a.Port)
	}
	prefixJSON := readFile(t, filepath.Join(a.Install, "package.json"))

	// A version that does not exist: refused in preflight, nothing stopped or installed.
	start := time.Now()
	r := a.run(env, "rollback", "--to-version", "9.9.9-doesnotexist", "--yes", "--json")
	refusedIn := time.Since(start)
	var jerr struct {
		Error    string `json:"error"`
		ExitCode int    `json:"exit_code"`
	}
	_ = json.Unmarshal([]byte(r.Stderr), &jerr)
	if r.Code != 3 || jerr.ExitCode != 3 {
		t.Fatalf("rollback to an unpublished version: exit %d (JSON exit_code %d), want 3 (preflight: nothing changed)\nstdout:\n%s\nstderr:\n%s",
			r.Code, jerr.ExitCode, r.Stdout, r.Stderr)
	}
	if !strings.Contains(jerr.Error, "claude-flow@9.9.9-doesnotexist is not published") || !strings.Contains(jerr.Error, "not stopped") {
		t.Fatalf("the refusal does not say what is wrong and that nothing was stopped: %q", jerr.Error)
	}
	a.waitHealthy(t, 2*time.Second)
	if got := appPIDs(t, a); !slices.Equal(got, pids) {
		t.Fatalf("the refused run restarted the app: pids %v, before %v", got, pids)
	}
	if v := installedClaudeFlow(t, a); v != bad {
		t.Fatalf("the refused run changed the install: claude-flow %s, want %s", v, bad)
	}
	if got := readFile(t, filepath.Join(a.Install, "package.json")); got != prefixJSON {
		t.Fatalf("the refused run rewrote package.json:\n%s\nwas:\n%s", got, prefixJSON)
	}

	// --dry-run renders the default template with the real install dir, quoted for the shell
	// when it needs it (here through a path with a space that leads to the same install).
	spaced := filepath.Join(a.Dir, "opt", "claude flow")
	if err := os.Symlink(a.Install, spaced); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{a.Install, spaced} {
		d := a.run(env, "--install-dir", dir, "rollback", "--to-version", good, "--dry-run", "--json")
		cmds, _ := d.JSON["commands"].([]any)
		if d.Code != 0 || d.JSON["outcome"] != "planned" || len(cmds) != 1 {
			t.Fatalf("dry run: exit %d, outcome %v, commands %v\n%s%s", d.Code, d.JSON["outcome"], d.JSON["commands"], d.Stdout, d.Stderr)
		}
		line, _ := cmds[0].(string)
		words := shellWords(t, line)
		want := []string{"install", "--prefix", dir, "--save-exact", "--no-audit", "--no-fund", "claude-flow@" + good}
		if !strings.HasPrefix(line, "npm ") || !slices.Equal(words, want) {
			t.Fatalf("dry run would run %q, which sh reads as npm %q; want npm %q", line, words, want)
		}
		if dir == spaced && !strings.Contains(line, "--prefix '"+spaced+"' ") {
			t.Fatalf("dry run's command does not quote the install dir: %s", line)
		}
		t.Logf("dry run would run: %s", line)
	}
	if got := appPIDs(t, a); !slices.Equal(got, pids) || installedClaudeFlow(t, a) != bad {
		t.Fatalf("the dry run changed something: pids %v (before %v), claude-flow %s", got, pids, installedClaudeFlow(t, a))
	}

	// The rollback itself.
	start = time.Now()
	r = a.run(env, "rollback", "--to-version", good, "--yes", "--json")
	took := time.Since(start)
	if r.Code != 0 || r.JSON["outcome"] != "ok" {
		t.Fatalf("rollback --to-version %s: exit %d, outcome %v\nstdout:\n%s\nstderr:\n%s", good, r.Code, r.JSON["outcome"], r.Stdout, r.Stderr)
	}
	if r.JSON["from_version"] != bad || r.JSON["installed_version"] != good {
		t.Fatalf("from_version %v, installed_version %v; want %s -> %s", r.JSON["from_version"], r.JSON["installed_version"], bad, good)
	}
	var steps []string
	for _, s := range r.JSON["steps"].([]any) {
		m := s.(map[string]any)
		steps = append(steps, fmt.Sprint(m["name"], ":", m["status"]))
	}
	if got, want := strings.Join(steps, " "), "preflight:done stop:done install:done config:done start:done health:done"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	if v := a.version(t); v != "v"+good {
		t.Fatalf("after the rollback claude-flow --version says %s, want v%s", v, good)
	}
	if v := installedClaudeFlow(t, a); v != good {
		t.Fatalf("node_modules/claude-flow is %s, want %s", v, good)
	}
	a.waitHealthy(t, 5*time.Second)
	after := appPIDs(t, a)
	if len(after) == 0 || slices.ContainsFunc(after, func(p int) bool { return slices.Contains(pids, p) }) {
		t.Fatalf("the service was not restarted: pids %v, before %v", after, pids)
	}
	memdb := filepath.Join(a.Install, ".swarm", "memory.db")
	if n := sqliteCount(t, memdb, "SELECT count(*) FROM memory_entries WHERE value LIKE '%written-on-"+bad+"%'"); n == "0" {
		t.Fatalf("memory.db lost the row written on %s", bad)
	}

	// The run is in the history and the journal holds together.
	runID, _ := r.JSON["run_id"].(string)
	h := a.run(nil, "history", "--json")
	var runs []struct {
		RunID   string `json:"run_id"`
		Command string `json:"command"`
		Outcome string `json:"outcome"`
	}
	if h.Code != 0 || json.Unmarshal([]byte(h.Stdout), &runs) != nil {
		t.Fatalf("history: exit %d\n%s%s", h.Code, h.Stdout, h.Stderr)
	}
	var seen []string
	for _, run := range runs {
		seen = append(seen, run.RunID+" "+run.Command+" "+run.Outcome)
	}
	if !slices.Contains(seen, runID+" rollback-version ok") {
		t.Fatalf("history lacks run %s (rollback-version ok): %q", runID, seen)
	}
	if v := a.run(nil, "journal", "verify"); v.Code != 0 {
		t.Fatalf("journal verify: exit %d\n%s%s", v.Code, v.Stdout, v.Stderr)
	}
	downtime, _ := r.JSON["downtime_ms"].(float64)
	t.Logf("FIGURES real claude-flow %s -> %s by rollback --to-version under systemd: command %d ms, downtime_ms %.0f; unpublished version refused in %d ms",
		bad, good, took.Milliseconds(), downtime, refusedIn.Milliseconds())
}
