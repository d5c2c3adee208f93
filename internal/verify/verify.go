// Package verify is the post-rollback checklist (the seed's seven checks): the service, the
// comprehensive health check, agents, databases, API connectivity, response time and the
// error count. It judges; the command records the Result in the journal (event "verify",
// the payload 'cfrollback report' reads back) and prints it.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/logs"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// Step is one line of the checklist.
type Step struct {
	Step       int            `json:"step"`
	Name       string         `json:"name"`
	Status     health.Verdict `json:"status"`
	Detail     string         `json:"detail"`
	DurationMS float64        `json:"duration_ms"`
	Checks     []health.Check `json:"checks,omitempty"`
}

// Result is the whole checklist, as printed with --json and journaled.
type Result struct {
	OK      bool   `json:"ok"`
	Service string `json:"service"`
	RunID   string `json:"run_id,omitempty"` // the run this verification was recorded against
	Steps   []Step `json:"steps"`
	// Recorded says whether the journal holds this result; NotRecorded why not.
	Recorded    bool   `json:"recorded"`
	NotRecorded string `json:"not_recorded,omitempty"`
	Failures    int    `json:"failures"`
	Warnings    int    `json:"warnings"`
	DurationMS  int64  `json:"duration_ms"`
}

// Options are what the checklist reads. The functions are the command's: where the logs are,
// how a connection is tested, how a pid is seen.
type Options struct {
	Config     settings.Config
	Service    service.Manager
	Databases  health.DatabaseChecker
	PIDVisible func(pid int) (bool, string)
	// Samples requests Interval apart time the response; p95 within Target passes.
	Samples  int
	Interval time.Duration
	Target   time.Duration
	// APIURL is the endpoint of the connectivity step; APIURLErr, when set, is why none is
	// known (the step is skipped). Connect runs the DNS/TCP/TLS/HTTP stages.
	APIURL    string
	APIURLErr error
	Connect   func(ctx context.Context, opt appconfig.ConnOptions) (appconfig.ConnResult, error)
	// ErrorLines returns the log lines since since that match ErrorGrep, and where they were
	// read. Lines after RunEnded (the verified run's end; zero: none) beyond MaxErrors fail.
	ErrorLines func(ctx context.Context, since time.Time) ([]logs.Line, string, error)
	ErrorGrep  string
	MaxErrors  int
	RunID      string
	RunEnded   time.Time
	Now        func() time.Time
}

// Run runs the seven steps, one after another, and counts failures and warnings. It never
// fails as a whole: a step that cannot judge says so (SKIP or FAIL with the reason).
func Run(ctx context.Context, o Options) Result {
	cfg, m := o.Config, o.Service
	t0 := time.Now()
	res := Result{Service: m.Name()}
	add := func(name string, f func() Step) {
		start := time.Now()
		s := f()
		s.Step, s.Name, s.DurationMS = len(res.Steps)+1, name, float64(time.Since(start).Microseconds())/1000
		res.Steps = append(res.Steps, s)
	}
	add("service", func() Step { return serviceStep(ctx, m) })
	rep := health.RunLevel(ctx, health.LevelOptions{Level: health.Comprehensive,
		Critical: runbook.CriticalProbes(m, cfg.Health, nil), InstallDir: cfg.InstallDir, BackupDir: cfg.Backup.Dir,
		BackupPattern: cfg.Backup.Pattern, Status: m.Status, PIDVisible: o.PIDVisible, Databases: o.Databases})
	var general, dbs []health.Check
	for _, c := range rep.Checks {
		if strings.HasPrefix(c.Name, "database") {
			dbs = append(dbs, c)
		} else {
			general = append(general, c)
		}
	}
	add("health", func() Step { return Summarise(general, "health-check --comprehensive") })
	add("agents", func() Step { return CheckAgents(cfg.AgentsPath()) })
	add("databases", func() Step { return Summarise(dbs, "database") })
	add("API connectivity", func() Step { return o.apiStep(ctx) })
	add("response time", func() Step { return o.latencyStep(ctx) })
	add("error count", func() Step { return o.errorStep(ctx) })
	for _, s := range res.Steps {
		switch s.Status {
		case health.Fail:
			res.Failures++
		case health.Warn:
			res.Warnings++
		}
	}
	res.OK = res.Failures == 0
	res.DurationMS = time.Since(t0).Milliseconds()
	return res
}

func serviceStep(ctx context.Context, m service.Manager) Step {
	st, err := m.Status(ctx)
	switch {
	case err != nil:
		return Step{Status: health.Fail, Detail: err.Error()}
	case !st.Active:
		return Step{Status: health.Fail, Detail: fmt.Sprintf("%s is %s", m.Name(), st.State)}
	}
	return Step{Status: health.Pass, Detail: fmt.Sprintf("%s is %s", m.Name(), st.State)}
}

