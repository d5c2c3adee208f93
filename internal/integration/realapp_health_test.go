package integration

// The real Claude Flow, healthy and then broken, judged by every health level, verify,
// baseline, monitor and assess: no false FAIL on the healthy app, no false PASS on the
// broken one.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// healthResult is `health-check --json`.
type healthResult struct {
	Healthy bool        `json:"healthy"`
	Level   string      `json:"level"`
	Checks  []healthRow `json:"checks"`
}

type healthRow struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// healthLevels are the three levels with rows each must show (each includes the one before).
var healthLevels = []struct {
	flag, level string
	rows        []string
}{
	{"--critical-only", "critical-only", []string{"service active", "GET "}},
	{"--quick", "quick", []string{"disk install+backups", "app config", "newest backup"}},
	{"--comprehensive", "comprehensive", []string{"restarts", "process", "database memory", "database hive"}},
}

// monitorSample is one line of `monitor --json`.
type monitorSample struct {
	Time   time.Time `json:"time"`
	Active *bool     `json:"active"`
	Probe  *struct {
		OK      bool   `json:"ok"`
		Network bool   `json:"network"`
		Detail  string `json:"detail"`
	} `json:"probe"`
}

func TestRealClaudeFlowHealthLevels(t *testing.T) {
	a := newRealApp(t, testenv.ClaudeFlowGood)
	svc := pm2Service(t, a)
	startToHealthy := a.waitHealthy(t, 90*time.Second)

	// Without any backup --quick FAILs its "newest backup" row, rightly: there is nothing
	// to roll back to. An operator's install has one, so this one gets one first.
	if bk := a.run(svc.env, "backup", "create", "--label", "healthy", "--json"); bk.Code != 0 {
		t.Fatalf("backup create: exit %d\n%s%s", bk.Code, bk.Stdout, bk.Stderr)
	}

	var wantRows []string
	for _, l := range healthLevels {
		wantRows = append(wantRows, l.rows...)
		hc, res := healthCheck(t, a, svc, l.flag)
		if hc.Code != 0 || !res.Healthy || res.Level != l.level {
			t.Errorf("health-check %s of the healthy real app: exit %d, healthy %v, level %q\n%s%s", l.flag, hc.Code, res.Healthy, res.Level, hc.Stdout, hc.Stderr)
		}
		for _, row := range wantRows {
			if !slices.ContainsFunc(res.Checks, func(c healthRow) bool { return strings.HasPrefix(c.Check, row) }) {
				t.Errorf("health-check %s has no %q row", l.flag, row)
			}
		}
		for _, c := range res.Checks {
			// Free disk space is the host's, not the app's: a WARN there (under 10%
			// free) is true and says nothing about Claude Flow.
			if c.Status != "PASS" && !(c.Check == "disk install+backups" && c.Status == "WARN") {
				t.Errorf("health-check %s of the healthy real app: %s %s: %s", l.flag, c.Status, c.Check, c.Detail)
			}
		}
	}

	// verify, as after a rollback (--no-record: there is no rollback run to record it on).
	type verifyResult struct {
		OK    bool `json:"ok"`
		Steps []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			Detail string `json:"detail"`
		} `json:"steps"`
	}
	vr := a.run(svc.env, "verify", "--no-record", "--json")
	v := decodeStdout[verifyResult](t, vr)
	if vr.Code != 0 || !v.OK || len(v.Steps) != 7 {
		t.Errorf("verify of the healthy real app: exit %d, ok %v, %d steps\n%s%s", vr.Code, v.OK, len(v.Steps), vr.Stdout, vr.Stderr)
	}
	for _, s := range v.Steps {
		// The real claude-flow.config.json holds no claude.baseUrl (the app takes its API
		// endpoint from its environment), so the API step has nothing to test unless
		// --api-url is given; this test does not reach the Internet.
		if s.Name == "API connectivity" {
			if s.Status != "SKIP" {
				t.Errorf("verify step %s: %s, want SKIP (no URL known): %s", s.Name, s.Status, s.Detail)
			}
			continue
		}
		if s.Status != "PASS" {
			t.Errorf("verify step %s on the healthy real app: %s: %s", s.Name, s.Status, s.Detail)
		}
	}

	if b := a.run(svc.env, "baseline", "record", "--samples", "20", "--interval", "50ms", "--json"); b.Code != 0 {
		t.Fatalf("baseline record of the healthy real app: exit %d\n%s%s", b.Code, b.Stdout, b.Stderr)
	}
	samples := monitor(t, a, svc, 10, time.Second)
	for i, s := range samples {
		if s.Active == nil || !*s.Active || s.Probe == nil || !s.Probe.OK {
			t.Errorf("monitor sample %d of the healthy real app: active %v, probe %+v", i, s.Active, s.Probe)
		}
	}
	as := a.run(svc.env, assessArgs(samples)...)
	if as.Code != 0 || as.JSON["severity"] != "none" {
		t.Errorf("assess of the healthy real app: exit %d, severity %v, want 0 / none\n%s%s", as.Code, as.JSON["severity"], as.Stdout, as.Stderr)
	}

	// The broken deploy: express is gone, the manager restarts the app; it stays up
	// (pm2 says online) but its web server never listens.
	a.breakMissingModule(t)
	svc.restart(t)
	time.Sleep(startToHealthy + 3*time.Second) // the time a healthy start took, and more
	a.assertUnhealthy(t)
	for _, l := range healthLevels {
		hc, res := healthCheck(t, a, svc, l.flag)
		if hc.Code != 1 || res.Healthy {
			t.Errorf("health-check %s of the broken real app: exit %d, healthy %v, want 1 (a false PASS)\n%s%s", l.flag, hc.Code, res.Healthy, hc.Stdout, hc.Stderr)
		}
		for _, c := range res.Checks {
			switch {
			case c.Check == "service active" && c.Status != "PASS":
				t.Errorf("health-check %s: the manager does not report the broken app active (%s %s): not the case under test", l.flag, c.Status, c.Detail)
			case strings.HasPrefix(c.Check, "GET ") && c.Status != "FAIL":
				t.Errorf("health-check %s: %s %s on the broken app: %s", l.flag, c.Status, c.Check, c.Detail)
			}
		}
	}
	samples = monitor(t, a, svc, 5, 500*time.Millisecond)
	for i, s := range samples {
		if s.Active == nil || !*s.Active || s.Probe == nil || s.Probe.OK || !s.Probe.Network {
			t.Errorf("monitor sample %d of the broken real app: active %v, probe %+v (want active, no HTTP answer)", i, s.Active, s.Probe)
		}
	}
	for _, args := range [][]string{{"assess", "--json"}, assessArgs(samples)} {
		r := a.run(svc.env, args...)
		if sev := r.JSON["severity"]; (r.Code != 10 || sev != "P0") && (r.Code != 11 || sev != "P1") {
			t.Errorf("%s on the broken real app: exit %d, severity %v, want P0 or P1 (10, 11)\n%s%s", strings.Join(args, " "), r.Code, sev, r.Stdout, r.Stderr)
		}
	}
}

