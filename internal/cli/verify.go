package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/logs"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
	"github.com/cfrollback/cfrollback/internal/verify"
)

// logCountOptions say which log lines count as errors.
type logCountOptions struct {
	Files   string // --log-files glob; "" means the logs setting
	Grep    string // default "ERROR"
	Journal logs.JournalFunc
}

type verifyOptions struct {
	IO        *ui.IO
	JSON      bool
	Config    settings.Config
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
	run, runErr := rollbackRun(cfg.Journal, opts.RunID)
	if opts.RunID != "" && runErr != nil {
		return usageError{runErr}
	}
	vo := verify.Options{Config: cfg, Service: m, Databases: opts.Databases, PIDVisible: pidVisible(m, cfg),
		Samples: opts.Samples, Interval: opts.Interval, Target: opts.Target, APIURL: opts.APIURL, Connect: testConnection,
		ErrorGrep: opts.Logs.grep(), MaxErrors: opts.MaxErrors, Now: opts.Now,
		ErrorLines: func(ctx context.Context, since time.Time) ([]logs.Line, string, error) {
			return errorLines(ctx, opts.IO, cfg, opts.Logs, since)
		}}
	if vo.APIURL == "" {
		vo.APIURL, vo.APIURLErr = baseURLFrom(appConfigPath(cfg))
	}
	if runErr == nil {
		vo.RunID, vo.RunEnded = run.ID, run.Ended
	}
	res := verify.Run(ctx, vo)
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
		if err := runbook.AppendLocked(ctx, cfg, "cfrollback verify", run.ID, journal.EventVerify, res); err != nil {
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

func pidVisible(m service.Manager, cfg settings.Config) func(int) (bool, string) {
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
func errorLines(ctx context.Context, io *ui.IO, cfg settings.Config, o logCountOptions, since time.Time) ([]logs.Line, string, error) {
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
	run, _, err := journal.FindRun(journalPath, id)
	return run, err
}

func printVerify(io *ui.IO, asJSON bool, res verify.Result) error {
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
