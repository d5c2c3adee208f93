package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
)

// DBRestoreOptions are one database restore's choices.
type DBRestoreOptions struct {
	Config settings.Config
	DB     settings.DatabaseRef
	// File is the backup to restore; with Latest, the newest good candidate instead.
	File        string
	Latest      bool
	StopService bool
	// ForceSchema restores a file whose schema lacks or changes part of the live one.
	ForceSchema bool
	DryRun      bool
	Args        []string
	KillAt      string // test hook, as Options.KillAt
}

// DBSkipped is a backup candidate passed over, and why.
type DBSkipped struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// DBRestoreResult is what a database restore did; --json prints it.
type DBRestoreResult struct {
	RunID   string `json:"run_id,omitempty"`
	Command string `json:"command"`
	DryRun  bool   `json:"dry_run"`
	// Outcome: ok, planned (dry run), unhealthy, failed, interrupted, preflight_failed,
	// preflight_would_fail.
	Outcome string `json:"outcome"`
	Name    string `json:"name"`
	sqlitedb.RestoreResult
	Skipped        []DBSkipped                `json:"skipped_backups,omitempty"`
	Schema         *sqlitedb.SchemaComparison `json:"schema,omitempty"`
	ServiceStopped bool                       `json:"service_stopped"`
	Healthy        *bool                      `json:"healthy,omitempty"`
	DowntimeMS     int64                      `json:"downtime_ms,omitempty"`
	Steps          []StepResult               `json:"steps"`
	Plan           []string                   `json:"plan,omitempty"`
	Recovered      *Recovery                  `json:"recovered,omitempty"`
	Journal        string                     `json:"journal,omitempty"`
	Error          string                     `json:"error,omitempty"`
}

// DatabaseRestore replaces one database with a backup as a journaled procedure: the
// backup is chosen and its schema compared before the lock (a refusal changes nothing,
// not even the journal); then lock, intent, recovery of an interrupted database run,
// [stop], restore (the replaced file kept), [start, wait until healthy], outcome.
func DatabaseRestore(ctx context.Context, opt DBRestoreOptions, deps DBDeps) (*DBRestoreResult, error) {
	d := newDBRunner(opt.Config, DBRestoreCommand, opt.DryRun, opt.Args, opt.KillAt, deps)
	if dry, ok := d.fx.(dryRunDBEffects); ok {
		dry.ignoreOpeners = opt.StopService
		d.fx = dry
	}
	res := &DBRestoreResult{Command: DBRestoreCommand, DryRun: opt.DryRun, Name: opt.DB.Name, Steps: []StepResult{}}
	target := opt.Config.DatabasePath(opt.DB)
	res.Target = target
	backupFile, err := d.chooseBackup(ctx, opt, res)
	if err == nil {
		err = d.checkSchema(ctx, opt, backupFile, target, res)
	}
	if err != nil {
		return d.refuseRestore(ctx, res, err)
	}
	res.Backup = backupFile
	release, err := d.begin()
	if err != nil {
		return d.refuseRestore(ctx, res, err)
	}
	defer release()
	res.RunID, res.Journal = d.runID, d.res.Journal
	err = d.restore(ctx, opt, res, backupFile, target)
	return d.finishRestore(ctx, res, err)
}

func (d *dbRunner) refuseRestore(ctx context.Context, res *DBRestoreResult, err error) (*DBRestoreResult, error) {
	if c := Interruption(ctx); c != nil {
		err = d.interruptedDB(c, "preflight", "")
	}
	res.Outcome = "preflight_failed"
	if d.opt.DryRun {
		res.Outcome = "preflight_would_fail"
	}
	res.Error = err.Error()
	return res, err
}