// healthCheck runs one level of health-check --json.
func healthCheck(t *testing.T, a *realApp, svc appService, level string) (runResult, healthResult) {
	t.Helper()
	r := a.run(svc.env, "health-check", level, "--json")
	return r, decodeStdout[healthResult](t, r)
}

// monitor takes n samples every interval and returns them.
func monitor(t *testing.T, a *realApp, svc appService, n int, interval time.Duration) []monitorSample {
	t.Helper()
	r := a.run(svc.env, "monitor", "--samples", fmt.Sprint(n), "--interval", interval.String(), "--json")
	var out []monitorSample
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		var s monitorSample
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("monitor --json line %q: %v", line, err)
		}
		out = append(out, s)
	}
	if r.Code != 0 || len(out) != n {
		t.Fatalf("monitor --samples %d: exit %d, %d samples\n%s%s", n, r.Code, len(out), r.Stdout, r.Stderr)
	}
	return out
}

// assessArgs is assess with its trend windows scaled from the seed's 15-60 minutes down to
// the seconds the samples span, so every condition is judged (none inconclusive):
//   - the windows cover every sample (span / 0.9: the samples span 90% of them, the
//     required coverage is 80%); at least n-2 samples in each;
//   - memory growth: 20 MiB over the samples' span, as a rate per hour. A few seconds of
//     RSS extrapolated to an hour at the seed's 50 MB/hour would flag a node process
//     warming up;
//   - response time: 20x the baseline p95, not 5x: the healthy p95 is a few
//     milliseconds, and on a 2-core machine shared with other tests a scheduling delay
//     is more than 5x that; 20x still catches a real slowdown.
func assessArgs(samples []monitorSample) []string {
	span := time.Since(samples[0].Time)
	window := (span * 10 / 9).Round(time.Millisecond).String()
	return []string{"assess", "--json",
		"--error-window", window, "--network-window", window, "--memory-window", window,
		"--memory-min-span", (span / 2).Round(time.Millisecond).String(),
		"--memory-growth", fmt.Sprintf("%.0f", 20*time.Hour.Seconds()/span.Seconds()),
		"--min-samples", fmt.Sprint(len(samples) - 2),
		"--response-factor", "20",
	}
}
