package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// intentData is journaled first; recovery reads it back.
type intentData struct {
	Command    string   `json:"command"`
	Args       []string `json:"args,omitempty"`
	User       string   `json:"user"`
	Host       string   `json:"host"`
	PID        int      `json:"pid"`
	Service    string   `json:"service"`
	InstallDir string   `json:"install_dir"`
	StagingDir string   `json:"staging_dir"`
	FailedDir  string   `json:"failed_dir"`
	Backup     string   `json:"backup,omitempty"`
}

// stagedData is journaled when preflight is done: the staging dir's identity
// tells a later run whether the swap happened.
type stagedData struct {
	Backup    string         `json:"backup"`
	SHA256    string         `json:"sha256"`
	StagingID install.FileID `json:"staging_id"`
	Entries   int            `json:"entries"`
	Bytes     int64          `json:"bytes"`
}

// carryMargin is free space kept beyond the preserved data's size.
const carryMargin = 64 << 20

// Emergency runs the P0 rollback: lock, recover an interrupted run, preflight
// while the service still runs (newest backup that extracts cleanly into a
// sibling staging dir), stop, carry over live data, swap atomically, keep the
// failed install, start, wait until healthy.
func Emergency(ctx context.Context, opt Options, deps Deps) (*Result, error) {
	if opt.Command == "" {
		opt.Command = "emergency"
	}
	r := newRunner(opt, deps)
	r.after = r.refreshStandbyAfter
	return r.run(ctx, r.emergency)
}

func (r *runner) emergency(ctx context.Context) error {
	// The service's state is preflight's first decision. It is read (a status command, a
	// 'pm2 jlist', a D-Bus call) while the intent is journaled and the journal searched for
	// an interrupted run; preflight waits for it where it used to read it.
	r.lookAhead = startLook(ctx, r.deps.Service)
	defer r.lookAhead.abandon()
	install := r.res.InstallDir
	r.res.StagingDir = install + ".staging-" + r.runID
	r.res.FailedDir = r.uniqueFailedDir()
	host, _ := os.Hostname()
	if err := r.record(journal.EventIntent, "", intentData{
		Command: r.opt.Command, Args: r.opt.Args, User: whoami(), Host: host, PID: os.Getpid(),
		Service: r.res.Service, InstallDir: install, StagingDir: r.res.StagingDir, FailedDir: r.res.FailedDir,
		Backup: r.opt.BackupPath,
	}); err != nil {
		return &StepError{Step: "journal", Err: err, Hint: "fix the journal path or its permissions; nothing was changed"}
	}
	r.hlog.printf("%s initiated by %s (run %s)", r.opt.Command, whoami(), r.runID)

	done, err := r.recoverInterrupted(ctx)
	if err != nil {
		return err
	}
	if done {
		return nil
	}
	if err := r.step(ctx, "preflight", r.preflight); err != nil {
		return err
	}
	return r.afterPreflight(ctx)
}

// afterPreflight is everything from the stop on; recovery of a run killed
// after its swap re-enters at start.
func (r *runner) afterPreflight(ctx context.Context) error {
	if r.deps.Notifier != nil && !r.opt.DryRun {
		r.deps.Notifier.Starting(ctx, r.res)
	}
	if err := r.step(ctx, "stop", r.stopService); err != nil {
		r.rollbackBeforeSwap(ctx)
		return err
	}
	// From here to the swap, a --timeout would only leave more to resume: the
	// file steps run to completion. An operator's interrupt stops them as a kill
	// would (a copy cut short is in staging, which the next run removes).
	fileCtx, cancelFiles := detachUnlessInterrupted(ctx)
	defer cancelFiles()
	if err := r.step(fileCtx, "carry_over", r.carryOver); err != nil {
		r.rollbackBeforeSwap(ctx)
		return err
	}
	if err := r.step(fileCtx, "check_data", r.checkData); err != nil {
		r.rollbackBeforeSwap(ctx)
		return err
	}
	fellBack := false
	if err := r.step(fileCtx, "swap", func(context.Context) (string, any, error) {
		fb, err := r.swap()
		fellBack = fb
		return r.swapDetail(fb), map[string]any{"fell_back": fb}, err
	}); err != nil {
		return err
	}
	if !fellBack {
		if err := r.step(fileCtx, "keep_failed", r.keepFailed); err != nil {
			return err
		}
	}
	return r.startAndWait(ctx)
}