func (d *dbRunner) restore(ctx context.Context, opt DBRestoreOptions, res *DBRestoreResult, backupFile, target string) error {
	summary := fmt.Sprintf("restore database %s (%s) from %s", opt.DB.Name, target, filepath.Base(backupFile))
	if opt.StopService {
		summary += "; the service is stopped for it"
	}
	if err := d.intent(ctx, dbIntent{Databases: []string{opt.DB.Name}, Target: target, Backup: backupFile, StopService: opt.StopService}, summary); err != nil {
		return err
	}
	rec, err := d.recoverDB(ctx)
	res.Recovered = rec
	if err != nil {
		return err
	}
	if opt.StopService {
		if _, err := d.step(ctx, "stop", d.stopForDB); err != nil {
			return d.notReplaced(ctx, err, "the database was not touched")
		}
		res.ServiceStopped = !d.opt.DryRun
	}
	replaced, err := d.step(ctx, "restore", func(ctx context.Context) (string, any, error) {
		rr, err := d.fx.RestoreDB(ctx, backupFile, target, sqlitedb.RestoreOptions{
			BusyTimeout: d.cfg.Database.BusyTimeout, Now: d.deps.Now,
			Progress: func(s string) { d.info("%s", s) },
		})
		res.RestoreResult = rr
		if err != nil {
			return "", nil, err
		}
		if d.opt.DryRun {
			return fmt.Sprintf("would replace %s with %s, keeping the current file as %s", target, backupFile, keptName(target, d.start)), nil, nil
		}
		kept := "(there was no database to keep)"
		if rr.Failed != nil {
			kept = fmt.Sprintf("%s (quick_check %s)", rr.Failed.Path, rr.Failed.Integrity)
		}
		return fmt.Sprintf("restored %s from %s; the replaced database is kept as %s", target, backupFile, kept), rr, nil
	})
	if err != nil && !replaced {
		return d.notReplaced(ctx, err, "the database was not replaced")
	}
	if err != nil {
		return d.afterRestoreFailed(ctx, err, opt.DB, res, false)
	}
	if !opt.StopService {
		return nil
	}
	started, err := d.step(ctx, "start", func(ctx context.Context) (string, any, error) {
		if d.opt.DryRun {
			return "would start " + d.m.Name(), nil, nil
		}
		sctx, cancel := context.WithTimeout(ctx, d.cfg.Service.StartTimeout)
		defer cancel()
		if err := d.fx.Start(sctx, d.m); err != nil {
			return "", nil, fmt.Errorf("start %s: %w: %w", d.m.Name(), err, ErrUnhealthy)
		}
		return "started " + d.m.Name(), nil, nil
	})
	if err != nil {
		return d.afterRestoreFailed(ctx, err, opt.DB, res, started)
	}
	_, err = d.step(ctx, "health", d.waitHealthy)
	ok := err == nil
	if !d.opt.DryRun {
		res.Healthy = &ok
	}
	res.DowntimeMS = d.res.DowntimeMS
	if err != nil {
		return d.afterRestoreFailed(ctx, err, opt.DB, res, true)
	}
	return nil
}

// afterRestoreFailed is a failure once the database was replaced: a journal write that
// failed, an interrupt, a start that failed, a service that did not become healthy. A
// service this run stopped and did not start yet is started again (the restore is done:
// starting is what the run would do next); the hint says what is where.
func (d *dbRunner) afterRestoreFailed(ctx context.Context, err error, db settings.DatabaseRef, res *DBRestoreResult, started bool) error {
	cause := Interruption(ctx)
	if d.stopped && !started && (cause != nil || errors.Is(err, ErrJournal)) {
		if serr := d.startAgain(ctx); serr != nil {
			err = fmt.Errorf("%w; %w", err, serr)
		} else {
			started = true
		}
	}
	service := "check the app with 'cfrollback health-check'"
	if d.stopped && started {
		service = "the service was started again; check it with 'cfrollback health-check'"
	} else if d.stopped {
		service = "the service is down: start it and check it with 'cfrollback health-check'"
	}
	switch {
	case cause != nil:
		return d.interruptedDB(cause, stepOf(err), fmt.Sprintf("the database WAS restored from %s%s; %s", res.Backup, keptNote(res), service))
	case errors.Is(err, ErrJournal):
		hint := fmt.Sprintf("the database WAS restored from %s%s; %s. The run's record is incomplete ('cfrollback history' shows it unfinished): fix the journal (path, permissions, disk space)",
			res.Backup, keptNote(res), service)
		if !d.stopped {
			return &ChangedError{Step: stepOf(err), Err: err, Hint: hint}
		}
		return d.withHint(err, hint)
	}
	return d.withHint(err, d.undoHint(db, res))
}

func (d *dbRunner) stopForDB(ctx context.Context) (string, any, error) {
	m, err := d.manager(ctx)
	if err != nil {
		return "", nil, err
	}
	if d.opt.DryRun {
		return fmt.Sprintf("would stop %s (timeout %s)", m.Name(), d.cfg.Service.StopTimeout), nil, nil
	}
	d.stopped = true
	d.stopAt = d.deps.Now()
	sctx, cancel := context.WithTimeout(ctx, d.cfg.Service.StopTimeout)
	defer cancel()
	if err := d.fx.Stop(sctx, m); err != nil {
		return "", nil, fmt.Errorf("stop %s: %w", m.Name(), err)
	}
	return "stopped " + m.Name(), nil, nil
}

