package runbook

import (
	"context"
	"fmt"
	"time"

	"github.com/cfrollback/cfrollback/internal/backup"
)

// stateStore is backup.state as an emergency uses it: reads and writes are
// best effort, since a catalog that cannot be read or written must never
// block a P0 rollback (a failure is a warning that the mark was not kept).
func (r *runner) stateStore() backup.Store {
	return backup.Store{Path: r.cfg.Backup.State, LockTimeout: 3 * time.Second, CreateDir: true, Install: r.cfg.InstallDir, BackupDir: r.cfg.Backup.Dir}
}

// backupState reads the marks; on a problem it warns and returns an empty
// state, so no backup is skipped for it.
func (r *runner) backupState() *backup.State {
	st, err := r.stateStore().Load()
	if err != nil {
		r.warn("%v; backups marked bad cannot be skipped this time", err)
		return &backup.State{}
	}
	return st
}

// dropBadBackups skips, loudly, backups marked bad. A backup named with
// --backup (or rollback --to) is a person's choice: it is only warned about.
func (r *runner) dropBadBackups(cands []backup.Candidate, explicit bool) []backup.Candidate {
	st := r.backupState()
	out := cands[:0:0]
	for _, c := range cands {
		m := st.Get(c.Name).Mark
		if m == nil || m.Value != backup.MarkBad {
			out = append(out, c)
			continue
		}
		why := fmt.Sprintf("marked bad %s by %s", m.Time.Local().Format(time.RFC3339), markedBy(m))
		if m.Reason != "" {
			why += " (" + m.Reason + ")"
		}
		if explicit {
			r.warn("backup %s is %s; using it because it was asked for by name", c.Name, why)
			out = append(out, c)
			continue
		}
		r.skip(c, why+"; 'cfrollback backup mark good "+backup.ID(c.Name)+"' clears it")
	}
	return out
}

func markedBy(m *backup.Mark) string {
	if m.RunID != "" {
		return m.By + " run " + m.RunID
	}
	return m.By
}

// markOutcome records what the run proved about its backup: healthy after
// the restore marks it good, unhealthy marks it bad (see State.AutoMark for
// why neither flips a mark made by hand or a bad one).
func (r *runner) markOutcome() {
	if r.opt.DryRun || r.res.Backup == nil {
		return
	}
	var m backup.Mark
	switch r.res.Outcome {
	case "ok":
		m = backup.Mark{Value: backup.MarkGood, Reason: "restored and healthy"}
	case "unhealthy":
		m = backup.Mark{Value: backup.MarkBad, Reason: "restored but the service did not become healthy"}
	default:
		return
	}
	m.Time, m.By, m.RunID = r.deps.Now(), r.opt.Command, r.runID
	name := r.res.Backup.Name
	recorded := false
	err := r.stateStore().Update(context.Background(), func(st *backup.State) error {
		recorded = st.AutoMark(name, m)
		return nil
	})
	switch {
	case err != nil:
		r.warn("could not mark backup %s %s in %s: %v", name, m.Value, r.cfg.Backup.State, err)
	case recorded:
		r.info("backup %s marked %s", name, m.Value)
		_ = r.record("note", "", map[string]string{"message": "backup marked " + m.Value, "backup": r.res.Backup.Path})
	default:
		r.info("backup %s keeps its earlier mark (not marked %s)", name, m.Value)
	}
}