func (r *runner) uniqueFailedDir() string {
	base := r.cfg.FailedDir(r.start)
	p := base
	for i := 2; install.Exists(p) || install.Exists(p+".staging"); i++ {
		p = fmt.Sprintf("%s-%d", base, i)
	}
	return p
}

func (r *runner) stopService(ctx context.Context) (string, any, error) {
	r.stopped = true
	r.stopAt = r.deps.Now()
	if r.opt.DryRun {
		return "would stop " + r.res.Service + " (timeout " + r.cfg.Service.StopTimeout.String() + ")", nil, nil
	}
	sctx, cancel := context.WithTimeout(ctx, r.cfg.Service.StopTimeout)
	defer cancel()
	seen, err := r.fx.Stop(sctx, r.deps.Service, r.seen)
	// From here only this run's file steps come before its start: the stop's confirmation
	// stands for the check before the start command, while it is fresh.
	r.seen = seen
	if err != nil {
		return "", nil, fmt.Errorf("stop %s: %w", r.res.Service, err)
	}
	return "stopped " + r.res.Service, nil, nil
}

func (r *runner) carryOver(ctx context.Context) (string, any, error) {
	if !install.Exists(r.res.InstallDir) {
		return "install dir is missing; nothing to carry over", nil, nil
	}
	var aside string
	var withData []preservedDB
	if r.opt.WithData && !r.opt.DryRun {
		var err error
		if aside, withData, err = r.withDataAside(); err != nil {
			return "", nil, fmt.Errorf("--with-data: set the backup's databases aside: %w", err)
		}
	}
	st, err := interruptibly(ctx, r, func() (install.CarryStats, error) {
		return r.fx.CarryOver(r.res.InstallDir, r.res.StagingDir, r.cfg.Restore.Preserve)
	})
	if err != nil {
		return "", nil, err
	}
	if r.cfg.Restore.Mode == "overlay" {
		ov, err := interruptibly(ctx, r, func() (install.CarryStats, error) { return r.fx.Overlay(r.res.InstallDir, r.res.StagingDir) })
		if err != nil {
			return "", nil, err
		}
		st.Paths = append(st.Paths, ov.Paths...)
		st.Files += ov.Files
		st.Bytes += ov.Bytes
	}
	if aside != "" {
		if err := r.withDataBack(aside, withData); err != nil {
			return "", nil, fmt.Errorf("--with-data: put the backup's databases back: %w", err)
		}
	}
	r.res.Carried = &st
	withDataNote := ""
	if r.opt.WithData {
		dbs := withData
		if r.opt.DryRun {
			dbs = r.preservedDatabases()
		}
		if len(dbs) > 0 {
			withDataNote = fmt.Sprintf("; --with-data: the backup's own %s instead of the live ones (those stay in the failed install)", dbNames(dbs))
		}
	}
	if r.opt.DryRun {
		return fmt.Sprintf("would copy preserved paths %s from the current install into the restored one (mode %s)%s",
			strings.Join(r.cfg.Restore.Preserve, ", "), r.cfg.Restore.Mode, withDataNote), nil, nil
	}
	if len(st.Paths) == 0 {
		return fmt.Sprintf("none of the preserved paths (%s) exist in the current install%s", strings.Join(r.cfg.Restore.Preserve, ", "), withDataNote), st, nil
	}
	return fmt.Sprintf("copied %d files (%s) of %s%s", st.Files, ui.Bytes(st.Bytes), strings.Join(st.Paths, ", "), withDataNote), st, nil
}

func (r *runner) swap() (bool, error) {
	if !install.Exists(r.res.InstallDir) {
		return true, r.fx.Rename(r.res.StagingDir, r.res.InstallDir)
	}
	return r.fx.Exchange(r.res.InstallDir, r.res.StagingDir, r.res.FailedDir)
}

