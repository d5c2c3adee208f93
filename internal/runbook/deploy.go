package runbook

// The deploy gate (docs/DEPLOY.md): helm's --atomic for a plain host. A fresh verified
// backup and a baseline first, then the deploy command, a health gate, a watch window with
// stricter thresholds, and on any failure a rollback to that backup by the emergency
// procedure itself.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// DeployCommand is the journal's command of a deploy run.
const DeployCommand = "deploy"

// Sentinels of a deploy that failed after its command ran (internal/cli: exit 20, 21, 22).
var (
	// ErrDeployRolledBack: the deploy failed and the emergency put the backup back, healthy.
	ErrDeployRolledBack = errors.New("deploy failed and was rolled back")
	// ErrDeployRollbackFailed: the deploy failed and so did the rollback.
	ErrDeployRollbackFailed = errors.New("deploy failed and the rollback failed too")
	// ErrDeployNotRolledBack: the operator stopped the deploy (Ctrl-C, SIGTERM) after its
	// command began; nothing was rolled back.
	ErrDeployNotRolledBack = errors.New("deploy interrupted; not rolled back")
)

// DeployOptions are one deploy's choices.
type DeployOptions struct {
	Config settings.Config
	// Command is the deploy command and its arguments, run without a shell.
	Command []string
	DryRun  bool
	Args    []string
	// KillAt is the test hook of Options.KillAt (CFROLLBACK_TEST_KILL_AT) for the deploy's
	// own steps.
	KillAt string
}

// DeployDeps are the effects a deploy needs beyond those of the emergency it may run.
type DeployDeps struct {
	// Deps are the emergency's own (service, events, its notifier); the deploy's probes and
	// gate use the same service and probes.
	Deps
	// Stdout and Stderr get the deploy command's output (nil: discarded).
	Stdout, Stderr io.Writer
	// Snapshotter and DBChecker make and check the backup (backup create's, backup verify's).
	Snapshotter backup.DBSnapshotter
	DBChecker   backup.DBChecker
	// RecordBaseline records a baseline as 'baseline record' does, when there is none.
	RecordBaseline func(ctx context.Context) error
	// Sampler takes the watch's samples (monitor's sampler); nil: the service state and one
	// health request only.
	Sampler WatchSampler
	// Data are the app config and database rows judged in the watch (assess's data_corrupt).
	Data func(ctx context.Context) []health.Check
	// Notifier hears deploy_started once the backup is ready (nil: nobody).
	Notifier DeployNotifier
	// Run runs the deploy command; nil runs it for real (runCommand).
	Run func(ctx context.Context, argv []string, stdout, stderr io.Writer) (exitCode int, err error)
	// Emergency is the rollback; nil is Emergency itself.
	Emergency func(ctx context.Context, opt Options, deps Deps) (*Result, error)
}

// WatchSampler takes one sample of the service (assess.Sampler).
type WatchSampler interface {
	Take(ctx context.Context) assess.Sample
}

// DeployNotifier is told that a deploy is about to run its command; it must not block.
type DeployNotifier interface {
	DeployStarting(ctx context.Context, res *DeployResult)
}

// DeployResult is what a deploy did; --json prints it.
type DeployResult struct {
	RunID   string `json:"run_id"`
	Command string `json:"command"`
	DryRun  bool   `json:"dry_run"`
	// Outcome: ok, rolled_back, rollback_failed, not_rolled_back (interrupted),
	// preflight_failed, planned, preflight_would_fail.
	Outcome       string        `json:"outcome"`
	Service       string        `json:"service"`
	InstallDir    string        `json:"install_dir"`
	DeployCommand []string      `json:"deploy_command"`
	Backup        *DeployBackup `json:"backup,omitempty"`
	Baseline      string        `json:"baseline,omitempty"`
	// ExitCode is the deploy command's; nil when it did not run or did not exit.
	ExitCode *int `json:"command_exit_code,omitempty"`
	// FailedStep is the step whose failure caused the rollback: deploy, gate or watch.
	FailedStep string          `json:"failed_step,omitempty"`
	Gate       []health.Result `json:"gate,omitempty"`
	Watch      *WatchResult    `json:"watch,omitempty"`
	// Rollback is the emergency run that put the backup back.
	Rollback   *Result      `json:"rollback,omitempty"`
	Steps      []StepResult `json:"steps"`
	Started    time.Time    `json:"started"`
	DurationMS int64        `json:"duration_ms"`
	Plan       []string     `json:"plan,omitempty"`
	Journal    string       `json:"journal,omitempty"`
	HumanLog   string       `json:"human_log,omitempty"`
	Next       []string     `json:"next,omitempty"`
	Error      string       `json:"error,omitempty"`
}

// DeployBackup is the backup the deploy would roll back to.
type DeployBackup struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256,omitempty"`
	// Created is true when this deploy made it; Reason says why an existing one was not used,
	// or which one was.
	Created bool   `json:"created"`
	Reason  string `json:"reason"`
}

