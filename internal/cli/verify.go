package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/config"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/logs"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// verifyStep is one line of the post-rollback checklist.
type verifyStep struct {
	Step       int            `json:"step"`
	Name       string         `json:"name"`
	Status     health.Verdict `json:"status"`
	Detail     string         `json:"detail"`
	DurationMS float64        `json:"duration_ms"`
	Checks     []health.Check `json:"checks,omitempty"`
}

type verifyResult struct {
	OK      bool         `json:"ok"`
	Service string       `json:"service"`
	RunID   string       `json:"run_id,omitempty"` // the run this verification was recorded against
	Steps   []verifyStep `json:"steps"`
	// Recorded says whether the journal holds this result; NotRecorded why not.
	Recorded    bool   `json:"recorded"`
	NotRecorded string `json:"not_recorded,omitempty"`
	Failures    int    `json:"failures"`
	Warnings    int    `json:"warnings"`
	DurationMS  int64  `json:"duration_ms"`
}

// logCountOptions say which log lines count as errors.
type logCountOptions struct {
	Files   string // --log-files glob; "" means the logs setting
	Grep    string // default "ERROR"
	Journal logs.JournalFunc
}

type verifyOptions struct {
	IO        *ui.IO
	JSON      bool
	Config    config.Config
	Service   service.Manager
	Databases health.DatabaseChecker
	RunID     string // record against this run; "" means the last rollback run
	NoRecord  bool
	Samples   int
	Interval  time.Duration
	Target    time.Duration
	APIURL    string
	MaxErrors int
	Logs      logCountOptions
	Now       func() time.Time
}