func (r *runner) swapDetail(fellBack bool) string {
	if r.opt.DryRun {
		return fmt.Sprintf("would swap %s and the staged backup in one rename (RENAME_EXCHANGE)", r.res.InstallDir)
	}
	if fellBack {
		return "swapped with two renames (the filesystem cannot exchange); failed install at " + r.res.FailedDir
	}
	return "swapped atomically (RENAME_EXCHANGE)"
}

func (r *runner) keepFailed(context.Context) (string, any, error) {
	if err := r.fx.Rename(r.res.StagingDir, r.res.FailedDir); err != nil {
		return "", nil, err
	}
	if r.opt.DryRun {
		return "would keep the failed install as " + r.res.FailedDir, nil, nil
	}
	return "failed install kept at " + r.res.FailedDir, nil, nil
}

// startAndWait starts the service and waits until it is healthy.
func (r *runner) startAndWait(ctx context.Context) error {
	if err := r.step(ctx, "start", func(ctx context.Context) (string, any, error) {
		if r.opt.DryRun {
			return "would start " + r.res.Service, nil, nil
		}
		sctx, cancel := context.WithTimeout(ctx, r.cfg.Service.StartTimeout)
		defer cancel()
		seen := r.seen
		r.seen = nothingSeen // once started, what the stop saw says nothing
		if err := r.fx.Start(sctx, r.deps.Service, seen); err != nil {
			return "", nil, fmt.Errorf("start %s: %w: %w", r.res.Service, err, ErrUnhealthy)
		}
		return "started " + r.res.Service, nil, nil
	}); err != nil {
		return err
	}
	return r.step(ctx, "health", r.waitHealthy)
}

func (r *runner) probes() []health.Prober {
	return CriticalProbes(r.deps.Service, r.cfg.Health, r.deps.Probes)
}

// CriticalProbes are the checks of health-check --critical-only and of the
// wait after a start: the service manager says active, and health.url (when
// set) answers 2xx. extra, when not nil, replaces the URL probe.
func CriticalProbes(m service.Manager, h settings.HealthConfig, extra []health.Prober) []health.Prober {
	ps := []health.Prober{health.FuncProbe{Name: "service active", F: func(ctx context.Context) health.Result {
		st, err := m.Status(ctx)
		switch {
		case err != nil:
			return health.Result{Check: "service active", Detail: err.Error()}
		case !st.Active:
			return health.Result{Check: "service active", Detail: fmt.Sprintf("%s is %s", m.Name(), st.State)}
		}
		if st.MainPID > 0 {
			return health.Result{OK: true, Check: "service active", Detail: fmt.Sprintf("%s (pid %d)", st.State, st.MainPID)}
		}
		return health.Result{OK: true, Check: "service active", Detail: st.State}
	}}}
	if extra != nil {
		return append(ps, extra...)
	}
	if h.URL != "" {
		ps = append(ps, &health.HTTPProbe{URL: h.URL, Timeout: h.Timeout})
	}
	return ps
}

func (r *runner) waitHealthy(ctx context.Context) (string, any, error) {
	h := r.cfg.Health
	if r.opt.DryRun {
		what := "the service manager"
		if h.URL != "" {
			what += " and " + h.URL
		}
		return fmt.Sprintf("would wait up to %s for %d consecutive passes of %s", h.WaitTimeout, h.Consecutive, what), nil, nil
	}
	// Downtime ends at the first pass of the streak that counted: from then
	// on the service was answering; the further passes only confirm it.
	var streakStart time.Time
	// The probes of an attempt (the manager's status, the URL) run at the same time: the
	// first attempt, right after the start, is part of command -> healthy.
	results, err := health.WaitHealthy(ctx, health.WaitOptions{
		Interval: h.Interval, Consecutive: h.Consecutive, Timeout: h.WaitTimeout, Concurrent: true,
		OnAttempt: func(_ int, ok bool, _ []health.Result) {
			switch {
			case !ok:
				streakStart = time.Time{}
			case streakStart.IsZero():
				streakStart = r.deps.Now()
			}
		},
	}, r.probes()...)
	r.res.Health = results
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", err, ErrUnhealthy)
	}
	if streakStart.IsZero() {
		streakStart = r.deps.Now()
	}
	r.res.DowntimeMS = streakStart.Sub(r.stopAt).Milliseconds()
	return fmt.Sprintf("healthy: %d consecutive passes", h.Consecutive), map[string]int64{"downtime_ms": r.res.DowntimeMS}, nil
}

