package integration

// The real Claude Flow as the service: the published npm package (tools/claude-flow/<version>,
// installed by scripts/setup-deps.sh) laid out like a host install, `claude-flow init --force`
// run in it, served with `claude-flow start --ui --port P`.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// realApp is one test's host install of the real claude-flow.
type realApp struct {
	*sandbox
	Port int
	URL  string // the profile's health URL on this test's port
	Home string // HOME of the app's processes (init and the CLI write nothing outside it)
}

// newRealApp copies claude-flow@version (its npm prefix: package.json and node_modules) into
// the sandbox's install dir, runs `claude-flow init --force` there and returns it, not
// running. cfrollback's settings are the default profile with only paths and the port
// adapted: unlike newSandbox's, no faster health polling.
func newRealApp(t *testing.T, version string) *realApp {
	t.Helper()
	src := testenv.ClaudeFlow(t, version)
	s := newSandbox(t)
	env := s.Env[:0:0]
	for _, e := range s.Env {
		if !strings.HasPrefix(e, "CFROLLBACK_HEALTH_") {
			env = append(env, e)
		}
	}
	s.Env = env
	port, err := drillapp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	a := &realApp{sandbox: s, Port: port, Home: filepath.Join(s.Dir, "home")}
	a.URL = fmt.Sprintf("http://127.0.0.1:%d/api/health", port)
	s.Env = append(s.Env, "CFROLLBACK_HEALTH_URL="+a.URL)
	if err := os.MkdirAll(a.Home, 0o755); err != nil {
		t.Fatal(err)
	}
	// cp -a: node_modules keeps its links and modes; the copy is the test's own, the cache
	// in tools/ is never run or written.
	if out, err := exec.Command("cp", "-a", src+"/.", s.Install).CombinedOutput(); err != nil {
		t.Fatalf("copy claude-flow %s: %v\n%s", version, err, out)
	}
	_ = os.Remove(filepath.Join(s.Install, ".cfrollback-ok"))
	a.cf(t, "init", "--force")
	for _, p := range []string{".swarm/memory.db", ".hive-mind/hive.db", "claude-flow.config.json", ".claude/agents"} {
		if _, err := os.Stat(filepath.Join(s.Install, p)); err != nil {
			t.Fatalf("claude-flow init did not write %s: %v", p, err)
		}
	}
	return a
}

// bin is the install's claude-flow, as a unit's ExecStart names it.
func (a *realApp) bin() string {
	return filepath.Join(a.Install, "node_modules", ".bin", "claude-flow")
}

// cf runs the install's claude-flow CLI in the install dir (as an operator would) and returns
// its output; a failure fails the test.
func (a *realApp) cf(t *testing.T, args ...string) string {
	t.Helper()
	out, err := a.cfTry(args...)
	if err != nil {
		t.Fatalf("claude-flow %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (a *realApp) cfTry(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.bin(), args...)
	cmd.Dir = a.Install
	cmd.Env = append(os.Environ(), "HOME="+a.Home, "NO_COLOR=1", "CI=true")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// version is what the installed claude-flow says of itself.
func (a *realApp) version(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(strings.SplitN(a.cf(t, "--version"), "\n", 2)[0])
}

// startArgs are the service's command line after the program: the web console on the port.
func (a *realApp) startArgs() []string {
	return []string{"start", "--ui", "--port", fmt.Sprint(a.Port)}
}

// deploy upgrades the install in place to version with npm, as a deploy would; npm takes the
// packages from its cache (setup-deps fetched them), and better-sqlite3 is not rebuilt when
// both versions use the same one.
func (a *realApp) deploy(t *testing.T, version string) {
	t.Helper()
	testenv.ClaudeFlow(t, version) // its packages are in npm's cache
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--prefix", a.Install, "--prefer-offline", "--save-exact",
		"--no-audit", "--no-fund", "--loglevel=error", "claude-flow@"+version)
	cmd.Env = append(os.Environ(), "HOME="+a.Home, "npm_config_cache="+npmCache())
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install claude-flow@%s: %v\n%s", version, err, out)
	}
	t.Logf("deployed claude-flow %s with npm in %s", version, time.Since(start).Round(time.Millisecond))
	if got := a.version(t); got != "v"+version {
		t.Fatalf("after npm install claude-flow@%s the app says %q", version, got)
	}
}

// npmCache is the npm cache setup-deps filled (the user's default), so a test's install
// needs no network.
func npmCache() string {
	if c := os.Getenv("npm_config_cache"); c != "" {
		return c
	}
	out, err := exec.Command("npm", "config", "get", "cache").Output()
	if err != nil {
		return filepath.Join(os.Getenv("HOME"), ".npm")
	}
	return strings.TrimSpace(string(out))
}

// breakMissingModule is a deploy that lost a dependency: the web server's express. The real
// app then logs "Failed to start web server: Cannot find package 'express'", falls back to
// its terminal UI and keeps running: the service manager reports it active, only the health
// URL tells.
func (a *realApp) breakMissingModule(t *testing.T) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(a.Install, "node_modules", "express")); err != nil {
		t.Fatal(err)
	}
	a.markBroken(t, "node_modules/express removed")
}

