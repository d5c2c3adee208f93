package runbook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/journal"
)

// interrupted is what the journal says about a run that has no outcome.
type interrupted struct {
	runID   string
	intent  intentData
	staged  *stagedData
	stopped bool // its stop step began
	// resume, for undo: an earlier undo of this run that was killed after its swap
	// and keep steps, and its run id.
	resume   *undoIntent
	resumeID string
}

// findInterrupted returns the newest swap-capable run (emergency, rollback)
// that has an intent but no outcome.
// A journal damaged in the middle (a malformed line, or records that fail
// the hash chain) must not block a P0 rollback: its readable records are
// used, and each skipped line or the first chain problem is named in warn.
//
// Only the part of each journal where a run can still be unfinished is read (readRuns); the
// parts passed over are returned, for checkUnread once the run is over.
func findInterrupted(exclude string, warn func(string, ...any), paths ...string) (*interrupted, []unreadPart, error) {
	runs, unread, err := readRuns(warn, paths...)
	if err != nil {
		return nil, nil, err
	}
	return newestInterrupted(runs, exclude), unread, nil
}

// unreadPart is the start of a journal that recovery did not read: the records before seq
// from, where the journal's head says no run can be unfinished (journal.ReadRecent).
type unreadPart struct {
	path string
	from int64
}

// checkUnread reads whole the journals whose start recovery passed over and warns about
// what a whole read finds wrong (a line that is no record, a record edited), as recovery did
// before it read only where a run can be unfinished: the damage is still said, but after
// the outcome, off the way to a healthy service, and it changes nothing recovery decided
// (it never relied on those records).
func checkUnread(warn func(string, ...any), unread []unreadPart) {
	for _, u := range unread {
		jc, err := journal.ReadChecked(u.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			warn("the journal %s cannot be read whole (%v); this run's recovery read it from seq %d on, where its oldest unfinished run starts, and that part holds. 'cfrollback journal verify' shows what is wrong",
				u.path, err, u.from)
		case jc.Warning(u.path) != "":
			warn("%s; this run's recovery read it from seq %d on, where its oldest unfinished run starts, and that part holds", jc.Warning(u.path), u.from)
		}
	}
}

// readRuns reads the runs of the journals at paths (the set-aside one first), leniently: see
// findInterrupted. Only the part of each journal where a run can still be unfinished is read
// (journal.ReadRecent: from the intent of the oldest run without an outcome, as the head
// records it), so a run's cost does not grow with the journal; runs that started before it
// show only their later records and are never unfinished. Callers look only at unfinished
// runs and at runs that started after them.
func readRuns(warn func(string, ...any), paths ...string) ([]journal.Run, []unreadPart, error) {
	var recs []journal.Record
	var unread []unreadPart
	for _, path := range paths {
		if path == "" {
			continue
		}
		jc, err := journal.ReadRecent(path)
		rs := jc.Records
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil && jc.From > 1 {
			unread = append(unread, unreadPart{path: path, from: jc.From})
		}
		if w := jc.Warning(path); err == nil && w != "" {
			// Still used: an emergency must not be blocked by a damaged journal, and
			// recovery checks the disk (install ids) before it renames anything.
			warn("%s; recovery uses its records as they are", w)
		}
		if err != nil {
			var skipped []int
			rs, skipped, err = readLenient(path)
			if err != nil {
				return nil, nil, fmt.Errorf("read journal %s: %w", path, err)
			}
			warn("the journal %s has %d unreadable line(s) (line %v); recovery used the readable records. 'cfrollback journal verify' shows what is wrong",
				path, len(skipped), skipped)
		}
		recs = append(recs, rs...)
	}
	return journal.Runs(recs), unread, nil
}

// newestInterrupted is the newest emergency or rollback run in runs, but exclude, that has
// an intent and no outcome.
func newestInterrupted(runs []journal.Run, exclude string) *interrupted {
	for i := len(runs) - 1; i >= 0; i-- {
		run := runs[i]
		if !run.Unfinished() || run.ID == exclude {
			continue
		}
		var it interrupted
		it.runID = run.ID
		for _, rec := range run.Records {
			switch {
			case rec.Event == journal.EventIntent:
				_ = json.Unmarshal(rec.Data, &it.intent)
			case rec.Event == journal.EventStepStart && rec.Step == "stop":
				it.stopped = true
			case rec.Event == journal.EventStepDone && rec.Step == "preflight":
				var p struct {
					Data stagedData `json:"data"`
				}
				if json.Unmarshal(rec.Data, &p) == nil && p.Data.Backup != "" {
					it.staged = &p.Data
				}
			}
		}
		if it.intent.Command != "emergency" && it.intent.Command != "rollback" {
			continue
		}
		return &it
	}
	return nil
}