// rollbackBeforeSwap undoes a run that failed between stop and swap: the
// install dir was never touched, so drop the staging dir and start the old
// service again, which is the state the run found.
func (r *runner) rollbackBeforeSwap(ctx context.Context) {
	if r.opt.DryRun || Interruption(ctx) != nil {
		return // interrupted: leave it as a kill would, for the next run to undo
	}
	if err := r.fx.RemoveAll(r.res.StagingDir); err != nil {
		r.warn("could not remove staging dir %s: %v (safe to delete by hand)", r.res.StagingDir, err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Service.StartTimeout)
	defer cancel()
	r.seen = nothingSeen
	if err := r.fx.Start(sctx, r.deps.Service, nothingSeen); err != nil {
		r.warn("the old install is untouched but %s did not start again: %v", r.res.Service, err)
		return
	}
	r.info("the install dir was not changed; %s was started again as it was", r.res.Service)
	_ = r.record("note", "", map[string]string{"message": "failed before the swap; install untouched, service started again"})
}

// finish records the outcome and what to do next.
func (r *runner) finish(err error) {
	r.res.DurationMS = r.deps.Now().Sub(r.start).Milliseconds()
	switch {
	case err == nil && r.opt.DryRun:
		r.res.Outcome = "planned"
		for _, s := range r.res.Steps {
			r.res.Plan = append(r.res.Plan, s.Name+": "+s.Detail)
		}
	case err == nil:
		r.res.Outcome = "ok"
		r.res.Next = []string{
			"cfrollback health-check --critical-only",
			"ls -la " + shellQuote(r.res.FailedDir) + "   # the failed install, kept for investigation",
			"cfrollback undo " + r.runID + "   # only if this rollback was the mistake",
		}
		r.res.Next = append(r.res.Next, r.dataNext()...)
	case errors.Is(err, ErrUnhealthy):
		r.res.Outcome = "unhealthy"
		r.res.Next = []string{
			"cfrollback health-check --critical-only",
			"cfrollback undo " + r.runID + "   # put the failed install back",
			"cfrollback emergency --backup OTHER.tar.gz   # try an older backup",
		}
	case errors.Is(err, ErrAfterStop):
		r.res.Outcome = "failed"
		r.res.Next = []string{"cfrollback history", "cfrollback emergency   # resumes or redoes the run"}
	default:
		r.res.Outcome = "preflight_failed"
		r.res.Next = []string{"cfrollback emergency --dry-run", "cfrollback emergency --backup FILE"}
		if r.opt.DryRun {
			r.res.Outcome = "preflight_would_fail"
			r.res.Next = []string{"cfrollback backup list   # what there is to restore", "cfrollback emergency --dry-run --backup FILE"}
		}
	}
	if err != nil {
		r.res.Error = err.Error()
	}
	if r.opt.DryRun {
		return
	}
	if err := r.record(journal.EventOutcome, "", outcomeData{
		Outcome: r.res.Outcome, Backup: backupPath(r.res), FailedDir: r.res.FailedDir,
		DowntimeMS: r.res.DowntimeMS, DurationMS: r.res.DurationMS, Error: r.res.Error,
	}); err != nil {
		r.journalFailed(fmt.Errorf("the outcome of this run (%s) was not journaled: %w", r.res.Outcome, err))
	}
	r.hlog.printf("%s outcome: %s (downtime %d ms)", r.opt.Command, strings.ToUpper(r.res.Outcome), r.res.DowntimeMS)
	r.markOutcome()
	if r.res.FailedDir != "" && install.Exists(r.res.FailedDir) {
		r.hlog.printf("failed deployment backed up to: %s", r.res.FailedDir)
	}
}

func backupPath(res *Result) string {
	if res.Backup == nil {
		return ""
	}
	return res.Backup.Path
}