// breakCrashOnStart is a deploy that wrote a file half (a full disk, a killed copy): the
// CLI's entry module ends mid-statement, so `claude-flow start` dies at once with
// "SyntaxError: Unexpected end of input", exit 1.
func (a *realApp) breakCrashOnStart(t *testing.T) {
	t.Helper()
	p := filepath.Join(a.Install, "node_modules", "claude-flow", "src", "cli", "simple-cli.js")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	a.markBroken(t, "simple-cli.js truncated")
}

// markBroken leaves a note in the install, so the failed dir can be recognised later.
func (a *realApp) markBroken(t *testing.T, how string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(a.Install, ".cfrollback-test-broken"), []byte(how), 0o644); err != nil {
		t.Fatal(err)
	}
}

// notify writes a row into .swarm/memory.db through the app's own hooks.
func (a *realApp) notify(t *testing.T, message string) {
	t.Helper()
	if out := a.cf(t, "hooks", "notify", "--message", message, "--level", "info"); !strings.Contains(out, "memory.db") {
		t.Fatalf("claude-flow hooks notify did not save to memory.db:\n%s", out)
	}
}

// sqliteCount runs a count query with the sqlite3 CLI (a second reader, not cfrollback's).
func sqliteCount(t *testing.T, db, query string) string {
	t.Helper()
	out, err := exec.Command(testenv.RequireTool(t, "sqlite3"), "-readonly", db, query).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %s %q: %v\n%s", db, query, err, out)
	}
	return strings.TrimSpace(string(out))
}

// waitHealthy polls the health URL until it answers 200, returning how long that took.
func (a *realApp) waitHealthy(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	client := &http.Client{Timeout: time.Second}
	var last string
	for time.Since(start) < within {
		ok, what := healthProbe(client, a.URL)
		if ok {
			return time.Since(start)
		}
		last = what
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not healthy within %s; last: %s", a.URL, within, last)
	return 0
}

// assertDown: the health URL does not answer 200 (the broken deploy).
func (a *realApp) assertUnhealthy(t *testing.T) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(a.URL)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("%s answers 200 on the broken deploy", a.URL)
		}
	}
}

// healthProbe asks url once: it passes on HTTP 200 with "status":"ok" in the body (the
// app's health answer); otherwise it says what came back.
func healthProbe(client *http.Client, url string) (bool, string) {
	resp, err := client.Get(url)
	if err != nil {
		return false, err.Error()
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 && strings.Contains(b.String(), `"status":"ok"`) {
		return true, ""
	}
	return false, fmt.Sprintf("HTTP %d %s", resp.StatusCode, b.String())
}

// prober polls the health URL every 10 ms from T0 (its start), independently of the command
// being timed, and notes, from T0, the first failing probe and the first passing probe
// after it: the app down, then healthy again. A probe's time is when its answer came.
type prober struct {
	t0     time.Time
	stop   context.CancelFunc
	done   chan struct{} // closed when the polling goroutine has ended
	up     chan struct{} // closed at the first passing probe after a failing one
	probes int
	// sawFail, firstFail, upAt: from T0; set before up or done is closed.
	sawFail         bool
	firstFail, upAt time.Duration
	last            string
}

// probeFigures are a prober's figures: command -> healthy (T0 -> the first passing probe
// after a failing one) and downtime (the first failing probe -> that passing one).
type probeFigures struct {
	CommandToHealthy, Downtime time.Duration
	Probes                     int
}

func (f probeFigures) String() string {
	return fmt.Sprintf("%d ms (downtime %d ms)", f.CommandToHealthy.Milliseconds(), f.Downtime.Milliseconds())
}

// startProber starts polling a.URL now, for at most within; the test's end stops it.
func (a *realApp) startProber(t *testing.T, within time.Duration) *prober {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	p := &prober{t0: time.Now(), stop: cancel, done: make(chan struct{}), up: make(chan struct{})}
	t.Cleanup(func() { cancel(); <-p.done })
	go func() {
		defer close(p.done)
		// Loopback, and a start that takes seconds: a probe that hangs 2 s is a failing one.
		client := &http.Client{Timeout: 2 * time.Second}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			ok, what := healthProbe(client, a.URL)
			at := time.Since(p.t0)
			p.probes++
			switch {
			case !ok && !p.sawFail:
				p.sawFail, p.firstFail, p.last = true, at, what
			case !ok:
				p.last = what
			case p.sawFail:
				p.upAt = at
				close(p.up)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// untilUp waits (at most the prober's bound) for the app to have been seen down and then
// healthy, stops the prober and returns its figures; never seen so fails the test.
func (p *prober) untilUp(t *testing.T, what string) probeFigures {
	t.Helper()
	select {
	case <-p.up:
	case <-p.done:
	}
	p.stop()
	<-p.done
	select {
	case <-p.up:
		return probeFigures{CommandToHealthy: p.upAt, Downtime: p.upAt - p.firstFail, Probes: p.probes}
	default:
		if !p.sawFail {
			t.Fatalf("%s: the prober never saw the app down in %s (%d probes, all passing)", what, time.Since(p.t0).Round(time.Millisecond), p.probes)
		}
		t.Fatalf("%s: not healthy again within %s of the command (%d probes); last: %s", what, time.Since(p.t0).Round(time.Millisecond), p.probes, p.last)
		return probeFigures{}
	}
}