// recoverInterrupted finishes or undoes a run that was killed. It reports
// done when it completed that run (so this run must not roll back again).
func (r *runner) recoverInterrupted(ctx context.Context) (done bool, err error) {
	it, unread, err := findInterrupted(r.runID, r.warn, r.journalAside, r.cfg.Journal)
	r.journalUnread = unread
	if err != nil {
		return false, &StepError{Step: "recover", Err: err,
			Hint: "run 'cfrollback journal verify' to see what is wrong with the journal"}
	}
	if it == nil {
		return false, nil
	}
	// A recovery may start the service: the emergency's read of its state ahead of preflight
	// ends here, unused, and preflight reads it again.
	r.lookAhead.abandon()
	r.lookAhead = nil
	if it.intent.InstallDir != r.res.InstallDir {
		r.warn("run %s was interrupted on another install dir (%s); leaving it alone", it.runID, it.intent.InstallDir)
		return false, nil
	}
	swapped := false
	if it.staged != nil {
		if id, err := install.IDOf(r.res.InstallDir); err == nil && id == it.staged.StagingID {
			swapped = true
		}
	}
	// The two-rename fallback can be cut between its renames: the install
	// path is empty and the staged tree is still at its staging path.
	if !swapped && !install.Exists(r.res.InstallDir) && it.staged != nil && install.Exists(it.intent.StagingDir) {
		if id, err := install.IDOf(it.intent.StagingDir); err == nil && id == it.staged.StagingID {
			if r.opt.DryRun {
				swapped = true
			} else if err := install.Rename(it.intent.StagingDir, r.res.InstallDir); err != nil {
				return false, &StepError{Step: "recover", Err: err, AfterStop: true}
			} else {
				swapped = true
			}
		}
	}
	if swapped {
		return true, r.completeInterrupted(ctx, it)
	}
	return false, r.abandonInterrupted(ctx, it)
}

// completeInterrupted takes over a run killed after its swap: the restored
// install is in place; keep the failed one under its name, start, wait.
func (r *runner) completeInterrupted(ctx context.Context, it *interrupted) error {
	r.warn("run %s was interrupted after its swap; completing it (backup %s)", it.runID, it.staged.Backup)
	rec := &Recovery{RunID: it.runID, Action: "completed", Detail: "the restored install was already in place; kept the failed install, started and waited for health"}
	r.res.Recovered = rec
	r.res.StagingDir = it.intent.StagingDir
	r.res.FailedDir = it.intent.FailedDir
	r.res.Backup = nil
	r.res.BackupSHA = it.staged.SHA256
	if c, err := backup.Lookup("", it.staged.Backup); err == nil {
		r.res.Backup = &c
	}
	if err := r.step(context.WithoutCancel(ctx), "recover", func(context.Context) (string, any, error) {
		if install.Exists(it.intent.StagingDir) && !install.Exists(it.intent.FailedDir) {
			if err := r.fx.Rename(it.intent.StagingDir, it.intent.FailedDir); err != nil {
				return "", nil, err
			}
		}
		return fmt.Sprintf("completed interrupted run %s; failed install at %s", it.runID, it.intent.FailedDir), rec, nil
	}); err != nil {
		return err
	}
	r.stopped = true
	r.stopAt = r.deps.Now()
	err := r.startAndWait(ctx)
	if !r.opt.DryRun {
		outcome := "completed_by " + r.runID
		if err != nil {
			outcome = "unhealthy_after_recovery by " + r.runID
		}
		r.closeRun(it.runID, outcomeData{Outcome: outcome, Backup: it.staged.Backup, FailedDir: it.intent.FailedDir})
	}
	return err
}

// abandonInterrupted undoes a run killed before its swap: the install dir is
// untouched; drop its staging dir and, if it had stopped the service, start
// the service again so this run begins from the state that run found.
func (r *runner) abandonInterrupted(ctx context.Context, it *interrupted) error {
	r.warn("run %s was interrupted before its swap; the install dir is untouched, undoing its staging", it.runID)
	rec := &Recovery{RunID: it.runID, Action: "abandoned", Detail: "interrupted before the swap; staging removed"}
	r.res.Recovered = rec
	return r.step(ctx, "recover", func(ctx context.Context) (string, any, error) {
		if it.intent.StagingDir != "" && install.Exists(it.intent.StagingDir) {
			if err := r.fx.RemoveAll(it.intent.StagingDir); err != nil {
				return "", nil, fmt.Errorf("remove staging dir %s of run %s: %w", it.intent.StagingDir, it.runID, err)
			}
		}
		if it.stopped && !r.opt.DryRun {
			if st, err := r.deps.Service.Status(ctx); err == nil && !st.Active {
				sctx, cancel := context.WithTimeout(ctx, r.cfg.Service.StartTimeout)
				defer cancel()
				if err := r.fx.Start(sctx, r.deps.Service, nothingSeen); err != nil {
					r.warn("could not start %s again after the interrupted run: %v", r.res.Service, err)
				} else {
					rec.Detail += "; service started again"
				}
			}
		}
		if !r.opt.DryRun {
			r.closeRun(it.runID, outcomeData{Outcome: "abandoned by " + r.runID})
		}
		return fmt.Sprintf("undid interrupted run %s (%s)", it.runID, rec.Detail), rec, nil
	})
}

// readLenient reads every line of a journal that parses as a record and
// returns the numbers of the lines that do not.
func readLenient(path string) ([]journal.Record, []int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var recs []journal.Record
	var skipped []int
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var rec journal.Record
		if err := json.Unmarshal(line, &rec); err != nil || rec.RunID == "" || rec.Event == "" {
			skipped = append(skipped, i+1)
			continue
		}
		recs = append(recs, rec)
	}
	return recs, skipped, nil
}
