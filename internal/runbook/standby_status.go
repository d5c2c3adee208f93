package runbook

import (
	"context"
	"errors"
	"time"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/standby"
)

// StandbyStatus is the standby as `standby status`, `status` and `backup list` show it. It
// is read without changing anything.
type StandbyStatus struct {
	Dir     string `json:"dir"`
	Enabled bool   `json:"enabled"`
	// Exists: the dir is there; Sealed: a seal names it.
	Exists bool `json:"exists"`
	Sealed bool `json:"sealed"`
	// Checked: the full check ran (a stat walk); Valid is only meaningful then.
	Checked bool   `json:"checked"`
	Valid   bool   `json:"valid"`
	Problem string `json:"problem,omitempty"`
	Backup  string `json:"backup,omitempty"`
	Entries int    `json:"entries,omitempty"`
	// Bytes is its disk cost: the bytes of its files (the seal's count, or measured when
	// there is no seal).
	Bytes    int64     `json:"bytes"`
	SealedAt time.Time `json:"sealed_at,omitzero"`
	CheckMS  int64     `json:"check_ms,omitempty"`
	// ReadOnlyMount: the standby is mounted read-only onto itself; Proof is how the check
	// proved it (the mount, or a stat walk, NotByMount saying why not the mount).
	ReadOnlyMount bool   `json:"read_only_mount"`
	Proof         string `json:"proof,omitempty"`
	NotByMount    string `json:"not_by_mount,omitempty"`
	// Chosen is the backup an emergency would restore now; WouldUse: the standby is valid
	// and holds it.
	Chosen   string `json:"chosen_backup,omitempty"`
	WouldUse bool   `json:"would_use"`
	// ForNextDeploy: valid, and it holds the newest backup, which is of the install running
	// now (backup create and a healthy rollback keep that one warm): an emergency now would
	// pass it over, the one after the next deploy takes it.
	ForNextDeploy bool `json:"ready_for_next_deploy,omitempty"`
}

// StandbyInfo reads the seal (no walk, no choice): cheap enough for status and backup list.
func StandbyInfo(cfg settings.Config) StandbyStatus {
	dir := cfg.StandbyPath()
	st := StandbyStatus{Dir: dir, Enabled: cfg.Standby.Enabled, Exists: install.Exists(dir), ReadOnlyMount: standby.Mounted(dir)}
	s, err := standby.Read(standby.SealPath(dir))
	switch {
	case err == nil:
		st.Sealed, st.Backup, st.Entries, st.Bytes, st.SealedAt = true, s.Backup.Path, s.Entries, s.Bytes, s.Created
		if !st.Exists {
			st.Problem = "the seal names a standby that is gone"
		}
	case errors.Is(err, standby.ErrNoStandby):
		if st.Exists {
			st.Problem = "not sealed (a refresh was interrupted, or it was taken apart); it will not be used"
			st.Bytes, _ = install.TreeSize(dir)
		}
	default:
		st.Problem = err.Error()
		if st.Exists {
			st.Bytes, _ = install.TreeSize(dir)
		}
	}
	return st
}

// CheckStandby is StandbyInfo plus the full check: the backup an emergency would choose now
// (by its rules, reading what it reads), and the seal checked against the tree and against
// that backup as emergency would check it.
func CheckStandby(ctx context.Context, cfg settings.Config) StandbyStatus {
	st := StandbyInfo(cfg)
	r := newRunner(Options{Config: cfg, Command: "standby status", DryRun: true}, Deps{})
	uid, gid, err := r.restoreOwner()
	if err != nil {
		st.Problem = err.Error()
		return st
	}
	if c, ok := r.firstEligible(); ok {
		st.Chosen = c.Path
	}
	if !st.Sealed {
		return st
	}
	target := st.Backup
	b, err := standby.BackupOf(target)
	if err != nil {
		st.Checked, st.Problem = true, "its backup: "+err.Error()
		return st
	}
	want := standby.Want{Backup: b, UID: uid, GID: gid, MaxBytes: int64(cfg.Backup.MaxSize)}
	if c, err := backup.Lookup("", target); err == nil {
		want.ManifestSHA256 = c.ManifestSHA256
	}
	t0 := time.Now()
	s, err := standby.Check(ctx, st.Dir, want)
	st.CheckMS, st.Checked = time.Since(t0).Milliseconds(), true
	if s != nil {
		st.Proof, st.NotByMount = s.Proof()
	}
	if err != nil {
		st.Problem = err.Error()
		return st
	}
	st.Valid, st.Problem = true, ""
	st.WouldUse = cfg.Standby.Enabled && st.Chosen == st.Backup
	switch {
	case st.WouldUse:
	case !cfg.Standby.Enabled:
		st.Problem = "standby.enabled is false: emergency will not use it"
	case r.newestIsRunning(st.Backup):
		st.ForNextDeploy = true
	case st.Chosen == "":
		st.Problem = "emergency would find no backup to restore now"
	case !st.WouldUse:
		st.Problem = "valid, but emergency would now choose " + st.Chosen + "; 'cfrollback standby refresh' brings it up to date"
	}
	return st
}

// firstEligible is the first backup that the emergency's rules do not pass over (marks, a
// damaged manifest, the failing version), quietly.
func (r *runner) firstEligible() (c0 backup.Candidate, ok bool) {
	cands, err := r.candidates()
	if err != nil {
		return c0, false
	}
	running := r.inspectRunning()
	for _, c := range cands {
		if ok, _ := r.eligible(&c, running); ok {
			return c, true
		}
	}
	return c0, false
}

// newestIsRunning: the newest backup not marked bad, with a sound manifest, is path and
// holds the install running now (its version, or taken after it was deployed).
func (r *runner) newestIsRunning(path string) bool {
	cands, err := r.candidates()
	if err != nil {
		return false
	}
	for _, c := range cands {
		if c.LoadManifest(); c.ManifestProblem != "" {
			continue
		}
		return c.Path == path && r.inspectRunning().heldFailing(c) != ""
	}
	return false
}
