package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/guard"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// guardRig is a real systemd (sandbox) running the drill app as cfr-app.service and
// cfrollback guard as cfrollback-guard.service (the shipped unit), a webhook receiver on
// loopback, and the sandbox's install, backups, journal and state.
type guardRig struct {
	t       *testing.T
	sd      *testenv.SystemdSandbox
	s       *sandbox
	url     string
	env     []string // the guard's and the cli's settings
	hook    *hookRecorder
	logFile string
}

type hookRecorder struct {
	mu     sync.Mutex
	events []map[string]any
	at     map[string]time.Time // when each event name was first received
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var ev map[string]any
	if json.Unmarshal(b, &ev) == nil {
		h.mu.Lock()
		h.events = append(h.events, ev)
		if name := fmt.Sprint(ev["event"]); h.at[name].IsZero() {
			if h.at == nil {
				h.at = map[string]time.Time{}
			}
			h.at[name] = time.Now()
		}
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookRecorder) count(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.events {
		if ev["event"] == name {
			n++
		}
	}
	return n
}

func (h *hookRecorder) names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.events {
		out = append(out, fmt.Sprint(ev["event"]))
	}
	return out
}

// newGuardRig lays out a backup of backupVersion and deploys version, starts the app unit and
// waits until it answers 200; guardEnv are extra CFROLLBACK_GUARD_* (and other) settings.
func newGuardRig(t *testing.T, backup, deployed func(root string) error, guardEnv ...string) *guardRig {
	sd := testenv.Systemd(t)
	s := newSandbox(t)
	if err := backup(s.Install); err != nil {
		t.Fatal(err)
	}
	bk := filepath.Join(s.Backups, "backup-20250104-140000.tar.gz")
	if out, err := exec.Command("tar", "-C", s.Install, "-czf", bk, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	if err := os.RemoveAll(s.Install); err != nil {
		t.Fatal(err)
	}
	if err := deployed(s.Install); err != nil {
		t.Fatal(err)
	}
	port, err := drillapp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	hook := &hookRecorder{}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	cfgFile := filepath.Join(s.Dir, "guard.yaml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf("notify:\n  webhooks:\n    - {name: test, url: %q}\n  timeout: 2s\n  retries: 1\n", srv.URL+"/hook")), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &guardRig{t: t, sd: sd, s: s, url: fmt.Sprintf("http://127.0.0.1:%d/health", port), hook: hook, logFile: filepath.Join(s.Dir, "guard.log")}
	r.env = append([]string{"CFROLLBACK_CONFIG=" + cfgFile, "CFROLLBACK_SERVICE_MANAGER=systemd", "CFROLLBACK_SERVICE_UNIT=cfr-app",
		"CFROLLBACK_HEALTH_URL=" + r.url, "CFROLLBACK_LOGS_SOURCE=files", "CFROLLBACK_LOGS_FILES=" + filepath.Join(s.Dir, "applogs", "*.log")}, guardEnv...)
	app := fmt.Sprintf("[Unit]\nDescription=cfrollback guard test app\n\n[Service]\nType=simple\nExecStart=%s drill-app --install %s --addr 127.0.0.1:%d\nRestart=no\n",
		binary(t), s.Install, port)
	if err := sd.WriteUnit("cfr-app.service", app); err != nil {
		t.Fatal(err)
	}
	if out, err := sd.Exec("systemctl", "start", "cfr-app.service"); err != nil {
		t.Fatalf("start app: %v %s", err, out)
	}
	waitHTTP(t, r.url, 200, 10*time.Second)
	return r
}

// startGuard installs the shipped unit (ExecStart pointed at the test binary) with a drop-in
// that sets the settings and sends its output to a file, and starts it.
func (r *guardRig) startGuard(extra ...string) {
	t := r.t
	unit, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "configs", "systemd", "cfrollback-guard.service"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(unit), "ExecStart=/usr/local/bin/cfrollback guard", "ExecStart="+binary(t)+" guard", 1)
	if text == string(unit) {
		t.Fatal("the shipped unit's ExecStart is not /usr/local/bin/cfrollback guard")
	}
	var b strings.Builder
	b.WriteString("[Service]\nRestartSec=1s\nStandardOutput=append:" + r.logFile + "\nStandardError=append:" + r.logFile + "\n")
	for _, e := range append(append(append([]string{}, r.s.Env...), r.env...), extra...) {
		if strings.HasPrefix(e, "CFROLLBACK_CONFIG=") && !strings.HasSuffix(e, "guard.yaml") {
			continue // the sandbox's empty settings file: guard.yaml replaces it
		}
		fmt.Fprintf(&b, "Environment=%q\n", e)
	}
	dropIn := filepath.Join(r.sd.UnitDir, "cfrollback-guard.service.d")
	if err := os.MkdirAll(dropIn, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dropIn, "test.conf"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.sd.WriteUnit("cfrollback-guard.service", text); err != nil {
		t.Fatal(err)
	}
	if out, err := r.sd.Exec("systemctl", "start", "cfrollback-guard.service"); err != nil {
		t.Fatalf("start guard: %v %s", err, out)
	}
	t.Cleanup(func() {
		_, _ = r.sd.Exec("systemctl", "stop", "cfrollback-guard.service")
		if t.Failed() {
			log, _ := os.ReadFile(r.logFile)
			t.Logf("guard's log:\n%s", log)
		}
	})
}

// run is the cli with the rig's settings.
func (r *guardRig) run(args ...string) runResult {
	return r.s.run(r.env, args...)
}

// waitFor polls cond until it holds or within passes; every wait is bounded.
func (r *guardRig) waitFor(what string, within time.Duration, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: not within %s; webhook events %v", what, within, r.hook.names())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *guardRig) state() guard.State {
	st, err := guard.ReadState(filepath.Join(r.s.Dir, "state"))
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// guardRuns are the journal's emergency runs guard started, and its decision records.
func (r *guardRig) guardRuns() (runs []journal.Run, decisions []guard.Record) {
	recs, err := journal.ReadAll(filepath.Join(r.s.Dir, "log", "journal.jsonl"))
	if err != nil && len(recs) == 0 {
		return nil, nil
	}
	for _, run := range journal.Runs(recs) {
		if run.Command == "emergency" && strings.Contains(string(run.Records[0].Data), `"args":["guard"]`) {
			runs = append(runs, run)
		}
	}
	for _, rec := range recs {
		if rec.Event == guard.JournalEvent {
			var d guard.Record
			if json.Unmarshal(rec.Data, &d) == nil && d.Decision.Verdict != "" {
				decisions = append(decisions, d)
			}
		}
	}
	return runs, decisions
}

func healthyV1(root string) error { return drillapp.WriteInstall(root, "1.0.0", true) }

// TestGuardRollsBackDegradingApp: v2 answers 200 for 3 s, then every request fails; guard,
// a real systemd unit, rolls back to v1 after guard.consecutive evaluations, and v1 is
// healthy. A second guard refuses to start. Prints the time from the first bad sample to
// healthy again (docs/BENCHMARKS.md).
func TestGuardRollsBackDegradingApp(t *testing.T) {
	// CFROLLBACK_BENCH_GUARD_INTERVAL measures another interval (docs/BENCHMARKS.md).
	interval, consecutive := time.Second, 3
	if v := os.Getenv("CFROLLBACK_BENCH_GUARD_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		interval = d
	}
	r := newGuardRig(t, healthyV1, func(root string) error { return drillapp.WriteDegradingInstall(root, "2.0.0", 3*time.Second, 0) },
		"CFROLLBACK_GUARD_INTERVAL="+interval.String(), fmt.Sprintf("CFROLLBACK_GUARD_CONSECUTIVE=%d", consecutive), "CFROLLBACK_GUARD_REQUESTS=3",
		"CFROLLBACK_GUARD_GRACE=30s")
	// like with like: a standby of the backup, as 'backup create' leaves one, for guard's
	// rollback as for the standalone command's below (guard's own rollback refreshes it)
	if res := r.runInSandbox("standby", "refresh"); res.Code != 0 {
		t.Fatalf("standby refresh: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	r.startGuard()

	// two guards cannot both act: a second one refuses at once
	r.waitFor("guard's first evaluation", 20*time.Second, func() bool { return r.state().Last != nil })
	second := r.run("guard", "--evaluations", "1")
	if second.Code != 6 || !strings.Contains(second.Stderr, "another cfrollback guard is running") {
		t.Fatalf("second guard: exit %d\n%s", second.Code, second.Stderr)
	}
	// guard status sees the unit's guard by its lock, though its pid is of the sandbox's namespace
	r.assertGuardRunning(true)

	r.waitFor("guard's rollback", 60*time.Second+time.Duration(consecutive)*interval, func() bool {
		st := r.state()
		return len(st.Actions) > 0 && !st.Actions[0].Ended.IsZero()
	})
	st := r.state()
	if len(st.Actions) != 1 || st.Actions[0].Outcome != "ok" {
		t.Fatalf("guard's actions: %+v", st.Actions)
	}
	body := waitHTTP(t, r.url, 200, 5*time.Second)
	if !strings.Contains(body, `"version":"1.0.0"`) {
		t.Fatalf("after guard's rollback: %s", body)
	}
	if got := readFile(t, filepath.Join(r.s.Install, drillapp.VersionFile)); got != "1.0.0" {
		t.Fatalf("install holds %q", got)
	}
	// guard journals its decision after the rollback's outcome and guard-state.json's end
	r.waitFor("guard's journaled decision", 10*time.Second, func() bool { _, ds := r.guardRuns(); return len(ds) > 0 })
	runs, decisions := r.guardRuns()
	if len(runs) != 1 || runs[0].Outcome != "ok" || len(decisions) != 1 {
		t.Fatalf("journal: %d guard runs, %d decisions", len(runs), len(decisions))
	}
	d := decisions[0]
	if d.Decision.Verdict != guard.Acted || d.Decision.Streak != consecutive || d.RunID != runs[0].ID || d.Row == nil || d.Row.Severity != assess.P0 ||
		len(d.Samples) != consecutive || !strings.Contains(strings.Join(d.Assessment.Met, ","), "service_down") {
		t.Fatalf("the journaled decision: %+v", d)
	}
	r.waitFor("guard_acted webhook", 10*time.Second, func() bool { return r.hook.count("guard_acted") == 1 && r.hook.count("rollback_complete") == 1 })
	// the outcome's webhooks go out at the outcome, not after the standby refresh that follows
	// it: rollback_complete is sent before the refresh begins (guard_acted in the background)
	refresh, refreshed := runs[0].Ended, runs[0].Ended
	for _, rec := range runs[0].Records {
		if rec.Event == "standby" {
			if refresh.Equal(runs[0].Ended) {
				refresh = rec.Time
			}
			refreshed = rec.Time
		}
	}
	r.hook.mu.Lock()
	complete, acted := r.hook.at["rollback_complete"], r.hook.at["guard_acted"]
	r.hook.mu.Unlock()
	t.Logf("MEASURE webhooks after the outcome: rollback_complete %s, guard_acted %s; the standby refresh began %s after it and ended %s after it",
		complete.Sub(runs[0].Ended).Round(time.Millisecond), acted.Sub(runs[0].Ended).Round(time.Millisecond),
		refresh.Sub(runs[0].Ended).Round(time.Millisecond), refreshed.Sub(runs[0].Ended).Round(time.Millisecond))
	if refresh.Equal(runs[0].Ended) || !complete.Before(refresh) {
		t.Fatalf("rollback_complete received at %s, the standby refresh began at %s (its outcome %s): not sent at the outcome",
			complete.Format(time.RFC3339Nano), refresh.Format(time.RFC3339Nano), runs[0].Ended.Format(time.RFC3339Nano))
	}

	// measure: the first bad sample (guard's own store) to healthy again
	samples, _, err := guard.SampleStore(filepath.Join(r.s.Dir, "state"), time.Hour).Read()
	if err != nil {
		t.Fatal(err)
	}
	var firstBad time.Time
	for _, s := range samples {
		if s.Probe != nil && !s.Probe.OK {
			firstBad = s.Time
			break
		}
	}
	if firstBad.IsZero() || d.HealthyAt.IsZero() {
		t.Fatalf("first bad sample %s, healthy at %s", firstBad, d.HealthyAt)
	}
	rollback := runs[0].Ended.Sub(runs[0].Started)
	total := d.HealthyAt.Sub(firstBad)
	detect := runs[0].Started.Sub(firstBad)
	// the acting evaluation: its sample's time to the decision (Action.Started), then to the intent
	work, toIntent := st.Actions[0].Started.Sub(st.Actions[0].Evidence), runs[0].Started.Sub(st.Actions[0].Started)
	t.Logf("MEASURE guard: first bad sample -> healthy %s (interval %s, consecutive %d; first bad sample -> emergency intent %s = %d intervals + %s "+
		"[acting evaluation %s, decision -> intent %s]; emergency intent -> outcome %s, downtime %d ms)",
		total.Round(time.Millisecond), interval, consecutive, detect.Round(time.Millisecond), consecutive-1,
		(detect - time.Duration(consecutive-1)*interval).Round(time.Millisecond), work.Round(time.Millisecond), toIntent.Round(time.Millisecond),
		rollback.Round(time.Millisecond), d.DowntimeMS)
	t.Logf("MEASURE guard's emergency steps: %s", stepSplit(runs[0]))
	// goal: at most two evaluation intervals plus the rollback itself; allowed on top, the
	// acting evaluation's own work (its sample, requests and durable state write, at once:
	// tens of ms) with room for a loaded machine: 500ms
	if limit := 2*interval + rollback + 500*time.Millisecond; total > limit {
		t.Fatalf("first bad sample -> healthy took %s, over %s", total, limit)
	}
	r.stopGuard()
	r.assertGuardRunning(false)

	// like with like: what an on-call typing 'cfrollback emergency' at the first bad sample
	// gets, in the same rig, on the same degraded version and backup
	standalone, cmdStart := r.standaloneEmergency(func(root string) error { return drillapp.WriteDegradingInstall(root, "2.0.0", 3*time.Second, 0) })
	overTwo, guardStart := total-2*interval, detect-time.Duration(consecutive-1)*interval
	t.Logf("MEASURE guard vs command: guard first bad sample -> healthy minus 2 intervals %s; in-process emergency intent -> outcome %s; "+
		"standalone 'cfrollback emergency' exec -> healthy %s (goal met by intent->outcome: %v; by the standalone command: %v); "+
		"before the run starts: guard %s after 2 intervals, the command %s after its exec",
		overTwo.Round(time.Millisecond), rollback.Round(time.Millisecond), standalone.Round(time.Millisecond), overTwo <= rollback, overTwo <= standalone,
		guardStart.Round(time.Millisecond), cmdStart.Round(time.Millisecond))
	// loose: the figures are for docs/BENCHMARKS.md, this only catches a guard gone slow
	if overTwo > standalone+2*time.Second {
		t.Fatalf("guard took %s beyond two intervals, the standalone command %s", overTwo, standalone)
	}
}

// standaloneEmergency deploys version again (the guard stopped), waits until its health
// requests fail, runs 'cfrollback emergency --backup <the rig's backup>' and returns the
// time from the command's exec to healthy as guard counts it: the run's start plus its
// duration (its outcome, after health.consecutive passes); and from its exec to the run's start.
func (r *guardRig) standaloneEmergency(version func(root string) error) (healthy, toStart time.Duration) {
	t := r.t
	t.Helper()
	if out, err := r.sd.Exec("systemctl", "stop", "cfr-app.service"); err != nil {
		t.Fatalf("stop app: %v %s", err, out)
	}
	if err := os.RemoveAll(r.s.Install); err != nil {
		t.Fatal(err)
	}
	if err := version(r.s.Install); err != nil {
		t.Fatal(err)
	}
	if out, err := r.sd.Exec("systemctl", "start", "cfr-app.service"); err != nil {
		t.Fatalf("start app: %v %s", err, out)
	}
	waitHTTP(t, r.url, 503, 20*time.Second) // degraded: the on-call's first bad sample
	begin := time.Now()
	res := r.runInSandbox("emergency", "--json", "--backup", filepath.Join(r.s.Backups, "backup-20250104-140000.tar.gz"))
	exited := time.Since(begin)
	started, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(res.JSON["started"]))
	ms, _ := res.JSON["duration_ms"].(float64)
	if res.Code != 0 || res.JSON["outcome"] != "ok" || started.IsZero() || ms <= 0 {
		t.Fatalf("standalone emergency: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if body := waitHTTP(t, r.url, 200, 5*time.Second); !strings.Contains(body, `"version":"1.0.0"`) {
		t.Fatalf("after the standalone emergency: %s", body)
	}
	healthy, toStart = started.Add(time.Duration(ms)*time.Millisecond).Sub(begin), started.Sub(begin)
	if recs, err := journal.ReadAll(filepath.Join(r.s.Dir, "log", "journal.jsonl")); err == nil {
		for _, run := range journal.Runs(recs) {
			if run.ID == fmt.Sprint(res.JSON["run_id"]) {
				t.Logf("MEASURE standalone emergency steps: %s", stepSplit(run))
			}
		}
	}
	t.Logf("MEASURE standalone emergency: exec -> healthy %s (exec -> run start %s, run %d ms, exec -> exit %s)",
		healthy.Round(time.Millisecond), toStart.Round(time.Millisecond), int64(ms), exited.Round(time.Millisecond))
	return healthy, toStart
}

// stepSplit is a run's time between its journal records, from its intent to its outcome
// and on (the standby refresh after it): "preflight 120ms" is a step's own time,
// "+3ms" the time between one record and the next outside any step.
func stepSplit(run journal.Run) string {
	var b strings.Builder
	var prev time.Time
	for _, rec := range run.Records {
		if !prev.IsZero() {
			d := rec.Time.Sub(prev).Round(time.Millisecond)
			if rec.Event == journal.EventStepDone || rec.Event == journal.EventStepFailed {
				how := ""
				if rec.Step == "preflight" {
					how = map[bool]string{true: " (the standby)", false: " (extracted)"}[strings.Contains(string(rec.Data), "took the standby")]
				}
				fmt.Fprintf(&b, " %s %s%s;", rec.Step, d, how)
			} else if d >= time.Millisecond {
				fmt.Fprintf(&b, " +%s", d)
			}
		}
		if rec.Event != journal.EventStepStart && rec.Event != journal.EventStepDone && rec.Event != journal.EventStepFailed {
			fmt.Fprintf(&b, " [%s]", rec.Event)
		}
		prev = rec.Time
	}
	return strings.TrimSpace(b.String())
}

// runInSandbox is the cli run inside the systemd sandbox's namespaces, where guard and the
// app run, as an on-call's command runs beside guard on a host: the standby guard's
// rollback refreshed is read-only bind-mounted in that mount namespace, not in the test's.
func (r *guardRig) runInSandbox(args ...string) runResult {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(r.sd.PID), "-m", "-p", "-u", binary(t)}, args...)...)
	for _, e := range append(append(os.Environ(), r.s.Env...), r.env...) {
		// the bus address names /proc/<pid> of the test's PID namespace; inside, the
		// sandbox's own /run/dbus/system_bus_socket is the default
		if !strings.HasPrefix(e, "DBUS_SYSTEM_BUS_ADDRESS=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	res := runResult{Code: -1}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.Code = 0
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	default:
		t.Fatalf("nsenter %v: %v", args, err)
	}
	res.Stdout, res.Stderr = out.String(), errb.String()
	_ = json.Unmarshal(out.Bytes(), &res.JSON)
	return res
}

// assertGuardRunning runs 'guard status --json' and checks what it says of the guard unit.
func (r *guardRig) assertGuardRunning(want bool) {
	r.t.Helper()
	res := r.run("guard", "status", "--json")
	var st guard.Status
	if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &st) != nil {
		r.t.Fatalf("guard status: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if st.Running != want || st.Note != "" || (want && (st.Holder == nil || st.Holder.Command != "cfrollback guard")) {
		r.t.Fatalf("guard status: running %v (want %v), holder %+v, note %q", st.Running, want, st.Holder, st.Note)
	}
}

func (r *guardRig) stopGuard() {
	r.t.Helper()
	if out, err := r.sd.Exec("systemctl", "stop", "cfrollback-guard.service"); err != nil {
		r.t.Fatalf("stop guard: %v %s", err, out)
	}
}

// TestGuardFlappingServiceRespectsLimit: every version degrades 2 s after it starts, the
// backup too. Guard rolls back guard.max_rollbacks (2) times, then only notifies
// guard_limit_reached, and rolls back no more.
func TestGuardFlappingServiceRespectsLimit(t *testing.T) {
	degrading := func(v string) func(string) error {
		return func(root string) error { return drillapp.WriteDegradingInstall(root, v, 2*time.Second, 0) }
	}
	r := newGuardRig(t, degrading("1.0.0"), degrading("2.0.0"),
		"CFROLLBACK_GUARD_INTERVAL=500ms", "CFROLLBACK_GUARD_CONSECUTIVE=2", "CFROLLBACK_GUARD_REQUESTS=3",
		"CFROLLBACK_GUARD_GRACE=1s", "CFROLLBACK_GUARD_COOLDOWN=1s", "CFROLLBACK_GUARD_MAX_ROLLBACKS=2", "CFROLLBACK_GUARD_WINDOW=1h")
	r.startGuard()
	r.waitFor("guard_limit_reached", 120*time.Second, func() bool { return r.hook.count("guard_limit_reached") > 0 })
	// keep watching for a few more evaluations: no third rollback
	seen := r.state().Updated
	r.waitFor("six more evaluations", 20*time.Second, func() bool { return r.state().Updated.After(seen.Add(3 * time.Second)) })
	runs, decisions := r.guardRuns()
	if len(runs) != 2 {
		t.Fatalf("%d rollbacks by guard, want exactly guard.max_rollbacks (2)", len(runs))
	}
	acted, limited := 0, 0
	for _, d := range decisions {
		switch d.Decision.Verdict {
		case guard.Acted:
			acted++
		case guard.LimitReached:
			limited++
			if !strings.Contains(d.Decision.Reason, "2 rollbacks in the last 1h0m0s") {
				t.Fatalf("limit reason: %s", d.Decision.Reason)
			}
		}
	}
	if acted != 2 || limited == 0 || r.hook.count("guard_acted") != 2 {
		t.Fatalf("decisions: %d acted, %d limit_reached; webhooks %v", acted, limited, r.hook.names())
	}
	st := r.run("guard", "status", "--json")
	if st.Code != 0 || st.JSON["rollbacks_in_window"] != float64(2) {
		t.Fatalf("guard status: %d %s %s", st.Code, st.Stdout, st.Stderr)
	}
}

// TestGuardKilledDuringRollbackDoesNotActTwice: guard is SIGKILLed inside its own rollback
// (right after the stop, CFROLLBACK_TEST_KILL_AT); systemd restarts it; the service is down,
// but the restarted guard does not act on that evidence (nor within guard.grace of its
// restart): no second emergency starts. The next emergency completes the interrupted one.
func TestGuardKilledDuringRollbackDoesNotActTwice(t *testing.T) {
	r := newGuardRig(t, healthyV1, func(root string) error { return drillapp.WriteDegradingInstall(root, "2.0.0", time.Second, 0) },
		"CFROLLBACK_GUARD_INTERVAL=500ms", "CFROLLBACK_GUARD_CONSECUTIVE=2", "CFROLLBACK_GUARD_REQUESTS=3", "CFROLLBACK_GUARD_GRACE=1h")
	r.startGuard("CFROLLBACK_TEST_KILL_AT=stop:done")
	r.waitFor("guard's first rollback", 60*time.Second, func() bool { runs, _ := r.guardRuns(); return len(runs) == 1 })
	// the restarted guard ends the unfinished action as interrupted
	r.waitFor("the restarted guard", 30*time.Second, func() bool {
		st := r.state()
		return len(st.Actions) == 1 && st.Actions[0].Outcome == "interrupted" && st.Last != nil
	})
	seen := r.state().Updated
	r.waitFor("ten more evaluations", 30*time.Second, func() bool { return r.state().Updated.After(seen.Add(5 * time.Second)) })
	runs, _ := r.guardRuns()
	if len(runs) != 1 || !runs[0].Unfinished() {
		t.Fatalf("%d emergency runs by guard (want the one it was killed in, unfinished)", len(runs))
	}
	if st := r.state(); st.Last.Verdict != guard.Grace || st.Last.Severity != assess.P0 {
		t.Fatalf("the restarted guard's last decision: %+v", st.Last)
	}
	if out, err := r.sd.Exec("systemctl", "is-active", "cfr-app.service"); err == nil {
		t.Fatalf("the app is %s: the kill after the stop did not happen", out)
	}
	// a person (or the next run) completes the interrupted rollback
	if out, err := r.sd.Exec("systemctl", "stop", "cfrollback-guard.service"); err != nil {
		t.Fatal(err, string(out))
	}
	em := r.run("emergency", "--json")
	if em.Code != 0 {
		t.Fatalf("emergency after the kill: %d\n%s\n%s", em.Code, em.Stdout, em.Stderr)
	}
	body := waitHTTP(t, r.url, 200, 10*time.Second)
	if !strings.Contains(body, `"version":"1.0.0"`) {
		t.Fatalf("after the recovery: %s", body)
	}
}