// deployIntent is a deploy's intent record.
type deployIntent struct {
	Command    string   `json:"command"`
	Args       []string `json:"args,omitempty"`
	User       string   `json:"user"`
	Host       string   `json:"host"`
	PID        int      `json:"pid"`
	Service    string   `json:"service"`
	InstallDir string   `json:"install_dir"`
	Deploy     []string `json:"deploy_command"`
}

// deployOutcome is a deploy's outcome record; journal.Runs reads outcome, error and backup.
type deployOutcome struct {
	Outcome         string `json:"outcome"`
	Error           string `json:"error,omitempty"`
	Backup          string `json:"backup,omitempty"`
	FailedStep      string `json:"failed_step,omitempty"`
	ExitCode        *int   `json:"command_exit_code,omitempty"`
	RollbackRunID   string `json:"rollback_run_id,omitempty"`
	RollbackOutcome string `json:"rollback_outcome,omitempty"`
	DurationMS      int64  `json:"duration_ms"`
}

// EventDeployFailed is journaled when a deploy's command, gate or watch failed, with the
// evidence (deployFailure), before the rollback.
const EventDeployFailed = "deploy_failed"

// deployFailure is the evidence of a failed deploy step.
type deployFailure struct {
	Step     string          `json:"step"`
	Error    string          `json:"error"`
	ExitCode *int            `json:"command_exit_code,omitempty"`
	Gate     []health.Result `json:"gate,omitempty"`
	Watch    *WatchResult    `json:"watch,omitempty"`
}

// rollbackData is the rollback step's journal payload: the emergency's run and outcome.
type rollbackData struct {
	RunID   string `json:"run_id,omitempty"`
	Outcome string `json:"outcome,omitempty"`
}

// deployRun is one deploy: the runner's lock, journal and steps, and the deploy's result.
type deployRun struct {
	*runner
	dopt DeployOptions
	dd   DeployDeps
	dres *DeployResult
	// blockedNext is what to run when check_runs found an interrupted deploy or version
	// rollback (nil: an emergency's interruptedNext).
	blockedNext []string
}

// Deploy runs the deploy command under the gate. The lock is held from the start to the
// end, the rollback included (its emergency takes a lock of its own beside it, see
// rollback), so no other run can come between a failed gate and the rollback.
func Deploy(ctx context.Context, opt DeployOptions, dd DeployDeps) (*DeployResult, error) {
	r := newRunner(Options{Config: opt.Config, Command: DeployCommand, DryRun: opt.DryRun, Args: opt.Args, KillAt: opt.KillAt}, dd.Deps)
	if dd.Run == nil {
		dd.Run = runCommand
	}
	if dd.Emergency == nil {
		dd.Emergency = Emergency
	}
	d := &deployRun{runner: r, dopt: opt, dd: dd, dres: &DeployResult{
		RunID: r.runID, Command: DeployCommand, DryRun: opt.DryRun, Service: r.res.Service, InstallDir: r.res.InstallDir,
		DeployCommand: opt.Command, Started: r.start, Steps: []StepResult{},
	}}
	if len(opt.Command) == 0 || strings.TrimSpace(opt.Command[0]) == "" {
		d.dres.Outcome = "preflight_failed"
		err := &StepError{Step: "deploy", Err: errors.New("no deploy command given"), Hint: "give it after --: cfrollback deploy -- ./deploy.sh"}
		d.dres.Error = err.Error()
		return d.dres, err
	}
	release, err := r.begin()
	if err != nil {
		d.dres.Outcome, d.dres.Error = "preflight_failed", err.Error()
		return d.dres, err
	}
	defer func() { release() }()
	d.dres.Journal, d.dres.HumanLog = r.res.Journal, r.res.HumanLog
	err = d.body(ctx)
	d.finish(err)
	return d.dres, err
}

func (d *deployRun) body(ctx context.Context) error {
	host, _ := os.Hostname()
	if err := d.record(journal.EventIntent, "", deployIntent{
		Command: DeployCommand, Args: d.dopt.Args, User: whoami(), Host: host, PID: os.Getpid(),
		Service: d.dres.Service, InstallDir: d.dres.InstallDir, Deploy: d.dopt.Command,
	}); err != nil {
		return &StepError{Step: "journal", Err: err, Hint: "fix the journal path or its permissions; nothing was changed"}
	}
	d.hlog.printf("deploy initiated by %s (run %s): %s", whoami(), d.runID, strings.Join(d.dopt.Command, " "))
	if err := d.step(ctx, "check_runs", d.checkInterrupted); err != nil {
		return err
	}
	if err := d.step(ctx, "backup", d.ensureBackup); err != nil {
		return err
	}
	if err := d.step(ctx, "baseline", d.ensureBaseline); err != nil {
		return err
	}
	if d.dd.Notifier != nil && !d.opt.DryRun {
		d.dd.Notifier.DeployStarting(ctx, d.dres)
	}
	// From here a failure is rolled back: mark it so the runner's errors say "after".
	for _, s := range []struct {
		name string
		fn   func(context.Context) (string, any, error)
	}{{"deploy", d.runDeployCommand}, {"gate", d.gate}, {"watch", d.watch}} {
		if err := d.step(ctx, s.name, s.fn); err != nil {
			d.dres.FailedStep = s.name
			if !d.opt.DryRun {
				_ = d.record(EventDeployFailed, s.name, deployFailure{Step: s.name, Error: err.Error(),
					ExitCode: d.dres.ExitCode, Gate: d.dres.Gate, Watch: d.dres.Watch})
			}
			return d.rollback(ctx, err)
		}
	}
	return nil
}

