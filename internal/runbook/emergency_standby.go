package runbook

// The emergency's use of the warm standby (internal/standby): when its seal proves it is the
// chosen backup's tree, unchanged, preflight renames it into the staging dir's place instead
// of extracting; everything after (carry-over, check_data, swap, failed dir) is unchanged.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/standby"
)

// StandbyUse says whether a run took the warm standby instead of extracting, and why not.
type StandbyUse struct {
	Dir  string `json:"dir"`
	Used bool   `json:"used"`
	// Reason is why it was not used ("" when it was).
	Reason  string `json:"reason,omitempty"`
	CheckMS int64  `json:"check_ms"`
	// Proof is how the seal was checked: "read-only mount" or "stat walk" (NotByMount: why
	// the mount did not prove it).
	Proof      string `json:"proof,omitempty"`
	NotByMount string `json:"not_by_mount,omitempty"`
	Entries    int    `json:"entries,omitempty"`
	// Refresh is the standby refresh done after the run ended healthy (nil: none).
	Refresh *StandbyResult `json:"refresh,omitempty"`
}

// useStandby checks the standby against candidate c and, when its seal holds, renames it to
// the staging dir. ok false means extract as before; the reason is in r.res.Standby (the
// first one is kept: it is about the backup the run wanted first).
func (r *runner) useStandby(ctx context.Context, c backup.Candidate, uid, gid int) (archive.Summary, bool) {
	dir := r.cfg.StandbyPath()
	use := &StandbyUse{Dir: dir}
	notUsed := func(format string, a ...any) (archive.Summary, bool) {
		if r.res.Standby == nil {
			use.Reason = fmt.Sprintf(format, a...)
			r.res.Standby = use
			r.info("standby not used: %s; extracting", use.Reason)
		}
		return archive.Summary{}, false
	}
	if !r.cfg.Standby.Enabled {
		return notUsed("standby.enabled is false")
	}
	if filepath.Dir(dir) != filepath.Dir(r.res.InstallDir) {
		if err := fsutil.CheckTrustedDir(filepath.Dir(dir)); err != nil {
			return notUsed("%v", err)
		}
	}
	b, err := standby.BackupOf(c.Path)
	if err != nil {
		return notUsed("%v", err)
	}
	t0 := time.Now()
	seal, err := standby.Check(ctx, dir, standby.Want{
		Backup: b, ManifestSHA256: c.ManifestSHA256, UID: uid, GID: gid, MaxBytes: int64(r.cfg.Backup.MaxSize),
	})
	use.CheckMS = time.Since(t0).Milliseconds()
	if errors.Is(err, standby.ErrNoStandby) {
		return notUsed("there is none at %s ('cfrollback standby refresh' makes one)", dir)
	}
	if err != nil {
		return notUsed("%v", err)
	}
	use.Proof, use.NotByMount = seal.Proof()
	if !r.opt.DryRun {
		if err := standby.Disarm(dir); err != nil {
			return notUsed("%v", err)
		}
		if seal.MountID != 0 { // mounted once: no copy of that mount may be left anywhere
			if where, err := standby.MountedElsewhere(dir); err != nil {
				return notUsed("it was mounted read-only, and whether that mount is gone everywhere cannot be told: %v", err)
			} else if where != "" {
				return notUsed("it is still mounted read-only at %s, where the restored install would be read-only too", where)
			}
		}
	}
	if err := r.fx.Rename(dir, r.res.StagingDir); err != nil {
		return notUsed("%v", err)
	}
	// The seal now names a dir that is gone; a kill before this removal leaves it saying so.
	if err := r.fx.RemoveAll(standby.SealPath(dir)); err != nil {
		r.warn("could not remove the seal %s: %v (it names a standby that is gone; the next refresh replaces it)", standby.SealPath(dir), err)
	}
	use.Used, use.Reason, use.Entries = true, "", seal.Entries
	r.res.Standby = use
	return archive.Summary{Entries: seal.Entries, Bytes: seal.Bytes, SHA256: seal.Backup.SHA256, CompressedSize: seal.Backup.Size}, true
}

// refreshStandbyAfter brings the standby up to date after a run that ended healthy: a
// reported step after the outcome, so the command's time to healthy does not include it.
// Its failure is a warning, never the run's.
func (r *runner) refreshStandbyAfter(ctx context.Context) {
	if r.opt.DryRun || !r.cfg.Standby.Enabled || r.res.Outcome != "ok" {
		return
	}
	// The backup just restored and seen healthy is the one to keep warm: the next emergency
	// follows the next deploy (Options.StandbyBackup).
	keep := ""
	if r.res.Backup != nil {
		keep = r.res.Backup.Path
	}
	s := newRunner(Options{Config: r.cfg, Command: StandbyRefreshCommand, KillAt: r.opt.KillAt, StandbyBackup: keep}, r.deps)
	s.quietSkips, s.stepPrefix = true, "standby_"
	// The same run id and journal: the refresh is this run's last reported step, journaled
	// after its outcome (a kill in it leaves the rollback finished, and the refresh's work
	// dir for the next refresh to remove). The rollback let its lock go: the refresh takes
	// it only for its short steps, as 'cfrollback standby refresh' does.
	// Its human log is the rollback's too (the log's name comes from the run's start).
	s.runID, s.res.RunID, s.start = r.runID, r.runID, r.start
	sr := s.standbyRefresh(ctx, r.runID)
	if r.res.Standby == nil {
		r.res.Standby = &StandbyUse{Dir: r.cfg.StandbyPath(), Reason: "the run did not reach preflight"}
	}
	r.res.Standby.Refresh = sr
	st := StepResult{Name: "standby", Status: "done", DurationMS: sr.DurationMS, Detail: sr.Detail}
	if sr.Outcome == "busy" || sr.Outcome == "superseded" {
		st.Status = "skipped"
		r.info("the standby was not refreshed: %s", firstOf(sr.Error, sr.Detail))
	} else if sr.Error != "" {
		st.Status, st.Detail = "failed", sr.Error
		r.warn("the standby was not refreshed: %s (the rollback itself is done; 'cfrollback standby refresh' retries)", sr.Error)
	} else {
		r.info("standby: %s", sr.Detail)
	}
	r.res.Steps = append(r.res.Steps, st)
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
