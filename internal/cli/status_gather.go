package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// statusOfService asks the service manager, for at most ServiceTimeout.
func statusOfService(ctx context.Context, opts *statusOptions, problem func(string, ...any)) *statusService {
	ctx, cancel := context.WithTimeout(ctx, opts.ServiceTimeout)
	defer cancel()
	m, err := opts.NewService(ctx, opts.Config)
	if err != nil {
		problem("service: %v", err)
		return nil
	}
	st, err := m.Status(ctx)
	switch {
	case errors.Is(err, service.ErrNotFound):
		return &statusService{Manager: m.Kind(), Name: m.Name(), State: "not found"}
	case err != nil:
		problem("service %s: %v", m.Name(), err)
		return nil
	}
	state := st.State
	if st.SubState != "" {
		state += "/" + st.SubState
	}
	return &statusService{Manager: m.Kind(), Name: m.Name(), Exists: st.Exists, Active: st.Active, State: state,
		MainPID: st.MainPID, Restarts: st.Restarts}
}

func statusOfBackups(opts *statusOptions, res *statusResult, now time.Time, problem func(string, ...any)) {
	cfg := opts.Config
	cands, _, err := backup.Discover(cfg.Backup.Dir, cfg.Backup.Pattern)
	if err != nil {
		problem("backups: %v", err)
		return
	}
	res.Backups = len(cands)
	st, err := backupStore(cfg).Load()
	if err != nil {
		problem("%v", err)
		st = &backup.State{}
	}
	c, _, err := backup.Choose(cands, st, backup.Choice{To: "latest"})
	if err != nil {
		return // none is good: shown as such, not a failure to gather
	}
	b := &statusBackup{ID: backup.ID(c.Name), Path: c.Path, Time: c.Time, AgeSeconds: int64(now.Sub(c.Time) / time.Second), Size: c.Size}
	s := st.Get(c.Name)
	if s.Mark != nil {
		b.Mark = s.Mark.Value
	}
	if s.Verify != nil {
		b.Verified = "failed"
		if s.Verify.OK {
			b.Verified = "ok"
		}
	}
	res.NewestGoodBackup = b
}

// statusOfJournal reads the last run and the last assessment through the hash chain's
// verdict: a record the chain does not vouch for is shown, marked UNVERIFIED.
func statusOfJournal(path string, res *statusResult, problem func(string, ...any)) {
	jc, err := journal.ReadChecked(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		problem("journal: %v", err)
		return
	}
	res.JournalWarning = jc.Warning(path)
	runs := journal.Runs(jc.Records)
	for i := len(runs) - 1; i >= 0 && res.LastRun == nil; i-- {
		r := runs[i]
		if r.Command != "emergency" && r.Command != "rollback" && r.Command != "undo" {
			continue
		}
		out := r.Outcome
		if out == "" {
			out = "unfinished"
		}
		res.LastRun = &statusRun{RunID: r.ID, Command: r.Command, Started: r.Started, Ended: r.Ended, Outcome: out,
			Error: r.Error, Backup: r.Backup, DowntimeMS: r.DowntimeMS, Verified: jc.Trusted(r)}
	}
	for i := len(jc.Records) - 1; i >= 0; i-- {
		rec := jc.Records[i]
		if rec.Event != journal.EventAssess {
			continue
		}
		var a struct {
			Severity string `json:"severity"`
			Action   string `json:"action"`
		}
		_ = json.Unmarshal(rec.Data, &a)
		res.LastAssessment = &statusAssessment{Time: rec.Time, RunID: rec.RunID, Severity: a.Severity, Action: a.Action,
			Verified: jc.RecordTrusted(rec.Seq)}
		break
	}
}

// standbyLine is the standby on one line, from its seal (status and backup list do not walk
// it; 'standby status' does): what it holds, its disk cost, its age.
func standbyLine(st *runbook.StandbyStatus, now time.Time) string {
	switch {
	case st == nil, !st.Enabled && !st.Exists && !st.Sealed:
		return ""
	case st.Sealed && st.Problem == "":
		return fmt.Sprintf("%s holds %s, %s on disk, sealed %s ('cfrollback standby status' checks it)",
			st.Dir, backup.ID(filepath.Base(st.Backup)), ui.Bytes(st.Bytes), ui.Ago(st.SealedAt, now))
	case st.Exists:
		return fmt.Sprintf("%s, %s on disk: %s", st.Dir, ui.Bytes(st.Bytes), st.Problem)
	case st.Problem != "":
		return st.Problem
	}
	return "none ('cfrollback standby refresh' makes one; emergency extracts until then)"
}
