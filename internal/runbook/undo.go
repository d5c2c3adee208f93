package runbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/journal"
)

// ErrUnknownRun means the journal has no such run, or not one undo can act on.
var ErrUnknownRun = errors.New("no such run to undo")

type undoIntent struct {
	Command    string         `json:"command"`
	Target     string         `json:"target_run"`
	User       string         `json:"user"`
	Host       string         `json:"host"`
	PID        int            `json:"pid"`
	InstallDir string         `json:"install_dir"`
	FailedDir  string         `json:"failed_dir"`
	KeptDir    string         `json:"kept_dir"`
	FailedID   install.FileID `json:"failed_id"`
}

// Undo puts back the install that run targetID replaced, for when the
// rollback itself was the mistake. The restored install is not deleted: it
// is kept at <install>-undone-<ts>, with any data written since the rollback.
func Undo(ctx context.Context, targetID string, opt Options, deps Deps) (*Result, error) {
	opt.Command = "undo"
	r := newRunner(opt, deps)
	it, err := undoTarget(r.cfg.Journal, targetID)
	if err != nil {
		return r.refuse(&StepError{Step: "preflight", Err: err})
	}
	res, err := r.run(ctx, func(ctx context.Context) error { return r.undo(ctx, it) })
	if err == nil && !r.opt.DryRun {
		r.res.Next = []string{
			"cfrollback health-check --critical-only",
			"ls -la " + shellQuote(r.res.KeptDir) + "   # the install the rollback had restored, with data written since",
		}
	}
	return res, err
}

func undoTarget(journalPath, targetID string) (*interrupted, error) {
	jc, err := journal.ReadChecked(journalPath)
	if err != nil {
		return nil, fmt.Errorf("read journal %s: %w", journalPath, err)
	}
	recs := jc.Records
	prev, prevID, prevFinished := lastUndoOf(recs, targetID)
	for _, run := range journal.Runs(recs) {
		if run.ID != targetID {
			continue
		}
		if !jc.Trusted(run) {
			// Undo renames the dirs its records name: not on records that may have been
			// edited. (An emergency still runs on a damaged journal; undo is not urgent.)
			return nil, fmt.Errorf("%w: run %s is not vouched for by the journal's hash chain (%s); nothing was changed. Check it with 'cfrollback journal verify' and put the install back by hand from the failed dir if you must",
				ErrUnknownRun, targetID, jc.Problems[0])
		}
		it := &interrupted{runID: run.ID}
		for _, rec := range run.Records {
			switch {
			case rec.Event == journal.EventIntent:
				_ = json.Unmarshal(rec.Data, &it.intent)
			case rec.Event == journal.EventStepDone && rec.Step == "preflight":
				var p struct {
					Data stagedData `json:"data"`
				}
				if json.Unmarshal(rec.Data, &p) == nil && p.Data.Backup != "" {
					it.staged = &p.Data
				}
			}
		}
		switch {
		case it.intent.Command != "emergency" && it.intent.Command != "rollback":
			return nil, fmt.Errorf("%w: run %s is a %q run; only emergency and rollback runs can be undone", ErrUnknownRun, targetID, it.intent.Command)
		case run.Unfinished():
			return nil, fmt.Errorf("%w: run %s never finished; run 'cfrollback emergency' first, which completes or undoes it", ErrUnknownRun, targetID)
		case !install.Exists(it.intent.FailedDir) && prev != nil && !prevFinished && resumable(prev):
			// An undo killed after it had put the failed install back and kept the
			// restored one: finish it (restart the service) instead of refusing.
			it.resume, it.resumeID = prev, prevID
		case !install.Exists(it.intent.FailedDir) && prev != nil && prevFinished:
			return nil, fmt.Errorf("%w: run %s was undone already, by run %s (the install it had restored is kept at %s)", ErrUnknownRun, targetID, prevID, prev.KeptDir)
		case !install.Exists(it.intent.FailedDir):
			return nil, fmt.Errorf("%w: run %s kept no failed install at %s (it ended %q, or the dir was removed)", ErrUnknownRun, targetID, it.intent.FailedDir, run.Outcome)
		}
		return it, nil
	}
	return nil, fmt.Errorf("%w: %s is not in the journal %s; 'cfrollback history' lists runs", ErrUnknownRun, targetID, journalPath)
}

// lastUndoOf returns the intent of the newest undo of run targetID in recs, its run id,
// and whether it finished.
func lastUndoOf(recs []journal.Record, targetID string) (*undoIntent, string, bool) {
	var last *undoIntent
	var lastID string
	finished := false
	for _, run := range journal.Runs(recs) {
		for _, rec := range run.Records {
			if rec.Event != journal.EventIntent {
				continue
			}
			var ui undoIntent
			if json.Unmarshal(rec.Data, &ui) == nil && ui.Command == "undo" && ui.Target == targetID {
				last, lastID, finished = &ui, run.ID, !run.Unfinished()
			}
		}
	}
	return last, lastID, finished
}