// notReplaced ends a run that failed before the database was replaced: a service it
// stopped is started again, and the hint says so.
func (d *dbRunner) notReplaced(ctx context.Context, err error, state string) error {
	var iu *sqlitedb.InUseError
	hint := "nothing was changed; fix the cause above and run it again"
	switch {
	case errors.Is(err, ErrJournal):
		hint = "nothing was changed; fix the journal (its path, permissions or disk space: 'cfrollback settings' shows where it is) and run it again"
	case errors.As(err, &iu):
		hint = "nothing was changed; stop those processes, or run again with --stop-service (stop the service, restore, start it, wait until healthy)"
	case errors.Is(err, sqlitedb.ErrCorrupt):
		hint = "nothing was changed; pick another backup with --file, or --latest to take the newest good one"
	}
	if c := Interruption(ctx); c != nil && !d.stopped {
		return d.interruptedDB(c, stepOf(err), "")
	}
	if !d.stopped {
		return d.withHint(err, hint)
	}
	if serr := d.startAgain(ctx); serr != nil {
		return d.withHint(fmt.Errorf("%w; %w", err, serr),
			state+", but the service is down: start it ('systemctl start' or 'pm2 start') and check it with 'cfrollback health-check'")
	}
	if c := Interruption(ctx); c != nil {
		return d.interruptedDB(c, stepOf(err), state+"; the service was started again")
	}
	return d.withHint(err, state+" and the service was started again; "+hint[len("nothing was changed; "):])
}

// withHint sets the hint of err's *StepError (every step error is one).
func (d *dbRunner) withHint(err error, hint string) error {
	var se *StepError
	if errors.As(err, &se) {
		se.Hint = hint
		return err
	}
	return &StepError{Step: "run", AfterStop: d.stopped, Err: err, Hint: hint}
}

func stepOf(err error) string {
	var se *StepError
	if errors.As(err, &se) {
		return se.Step
	}
	return "run"
}

func keptNote(res *DBRestoreResult) string {
	if res.Failed == nil {
		return ""
	}
	return "; the replaced database is kept as " + res.Failed.Path
}

func (d *dbRunner) undoHint(db settings.DatabaseRef, res *DBRestoreResult) string {
	if res.Failed == nil {
		return "the database was restored; check the service's logs"
	}
	return fmt.Sprintf("the database was restored and the replaced one is kept; to put it back: cfrollback database restore --db %s --file %s --stop-service", db.Name, res.Failed.Path)
}

// keptName is roughly where Restore keeps the replaced file (for a plan).
func keptName(target string, t time.Time) string {
	stem := filepath.Base(target)
	stem = stem[:len(stem)-len(filepath.Ext(stem))]
	return filepath.Join(filepath.Dir(target), stem+"-failed-"+t.Format(sqlitedb.TimestampLayout)+".db")
}

// finishRestore sets the outcome, journals it and fills the plan of a dry run.
func (d *dbRunner) finishRestore(ctx context.Context, res *DBRestoreResult, err error) (*DBRestoreResult, error) {
	res.Steps = d.steps
	res.Outcome = outcomeOf(ctx, err, d.opt.DryRun)
	if d.opt.DryRun && err == nil {
		for _, s := range d.steps {
			res.Plan = append(res.Plan, s.Name+": "+s.Detail)
		}
	}
	var kept []string
	if res.Failed != nil {
		kept = append(kept, res.Failed.Path)
	}
	err = d.finish(ctx, dbOutcome{Outcome: res.Outcome, Backup: res.Backup, Kept: kept, DowntimeMS: res.DowntimeMS}, err)
	if err != nil {
		res.Error = err.Error()
	}
	return res, err
}

// outcomeOf names a database run's end for the journal and --json.
func outcomeOf(ctx context.Context, err error, dryRun bool) string {
	var ce *ChangedError
	switch {
	case err == nil && dryRun:
		return "planned"
	case err == nil:
		return "ok"
	case Interruption(ctx) != nil:
		return "interrupted"
	case errors.Is(err, ErrUnhealthy):
		return "unhealthy"
	case errors.Is(err, ErrAfterStop), errors.As(err, &ce), errors.Is(err, ErrJournal) && !errors.Is(err, ErrPreflight):
		return "failed"
	case dryRun:
		return "preflight_would_fail"
	}
	return "preflight_failed"
}

