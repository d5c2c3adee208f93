package runbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/cfrollback/cfrollback/internal/journal"
)

// dbInterrupted is what the journal says about a database run that has no outcome: it
// was killed (an interrupted one records its outcome).
type dbInterrupted struct {
	runID  string
	intent dbIntent
	// stopped: its stop step began; replacing: its restore step began but did not end;
	// replaced: its restore step ended; started: its start step ended.
	stopped, replacing, replaced, started bool
}

// findDBInterrupted returns the newest database run with an intent and no outcome. A
// journal that cannot be read is warned about and passed over: recovery must not block
// the run that would repair or restore the database.
func (d *dbRunner) findDBInterrupted() *dbInterrupted {
	var recs []journal.Record
	for _, path := range []string{d.journalAside, d.cfg.Journal} {
		if path == "" {
			continue
		}
		jc, err := journal.ReadRecent(path) // only unfinished runs are looked at
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			d.warn("read journal %s to look for an interrupted database run: %v; none is recovered. 'cfrollback journal verify' shows what is wrong", path, err)
			continue
		}
		recs = append(recs, jc.Records...)
	}
	runs := journal.Runs(recs)
	for i := len(runs) - 1; i >= 0; i-- {
		run := runs[i]
		if run.ID == d.runID || !run.Unfinished() || (run.Command != DBRestoreCommand && run.Command != DBRepairCommand) {
			continue
		}
		it := &dbInterrupted{runID: run.ID}
		for _, rec := range run.Records {
			switch {
			case rec.Event == journal.EventIntent:
				_ = json.Unmarshal(rec.Data, &it.intent)
			case rec.Event == journal.EventStepStart && rec.Step == "stop":
				it.stopped = true
			case rec.Event == journal.EventStepStart && rec.Step == "restore":
				it.replacing = true
			case rec.Event == journal.EventStepDone && rec.Step == "restore":
				it.replacing, it.replaced = false, true
			case rec.Event == journal.EventStepFailed && rec.Step == "restore":
				it.replacing = false
			case rec.Event == journal.EventStepDone && rec.Step == "start":
				it.started = true
			}
		}
		return it
	}
	return nil
}

// recoverDB deals with a database run that was killed. A killed repair changed nothing
// it would not finish itself (Repair replaces the file in one rename), so it is only
// closed. A killed restore that had stopped the service leaves it stopped: it is started
// again when that is safe, that is when the database is either untouched or restored
// (the kill was before or after the restore step). A kill inside the restore step may
// have left the old file without its -wal (set aside next to the kept copy): starting
// the app on it would write on top of an older state, so the service is left stopped and
// the warning says to run the restore again, which finishes it.
func (d *dbRunner) recoverDB(ctx context.Context) (*Recovery, error) {
	it := d.findDBInterrupted()
	if it == nil {
		return nil, nil
	}
	rec := &Recovery{RunID: it.runID, Action: "closed"}
	_, err := d.step(ctx, "recover", func(ctx context.Context) (string, any, error) {
		switch {
		case !it.stopped || it.started:
			rec.Detail = fmt.Sprintf("%s run %s was killed; the service was not left stopped by it", it.intent.Command, it.runID)
		case it.replacing && d.serviceActive(ctx):
			rec.Detail = fmt.Sprintf("run %s ended inside its restore of %s without recording how (killed, or its journal failed); the service is running. 'cfrollback database check --db NAME' checks the database", it.runID, it.intent.Target)
			d.warn("%s", rec.Detail)
		case it.replacing:
			rec.Action = "service_left_stopped"
			rec.Detail = fmt.Sprintf("run %s was killed while it replaced %s: the database may be the old file without its -wal (every commit is in the copy it kept, %s-failed-*.db, with the -wal set aside beside it). The service was left stopped: run the same restore again, which finishes it",
				it.runID, it.intent.Target, trimDB(it.intent.Target))
			d.warn("%s", rec.Detail)
		default:
			what := "before it replaced the database (untouched)"
			if it.replaced {
				what = "after it restored " + it.intent.Target + " from " + it.intent.Backup
			}
			m, err := d.manager(ctx)
			if err != nil {
				return "", nil, fmt.Errorf("run %s was killed %s with the service stopped, and no service manager to start it: %w", it.runID, what, err)
			}
			st, err := m.Status(ctx)
			switch {
			case err != nil:
				return "", nil, fmt.Errorf("run %s was killed %s with the service stopped; status of %s: %w", it.runID, what, m.Name(), err)
			case st.Active:
				rec.Detail = fmt.Sprintf("run %s was killed %s; %s is running again", it.runID, what, m.Name())
			case d.opt.DryRun:
				rec.Action = "service_started"
				rec.Detail = fmt.Sprintf("run %s was killed %s with %s stopped: would start it again", it.runID, what, m.Name())
			default:
				sctx, cancel := context.WithTimeout(ctx, d.cfg.Service.StartTimeout)
				defer cancel()
				if err := d.fx.Start(sctx, m); err != nil {
					return "", nil, fmt.Errorf("run %s was killed %s with %s stopped; start it again: %w", it.runID, what, m.Name(), err)
				}
				rec.Action = "service_started"
				rec.Detail = fmt.Sprintf("run %s was killed %s with %s stopped: started it again", it.runID, what, m.Name())
			}
			d.warn("%s", rec.Detail)
		}
		if !d.opt.DryRun && d.jw != nil {
			if _, err := d.jw.Append(it.runID, journal.EventOutcome, "", dbOutcome{Outcome: rec.Action + " by " + d.runID, Backup: it.intent.Backup}); err != nil {
				d.jerr = &JournalError{Path: d.cfg.Journal, Event: "outcome of run " + it.runID, Err: err}
				return "", nil, d.jerr
			}
		}
		return rec.Detail, rec, nil
	})
	return rec, err
}

func trimDB(target string) string {
	if len(target) > 3 && target[len(target)-3:] == ".db" {
		return target[:len(target)-3]
	}
	return target
}

// serviceActive reports whether the service manager says the service runs; false when
// that cannot be known.
func (d *dbRunner) serviceActive(ctx context.Context) bool {
	m, err := d.manager(ctx)
	if err != nil {
		return false
	}
	st, err := m.Status(ctx)
	return err == nil && st.Active
}