func (o Options) latencyStep(ctx context.Context) Step {
	url := o.Config.Health.URL
	if url == "" {
		return Step{Status: health.Skip, Detail: "health.url is empty: nothing to time"}
	}
	ok, failed, stats := health.MeasureLatency(ctx, url, o.Samples, o.Interval, max(o.Config.Health.Timeout, o.Target))
	d := fmt.Sprintf("p95 %s, p50 %s, max %s over %d requests (target %s)", ui.Duration(stats.P95), ui.Duration(stats.P50),
		ui.Duration(stats.Max), len(ok)+failed, ui.Duration(o.Target))
	switch {
	case failed > 0:
		return Step{Status: health.Fail, Detail: fmt.Sprintf("%d of %d requests failed; %s", failed, len(ok)+failed, d)}
	case stats.P95 > o.Target:
		return Step{Status: health.Fail, Detail: d}
	}
	return Step{Status: health.Pass, Detail: d}
}

func (o Options) errorStep(ctx context.Context) Step {
	now := o.Now()
	lines, desc, err := o.ErrorLines(ctx, now.Add(-time.Hour))
	if err != nil {
		return Step{Status: health.Skip, Detail: "log not read: " + err.Error()}
	}
	after := len(lines)
	since := "the last hour"
	if !o.RunEnded.IsZero() && o.RunEnded.After(now.Add(-time.Hour)) {
		after = 0
		for _, l := range lines {
			// Log timestamps are often whole seconds: a line stamped in the second the
			// run ended counts as after it.
			if !l.Time.IsZero() && !l.Time.Before(o.RunEnded.Truncate(time.Second)) {
				after++
			}
		}
		since = "since run " + o.RunID + " ended"
	}
	d := fmt.Sprintf("%d lines matching %q in the last hour, %d %s (%s)", len(lines), o.ErrorGrep, after, since, desc)
	switch {
	case after > o.MaxErrors:
		return Step{Status: health.Fail, Detail: d}
	case len(lines) > 0:
		return Step{Status: health.Warn, Detail: d}
	}
	return Step{Status: health.Pass, Detail: d}
}

// apiStep runs the DNS/TCP/TLS/HTTP stages of 'cfrollback test api-connection'.
func (o Options) apiStep(ctx context.Context) Step {
	if o.APIURLErr != nil {
		return Step{Status: health.Skip, Detail: "no API URL known (" + o.APIURLErr.Error() + ")"}
	}
	res, err := o.Connect(ctx, appconfig.ConnOptions{URL: o.APIURL, Timeout: max(o.Config.Health.Timeout, 5*time.Second)})
	if err != nil {
		return Step{Status: health.Fail, Detail: res.URL + ": " + err.Error()}
	}
	var parts []string
	for _, st := range res.Stages {
		parts = append(parts, fmt.Sprintf("%s %s", st.Name, st.Status))
		if st.Status == "fail" {
			parts = append(parts, st.Detail)
		}
	}
	d := res.URL + ": " + strings.Join(parts, ", ")
	if !res.OK {
		return Step{Status: health.Fail, Detail: d}
	}
	return Step{Status: health.Pass, Detail: d}
}

// Summarise turns health rows into one checklist step: FAIL if any failed, WARN if any
// warned, PASS if any passed, else SKIP.
func Summarise(rows []health.Check, what string) Step {
	s := Step{Status: health.Skip, Checks: rows}
	var bad []string
	passed := 0
	for _, c := range rows {
		switch c.Verdict {
		case health.Fail:
			s.Status = health.Fail
			bad = append(bad, c.Name+": "+c.Detail)
		case health.Warn:
			if s.Status != health.Fail {
				s.Status = health.Warn
			}
			bad = append(bad, c.Name+": "+c.Detail)
		case health.Pass:
			passed++
			if s.Status == health.Skip {
				s.Status = health.Pass
			}
		}
	}
	switch {
	case len(rows) == 0:
		s.Detail = "no " + what + " rows"
	case len(bad) > 0:
		s.Detail = strings.Join(bad, "; ")
	case s.Status == health.Skip:
		s.Detail = rows[0].Detail
		if len(rows) > 1 {
			s.Detail = fmt.Sprintf("none of %d checked: %s", len(rows), rows[0].Detail)
		}
	default:
		s.Detail = fmt.Sprintf("%d of %d rows pass", passed, len(rows))
	}
	return s
}

// CheckAgents parses every agent definition (front matter, required fields, unique names),
// as 'cfrollback agents status' does.
func CheckAgents(dir string) Step {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return Step{Status: health.Skip, Detail: "no agents dir " + dir}
	}
	files, err := appconfig.ReadDir(dir)
	if err != nil {
		return Step{Status: health.Fail, Detail: err.Error()}
	}
	sts := appconfig.CheckSet(files)
	var bad []string
	for _, st := range sts {
		if !st.OK() {
			bad = append(bad, st.File+": "+strings.Join(st.Errors, "; "))
		}
	}
	if n := len(bad); n > 0 {
		if n > 2 {
			bad = append(bad[:2:2], fmt.Sprintf("(%d more)", n-2))
		}
		return Step{Status: health.Fail, Detail: fmt.Sprintf("%d of %d definitions invalid: %s; see 'cfrollback agents status'",
			n, len(sts), strings.Join(bad, " | "))}
	}
	if len(sts) == 0 {
		return Step{Status: health.Warn, Detail: "no agent definitions in " + dir}
	}
	return Step{Status: health.Pass, Detail: fmt.Sprintf("%d definitions valid", len(sts))}
}