func newVerifyCmd(f *Factory) *cobra.Command {
	opts := &verifyOptions{IO: f.IO, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "The post-rollback checklist in one command, recorded in the journal",
		Long: `Run the seed's seven post-rollback checks and print them as a checklist:

  1. service          the manager reports it active
  2. health           health-check --comprehensive (without its database rows)
  3. agents           every definition in agents_dir parses and is valid (SKIP without the dir)
  4. databases        quick_check of every configured database (health-check rows)
  5. API connectivity DNS, TCP, TLS, HTTP to --url or the app config's claude.baseUrl
  6. response time    p95 of --samples requests to health.url within --target
  7. error count      lines matching --error-grep in the last hour: FAIL when more than
                      --max-errors arrived after the rollback ended, WARN for earlier ones;
                      read where the logs setting says (logs.source), or --log-files

The result is appended to the journal (event "verify") against the last
emergency/rollback/undo run, or --run RUN_ID; 'cfrollback report' prints it.
The checks run without the lock; the lock is taken only to append.` +
			exitStatusHelp("0  every step passed (WARN and SKIP do not fail)",
				"1  a step failed",
				"2  bad usage or invalid settings"),
		Example: `  cfrollback verify
  cfrollback verify --json | jq '.steps[] | select(.status=="FAIL")'
  cfrollback verify --target 500ms --samples 20 --url https://api.anthropic.com/v1
  cfrollback verify --log-files '/srv/app/logs/*.log'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Samples < 1 || opts.Samples > maxSamples {
				return usageErrorf("--samples %d: give 1 to %d", opts.Samples, maxSamples)
			}
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			m, err := newServiceManager(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			opts.JSON, opts.Config, opts.Service, opts.Databases = f.JSON, cfg, m, healthDatabases{cfg: cfg}
			return runVerify(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.RunID, "run", "", "record against this run (default: the last emergency, rollback or undo)")
	_ = cmd.RegisterFlagCompletionFunc("run", completeRunIDs(f))
	fl.BoolVar(&opts.NoRecord, "no-record", false, "do not write the result to the journal")
	fl.IntVar(&opts.Samples, "samples", 10, "requests for the response-time step")
	durationVar(fl, &opts.Interval, "interval", 100*time.Millisecond, "pause between those requests")
	durationVar(fl, &opts.Target, "target", 2*time.Second, "p95 latency that passes")
	fl.StringVar(&opts.APIURL, "url", "", "API endpoint for the connectivity step (default: claude.baseUrl of the app config)")
	fl.IntVar(&opts.MaxErrors, "max-errors", 0, "error lines allowed after the rollback ended")
	addLogFlags(fl, &opts.Logs)
	aliasFlags(fl, map[string]string{"api-url": "url"})
	return cmd
}

func addLogFlags(fl interface {
	StringVar(p *string, name, value, usage string)
}, o *logCountOptions) {
	fl.StringVar(&o.Files, "log-files", "", "count error lines in these files (a glob) instead of the logs setting (logs.source, logs.files)")
	fl.StringVar(&o.Grep, "error-grep", "ERROR", "a log line matching this regular expression (RE2) is an error")
}

func runVerify(ctx context.Context, opts *verifyOptions) error {
	cfg, m := opts.Config, opts.Service
	t0 := time.Now()
	res := verifyResult{Service: m.Name()}
	run, runErr := rollbackRun(cfg.Journal, opts.RunID)
	if opts.RunID != "" && runErr != nil {
		return usageError{runErr}
	}
	add := func(name string, f func() verifyStep) {
		start := time.Now()
		s := f()
		s.Step, s.Name, s.DurationMS = len(res.Steps)+1, name, ms(time.Since(start))
		res.Steps = append(res.Steps, s)
	}

	add("service", func() verifyStep {
		st, err := m.Status(ctx)
		switch {
		case err != nil:
			return verifyStep{Status: health.Fail, Detail: err.Error()}
		case !st.Active:
			return verifyStep{Status: health.Fail, Detail: fmt.Sprintf("%s is %s", m.Name(), st.State)}
		}
		return verifyStep{Status: health.Pass, Detail: fmt.Sprintf("%s is %s", m.Name(), st.State)}
	})
	rep := health.RunLevel(ctx, health.LevelOptions{Level: health.Comprehensive,
		Critical: runbook.CriticalProbes(m, cfg.Health, nil), InstallDir: cfg.InstallDir, BackupDir: cfg.Backup.Dir,
		BackupPattern: cfg.Backup.Pattern, Status: m.Status, PIDVisible: pidVisible(m, cfg), Databases: opts.Databases})
	var general, dbs []health.Check
	for _, c := range rep.Checks {
		if strings.HasPrefix(c.Name, "database") {
			dbs = append(dbs, c)
		} else {
			general = append(general, c)
		}
	}
	add("health", func() verifyStep { return summarise(general, "health-check --comprehensive") })
	add("agents", func() verifyStep { return checkAgents(cfg.AgentsPath()) })
	add("databases", func() verifyStep { return summarise(dbs, "database") })
	add("API connectivity", func() verifyStep { return checkAPI(ctx, opts.APIURL, cfg, cfg.Health.Timeout) })
	add("response time", func() verifyStep {
		if cfg.Health.URL == "" {
			return verifyStep{Status: health.Skip, Detail: "health.url is empty: nothing to time"}
		}
		ok, failed, stats := latencyNow(ctx, cfg.Health.URL, opts.Samples, opts.Interval, max(cfg.Health.Timeout, opts.Target))
		d := fmt.Sprintf("p95 %s, p50 %s, max %s over %d requests (target %s)", ui.Duration(stats.P95), ui.Duration(stats.P50),
			ui.Duration(stats.Max), len(ok)+failed, ui.Duration(opts.Target))
		switch {
		case failed > 0:
			return verifyStep{Status: health.Fail, Detail: fmt.Sprintf("%d of %d requests failed; %s", failed, len(ok)+failed, d)}
		case stats.P95 > opts.Target:
			return verifyStep{Status: health.Fail, Detail: d}
		}
		return verifyStep{Status: health.Pass, Detail: d}
	})
	add("error count", func() verifyStep {
		now := opts.Now()
		lines, desc, err := errorLines(ctx, opts.IO, cfg, opts.Logs, now.Add(-time.Hour))
		if err != nil {
			return verifyStep{Status: health.Skip, Detail: "log not read: " + err.Error()}
		}
		after := len(lines)
		since := "the last hour"
		if runErr == nil && !run.Ended.IsZero() && run.Ended.After(now.Add(-time.Hour)) {
			after = 0
			for _, l := range lines {
				// Log timestamps are often whole seconds: a line stamped in
				// the second the run ended counts as after it.
				if !l.Time.IsZero() && !l.Time.Before(run.Ended.Truncate(time.Second)) {
					after++
				}
			}
			since = "since run " + run.ID + " ended"
		}
		d := fmt.Sprintf("%d lines matching %q in the last hour, %d %s (%s)", len(lines), opts.Logs.grep(), after, since, desc)
		switch {
		case after > opts.MaxErrors:
			return verifyStep{Status: health.Fail, Detail: d}
		case len(lines) > 0:
			return verifyStep{Status: health.Warn, Detail: d}
		}
		return verifyStep{Status: health.Pass, Detail: d}
	})

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
	switch {
	case opts.NoRecord:
		res.NotRecorded = "--no-record"
	case runbook.Interruption(ctx) != nil:
		// an interrupted verify is not a verdict on the run
		res.NotRecorded = runbook.Interruption(ctx).Error()
	case runErr != nil:
		res.NotRecorded = runErr.Error()
	default:
		res.RunID = run.ID
		if err := appendLocked(ctx, cfg, "cfrollback verify", run.ID, "verify", res); err != nil {
			res.RunID, res.NotRecorded = "", err.Error()
		} else {
			res.Recorded = true
		}
	}
	if res.NotRecorded != "" && !opts.NoRecord {
		opts.IO.Warnf("not recorded in the journal: %s", res.NotRecorded)
	}
	if err := printVerify(opts.IO, opts.JSON, res); err != nil {
		return err
	}
	if !res.OK {
		return exitError{ExitFailed}
	}
	return nil
}

// summarise turns health rows into one checklist step: FAIL if any failed,
// WARN if any warned, PASS if any passed, else SKIP.
func summarise(rows []health.Check, what string) verifyStep {
	s := verifyStep{Status: health.Skip, Checks: rows}
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

// checkAgents parses every agent definition (front matter, required
// fields, unique names), as 'cfrollback agents status' does.
func checkAgents(dir string) verifyStep {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return verifyStep{Status: health.Skip, Detail: "no agents dir " + dir}
	}
	files, err := appconfig.ReadDir(dir)
	if err != nil {
		return verifyStep{Status: health.Fail, Detail: err.Error()}
	}
	sts := appconfig.CheckSet(files)
	var bad []string
	for _, st := range sts {
		if !st.OK() {
			bad = append(bad, st.File+": "+strings.Join(st.Errors, "; "))
		}
	}
	if len(bad) > 0 {
		return verifyStep{Status: health.Fail, Detail: fmt.Sprintf("%d of %d definitions invalid: %s; see 'cfrollback agents status'", len(bad), len(sts), strings.Join(firstN(bad, 2), " | "))}
	}
	if len(sts) == 0 {
		return verifyStep{Status: health.Warn, Detail: "no agent definitions in " + dir}
	}
	return verifyStep{Status: health.Pass, Detail: fmt.Sprintf("%d definitions valid", len(sts))}
}

// checkAPI runs the DNS/TCP/TLS/HTTP stages of 'cfrollback test
// api-connection' against --url, or the app config's claude.baseUrl.
func checkAPI(ctx context.Context, url string, cfg config.Config, timeout time.Duration) verifyStep {
	if url == "" {
		u, err := baseURLFrom(appConfigPath(cfg))
		if err != nil {
			return verifyStep{Status: health.Skip, Detail: "no API URL known (" + err.Error() + ")"}
		}
		url = u
	}
	res, err := testConnection(ctx, appconfig.ConnOptions{URL: url, Timeout: max(timeout, 5*time.Second)})
	if err != nil {
		return verifyStep{Status: health.Fail, Detail: res.URL + ": " + err.Error()}
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
		return verifyStep{Status: health.Fail, Detail: d}
	}
	return verifyStep{Status: health.Pass, Detail: d}
}

// latencyNow times n requests: the successful latencies, the failures and
// a summary of all of them.
func latencyNow(ctx context.Context, url string, n int, interval, timeout time.Duration) ([]time.Duration, int, health.LatencyStats) {
	results := health.SampleLatency(ctx, health.SampleOptions{URL: url, Samples: n, Interval: interval, Timeout: timeout})
	var ok, all []time.Duration
	failed := 0
	for _, r := range results {
		all = append(all, r.Duration)
		if r.OK {
			ok = append(ok, r.Duration)
		} else {
			failed++
		}
	}
	return ok, failed, health.Summarise(all)
}

func pidVisible(m service.Manager, cfg config.Config) func(int) (bool, string) {
	return func(pid int) (bool, string) {
		if m.Kind() == service.KindSystemd {
			return health.PIDVisible(pid, serviceUnit(cfg.Service.Unit))
		}
		return health.PIDVisible(pid, "")
	}
}

func (o logCountOptions) grep() string {
	if o.Grep == "" {
		return "ERROR"
	}
	return o.Grep
}

// errorLines reads the service's log lines since since that match the error expression,
// from where the logs setting (or --log-files) says they are.
func errorLines(ctx context.Context, io *ui.IO, cfg config.Config, o logCountOptions, since time.Time) ([]logs.Line, string, error) {
	filter, err := parseLogFilter(o.grep(), "", since)
	if err != nil {
		return nil, "", err
	}
	filter.Since = since
	src, err := resolveLogs(ctx, io, cfg, o.Files)
	if err != nil {
		return nil, "", err
	}
	var lines []logs.Line
	err = logs.Reader{Journal: o.Journal, Warn: warner(io)}.Read(ctx, src, filter, false, func(l logs.Line) error {
		lines = append(lines, l)
		return nil
	})
	return lines, src.Desc, err
}

// rollbackRun is run id, or the last emergency, rollback or undo run.
func rollbackRun(journalPath, id string) (journal.Run, error) {
	run, _, err := rollbackRunChecked(journalPath, id)
	return run, err
}

// noRunError: the journal holds no such run (a usage error for the callers), as opposed
// to a journal that cannot be read.
type noRunError struct{ error }

// runCheck is what the journal's hash chain says about one run.
type runCheck struct {
	Warning    string // the journal's problems, "" when it is intact
	Unverified bool   // the chain does not vouch for the run's records
}

// rollbackRunChecked is rollbackRun with the journal's hash chain checked. The warning is
// set when the chain does not vouch for the run's records, and for the journal's last run
// when the journal has any problem (records cut from its end are that run's: its outcome
// may be gone).
func rollbackRunChecked(journalPath, id string) (run journal.Run, check runCheck, err error) {
	jc, err := journal.ReadChecked(journalPath)
	if errors.Is(err, fs.ErrNotExist) {
		return journal.Run{}, check, noRunError{fmt.Errorf("no journal at %s: no rollback has run here", journalPath)}
	}
	if err != nil {
		return journal.Run{}, check, fmt.Errorf("read journal %s: %w", journalPath, err)
	}
	runs := journal.Runs(jc.Records)
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if (id != "" && r.ID == id) || (id == "" && (r.Command == "emergency" || r.Command == "rollback" || r.Command == "undo")) {
			check.Unverified = !jc.Trusted(r)
			if check.Unverified || i == len(runs)-1 {
				check.Warning = jc.Warning(journalPath)
			}
			return r, check, nil
		}
	}
	if id != "" {
		return journal.Run{}, check, noRunError{fmt.Errorf("run %s is not in the journal %s; 'cfrollback history' lists the runs", id, journalPath)}
	}
	return journal.Run{}, check, noRunError{fmt.Errorf("no emergency, rollback or undo run in the journal %s", journalPath)}
}

// appendLocked appends one record under the lock, so it never interleaves
// with a running rollback's records. A rollback in progress is waited for
// only briefly: the caller reports the record as not written.
func appendLocked(ctx context.Context, cfg config.Config, command, runID, event string, data any) error {
	var lk *lock.Lock
	var err error
	for i := range 10 {
		host, _ := os.Hostname()
		if lk, err = lock.Acquire(cfg.Lock, lock.Holder{PID: os.Getpid(), Host: host, Command: command, RunID: runID}); err == nil {
			break
		}
		if !errors.Is(err, lock.ErrLocked) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waiting for the lock)", context.Cause(ctx))
		case <-time.After(time.Duration(i+1) * 50 * time.Millisecond):
		}
	}
	if err != nil {
		return err
	}
	defer func() { _ = lk.Release() }()
	j, err := journal.Open(cfg.Journal)
	if err != nil {
		return fmt.Errorf("open journal %s: %w", cfg.Journal, err)
	}
	defer j.Close() //nolint:errcheck // every Append is fsynced; Close only releases the descriptor
	_, err = j.Append(runID, event, "", data)
	return err
}

func printVerify(io *ui.IO, asJSON bool, res verifyResult) error {
	if asJSON {
		return ui.JSON(io.Out, res)
	}
	p := io.OutPalette()
	for _, s := range res.Steps {
		fmt.Fprintf(io.Out, "%d. %s  %-16s %s\n", s.Step, paintVerdict(p, s.Status), s.Name, s.Detail)
	}
	switch {
	case res.OK && res.Warnings > 0:
		fmt.Fprintln(io.Out, p.Green(fmt.Sprintf("Rollback verification passed (%s)", plural(res.Warnings, "warning"))))
	case res.OK:
		fmt.Fprintln(io.Out, p.Green("Rollback verification passed"))
	default:
		fmt.Fprintln(io.Out, p.Red(fmt.Sprintf("Rollback verification FAILED (%d of %d steps)", res.Failures, len(res.Steps))))
	}
	if res.Recorded {
		fmt.Fprintf(io.Out, "recorded in the journal against run %s\n", res.RunID)
	}
	return nil
}