// rollback runs the emergency procedure to the deploy's backup, unless the operator stopped
// the run: then it says how to roll back and leaves it to them.
//
// The deploy holds the lock; the emergency's own runner takes a second lock file beside it
// (<lock>.rollback), which no other run uses, and the deploy's journal is closed while the
// emergency appends to the same journal. Another run (an emergency, a guard) that wants the
// lock still finds the deploy holding it until the rollback's outcome is recorded.
func (d *deployRun) rollback(ctx context.Context, cause error) error {
	if d.opt.DryRun {
		return cause
	}
	if c := Interruption(ctx); c != nil {
		return fmt.Errorf("%w during %s (%w): %w", c, d.dres.FailedStep, cause, ErrDeployNotRolledBack)
	}
	var emErr error
	stepErr := d.step(ctx, "rollback", func(ctx context.Context) (string, any, error) {
		cfg := d.cfg
		cfg.Lock = d.cfg.Lock + ".rollback"
		if err := d.j.Close(); err != nil {
			d.warn("close the journal before the rollback: %v", err)
		}
		d.j = nil
		res, err := d.dd.Emergency(ctx, Options{Config: cfg, Command: "emergency", BackupPath: d.dres.Backup.Path, Args: d.opt.Args}, d.deps)
		j, jerr := journal.Open(d.cfg.Journal)
		if jerr != nil {
			return "", nil, fmt.Errorf("reopen journal %s after the rollback: %w", d.cfg.Journal, jerr)
		}
		d.j = j
		d.dres.Rollback, emErr = res, err
		var data rollbackData
		if res != nil {
			data = rollbackData{RunID: res.RunID, Outcome: res.Outcome}
		}
		if err != nil {
			return "", data, err
		}
		if err := d.tookUpOtherRun(res); err != nil {
			return "", data, err
		}
		return fmt.Sprintf("rolled back to %s by run %s (downtime %d ms)", d.dres.Backup.Path, res.RunID, res.DowntimeMS), data, nil
	})
	if stepErr != nil || emErr != nil {
		return fmt.Errorf("%w: %w; the rollback: %w", ErrDeployRollbackFailed, cause, errors.Join(emErr, stepErr))
	}
	return fmt.Errorf("%w: %w", ErrDeployRolledBack, cause)
}

// finish records the outcome and what to do next.
func (d *deployRun) finish(err error) {
	res := d.dres
	res.Steps = d.res.Steps
	res.DurationMS = d.deps.Now().Sub(d.start).Milliseconds()
	backupArg := "--backup BACKUP"
	if res.Backup != nil {
		backupArg = "--backup " + shellQuote(res.Backup.Path)
	}
	switch {
	case err == nil && d.opt.DryRun:
		res.Outcome = "planned"
		for _, s := range res.Steps {
			res.Plan = append(res.Plan, s.Name+": "+s.Detail)
		}
	case err == nil:
		res.Outcome = "ok"
		res.Next = []string{"cfrollback baseline record   # once you are happy with the new version", "cfrollback history"}
	case errors.Is(err, ErrDeployRolledBack):
		res.Outcome = "rolled_back"
		res.Next = []string{"cfrollback history", "cfrollback report " + res.Rollback.RunID}
	case errors.Is(err, ErrDeployRollbackFailed):
		res.Outcome = "rollback_failed"
		res.Next = []string{"cfrollback health-check --critical-only", "cfrollback history", "cfrollback emergency " + backupArg}
	case errors.Is(err, ErrDeployNotRolledBack):
		res.Outcome = "not_rolled_back"
		res.Next = []string{"cfrollback health-check --critical-only", "cfrollback emergency " + backupArg + "   # to roll back"}
	case d.opt.DryRun:
		res.Outcome = "preflight_would_fail"
	default:
		res.Outcome = "preflight_failed"
		res.Next = []string{"cfrollback deploy --dry-run -- " + shellJoin(d.dopt.Command)}
	}
	if se := (*StepError)(nil); errors.As(err, &se) && se.Step == "check_runs" {
		res.Next = d.nextAfterCheck()
	}
	if err != nil {
		res.Error = err.Error()
	}
	if d.opt.DryRun {
		return
	}
	out := deployOutcome{Outcome: res.Outcome, Error: res.Error, FailedStep: res.FailedStep, ExitCode: res.ExitCode, DurationMS: res.DurationMS}
	if res.Backup != nil {
		out.Backup = res.Backup.Path
	}
	if res.Rollback != nil {
		out.RollbackRunID, out.RollbackOutcome = res.Rollback.RunID, res.Rollback.Outcome
	}
	if rerr := d.record(journal.EventOutcome, "", out); rerr != nil {
		d.warn("the deploy's outcome was not journaled: %v", rerr)
	}
	d.hlog.printf("deploy outcome: %s", strings.ToUpper(res.Outcome))
}

func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