// chooseBackup returns --file, or for --latest the newest candidate that passes its
// checksum and integrity_check (each one skipped is reported loudly).
func (d *dbRunner) chooseBackup(ctx context.Context, opt DBRestoreOptions, res *DBRestoreResult) (string, error) {
	hint := "nothing was changed; name a backup with --file FILE, or make one with 'cfrollback database backup'"
	if opt.File != "" {
		if _, err := os.Stat(opt.File); err != nil {
			return "", &StepError{Step: "preflight", Hint: hint,
				Err: fmt.Errorf("backup %s: %w; 'ls %s' shows the database backups", opt.File, err, opt.Config.Database.BackupDir)}
		}
		return opt.File, nil
	}
	name := opt.DB.Name
	cands := DBCandidates(opt.Config, name)
	if len(cands) == 0 {
		return "", &StepError{Step: "preflight", Hint: hint, Err: fmt.Errorf("no backup of database %s: nothing matches %s-backup-*.db in %s or %s; make one with 'cfrollback database backup --db %s'",
			name, name, opt.Config.Database.BackupDir, filepath.Join(opt.Config.InstallDir, "backups"), name)}
	}
	c, _, ok, err := sqlitedb.NewestGood(ctx, cands, opt.Config.Database.BusyTimeout, func(c sqlitedb.Candidate, reason string) {
		res.Skipped = append(res.Skipped, DBSkipped{Name: name, Path: c.Path, Reason: reason})
		d.event(Event{Kind: "skip", Message: fmt.Sprintf("backup %s: %s", c.Path, reason)})
	})
	if err != nil {
		return "", &StepError{Step: "preflight", Err: err, Hint: hint}
	}
	if !ok {
		return "", &StepError{Step: "preflight", Hint: hint,
			Err: fmt.Errorf("no usable backup of database %s: all %d candidates failed their checks (listed above); nothing was changed", name, len(cands))}
	}
	return c.Path, nil
}

// DBCandidates lists <name>-backup-*.db in database.backup_dir and in the seed's
// <install>/backups, newest first.
func DBCandidates(cfg settings.Config, name string) []sqlitedb.Candidate {
	return sqlitedb.Candidates(name, cfg.Database.BackupDir, filepath.Join(cfg.InstallDir, "backups"))
}

// checkSchema compares the backup's schema with the live database's. What the backup
// lacks or declares otherwise refuses the restore unless ForceSchema; what it only adds
// is a warning.
func (d *dbRunner) checkSchema(ctx context.Context, opt DBRestoreOptions, backupFile, target string, res *DBRestoreResult) error {
	cmp, err := sqlitedb.CompareSchema(ctx, backupFile, target, opt.Config.Database.BusyTimeout)
	if err != nil {
		return &StepError{Step: "preflight", Err: err,
			Hint: "nothing was changed; pick another backup with --file, or --latest to take the newest good one"}
	}
	res.Schema = &cmp
	if !cmp.Compared {
		d.info("schema not compared: %s", cmp.Note)
		return nil
	}
	conflicts, additions := cmp.Conflicts(), cmp.Additions()
	if len(conflicts) > 0 && !opt.ForceSchema {
		return &StepError{Step: "preflight",
			Err: &sqlitedb.SchemaMismatchError{Live: target, File: backupFile, Conflicts: conflicts, Additions: additions},
			Hint: fmt.Sprintf("nothing was changed; pick the backup made for this schema (--file), or, if the app will run on the backup's schema "+
				"(the code was rolled back with it), restore it anyway: cfrollback database restore --db %s --file %s --force-schema", opt.DB.Name, backupFile)}
	}
	if len(conflicts) > 0 {
		d.warn("--force-schema: restoring a backup whose schema does not match the live database's (%d difference(s)):%s",
			len(conflicts), sqlitedb.FormatSchemaChanges(conflicts, sqlitedb.MaxSchemaLines))
	}
	if len(additions) > 0 {
		d.warn("the backup's schema adds to the live database's (%d addition(s); allowed: a newer schema is a superset):%s",
			len(additions), sqlitedb.FormatSchemaChanges(additions, sqlitedb.MaxSchemaLines))
	}
	return nil
}