// resumable says whether an interrupted undo got past its swap and keep steps: the
// failed install it put back is at the install path, the restored one at its kept dir.
func resumable(u *undoIntent) bool {
	id, err := install.IDOf(u.InstallDir)
	return err == nil && id == u.FailedID && install.Exists(u.KeptDir)
}

func (r *runner) undo(ctx context.Context, it *interrupted) error {
	failed := it.intent.FailedDir
	r.res.FailedDir = failed
	r.res.KeptDir = fmt.Sprintf("%s-undone-%s", r.res.InstallDir, r.start.Format("20060102-150405"))
	if it.intent.InstallDir != r.res.InstallDir {
		return &StepError{Step: "preflight", Err: fmt.Errorf("run %s restored %s, but install_dir is %s now", it.runID, it.intent.InstallDir, r.res.InstallDir)}
	}
	// The failed install is renamed back and the restored one kept, in install_dir's
	// parent, as root: the same rule as the emergency's staging and failed dirs.
	if err := fsutil.CheckTrustedDir(filepath.Dir(r.res.InstallDir)); err != nil {
		return &StepError{Step: "preflight", Err: fmt.Errorf("parent of install_dir (where undo renames): %w", err)}
	}
	var failedID install.FileID
	if it.resume != nil {
		r.res.KeptDir, failedID = it.resume.KeptDir, it.resume.FailedID
		r.warn("undo %s was interrupted after it had put the failed install back; completing it", it.resumeID)
	} else {
		var err error
		if failedID, err = install.IDOf(failed); err != nil {
			return &StepError{Step: "preflight", Err: err}
		}
	}
	host, _ := os.Hostname()
	if err := r.record(journal.EventIntent, "", undoIntent{Command: "undo", Target: it.runID, User: whoami(), Host: host, PID: os.Getpid(),
		InstallDir: r.res.InstallDir, FailedDir: failed, KeptDir: r.res.KeptDir, FailedID: failedID}); err != nil {
		return &StepError{Step: "journal", Err: err}
	}
	r.notifyStarting(ctx)
	if err := r.step(ctx, "stop", r.stopService); err != nil {
		return err
	}
	fileCtx := context.WithoutCancel(ctx)
	if err := r.step(fileCtx, "swap", func(context.Context) (string, any, error) {
		// An earlier undo killed after its swap left the restored tree at
		// the failed dir's path: swapping again would undo the undo.
		if it.resume != nil {
			return "already swapped by the interrupted undo " + it.resumeID, nil, nil
		}
		if it.staged != nil && failedID == it.staged.StagingID {
			return "already swapped by an interrupted undo; completing it", nil, nil
		}
		if _, err := r.fx.Exchange(r.res.InstallDir, failed, r.res.KeptDir); err != nil {
			return "", nil, err
		}
		if r.opt.DryRun {
			return fmt.Sprintf("would swap %s with the failed install %s", r.res.InstallDir, failed), nil, nil
		}
		return "the failed install of run " + it.runID + " is back in place", nil, nil
	}); err != nil {
		return err
	}
	if err := r.step(fileCtx, "keep_restored", func(context.Context) (string, any, error) {
		if it.resume != nil {
			return "restored install already kept at " + r.res.KeptDir + " by the interrupted undo " + it.resumeID, nil, nil
		}
		if install.Exists(failed) {
			if err := r.fx.Rename(failed, r.res.KeptDir); err != nil {
				return "", nil, err
			}
		}
		if r.opt.DryRun {
			return "would keep the restored install as " + r.res.KeptDir, nil, nil
		}
		return "restored install kept at " + r.res.KeptDir, nil, nil
	}); err != nil {
		return err
	}
	if err := r.step(ctx, "start", func(ctx context.Context) (string, any, error) {
		if r.opt.DryRun {
			return "would start " + r.res.Service, nil, nil
		}
		sctx, cancel := context.WithTimeout(ctx, r.cfg.Service.StartTimeout)
		defer cancel()
		if err := r.fx.Start(sctx, r.deps.Service, nothingSeen); err != nil {
			return "", nil, fmt.Errorf("start %s: %w", r.res.Service, err)
		}
		return "started " + r.res.Service, nil, nil
	}); err != nil {
		return err
	}
	// Undo puts back a version that was judged broken: report its health
	// without failing on it.
	if !r.opt.DryRun {
		ok, results := health.All(ctx, r.probes()...)
		r.res.Health = results
		if !ok {
			r.warn("the install put back by undo is not healthy, as expected of a failed deploy; the rolled-back one is at %s", r.res.KeptDir)
		} else {
			r.res.DowntimeMS = r.deps.Now().Sub(r.stopAt).Milliseconds()
		}
	}
	return nil
}
