package runbook

// The deploy's first steps: a fresh verified backup of the running install, and a baseline.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// ensureBackup finds the backup a failed deploy rolls back to: the newest backup not marked
// bad, if it is younger than deploy.backup_max_age, holds the install running now and
// verifies; otherwise it makes one with backup create's code and verifies it. Without it the
// deploy command never runs.
func (d *deployRun) ensureBackup(ctx context.Context) (string, any, error) {
	b, why := d.freshBackup(ctx)
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	if b != nil {
		d.dres.Backup = b
		return "using " + b.Reason, backupStepData(b), nil
	}
	var dbs []backup.Database
	for _, db := range d.cfg.Databases {
		dbs = append(dbs, backup.Database{Name: db.Name, Path: db.Path})
	}
	host, _ := os.Hostname()
	created, err := backup.Create(ctx, backup.CreateOptions{
		InstallDir: d.res.InstallDir, BackupDir: d.cfg.Backup.Dir, Exclude: d.cfg.Backup.Exclude, Databases: dbs,
		Snapshotter: d.dd.Snapshotter, Label: "before deploy " + d.runID, CreatedBy: whoami(), Host: host,
		Now: d.deps.Now, Limits: d.limits(), Warn: func(s string) { d.warn("%s", s) }, DryRun: d.opt.DryRun,
	})
	if err != nil {
		return "", nil, fmt.Errorf("back up the running install (%s): %w; the deploy command was not run", why, err)
	}
	b = &DeployBackup{Path: created.Path, SHA256: created.SHA256, Created: true, Reason: why}
	d.dres.Backup = b
	if d.opt.DryRun {
		return fmt.Sprintf("would create %s (%d files, %s) and verify it: %s", created.Path, created.Files, ui.Bytes(created.Bytes), why), backupStepData(b), nil
	}
	c, err := backup.Lookup(d.cfg.Backup.Dir, created.Path)
	if err != nil {
		return "", nil, err
	}
	if v, err := d.verifyBackup(ctx, c); err != nil {
		return "", nil, err
	} else if !v.OK {
		return "", nil, fmt.Errorf("the backup just made, %s, does not verify: %s; the deploy command was not run", created.Path, v.Error)
	}
	return fmt.Sprintf("created and verified %s (%d files, %s): %s", created.Path, created.Files, ui.Bytes(created.Bytes), why), backupStepData(b), nil
}

// deployBackupData is the backup step's journal payload: the backup, and its path again as
// "backup", the key backup.InUse reads, so that 'backup prune' keeps the backup of a deploy a
// kill left unfinished (the one its way out, 'cfrollback emergency --backup FILE', restores).
type deployBackupData struct {
	*DeployBackup
	Backup string `json:"backup"`
}

func backupStepData(b *DeployBackup) deployBackupData {
	return deployBackupData{DeployBackup: b, Backup: b.Path}
}

// freshBackup returns the newest backup when it will do, else nil and why not.
func (d *deployRun) freshBackup(ctx context.Context) (*DeployBackup, string) {
	cands, _, err := backup.Discover(d.cfg.Backup.Dir, d.cfg.Backup.Pattern)
	if err != nil {
		return nil, "no backup to reuse: " + err.Error()
	}
	cands = d.dropBadBackups(cands, false)
	if len(cands) == 0 {
		return nil, "no backup to reuse in " + d.cfg.Backup.Dir
	}
	c := cands[0]
	now := d.deps.Now()
	maxAge := d.cfg.Deploy.BackupMaxAge
	if age := now.Sub(c.Time); age > maxAge {
		return nil, fmt.Sprintf("the newest backup, %s, is %s old (deploy.backup_max_age %s)", c.Name, ui.Duration(age.Round(time.Second)), maxAge)
	}
	taken := c.Time
	if m, err := c.ManifestHeader(); err == nil && !m.Created.IsZero() {
		taken = m.Created
	}
	if what := d.changedSince(taken); what != "" {
		return nil, fmt.Sprintf("the install changed after the newest backup, %s, was taken (%s)", c.Name, what)
	}
	rec := d.backupState().Get(c.Name).Verify
	if rec != nil && rec.OK && !rec.Time.Before(c.Time) && (c.ManifestSHA256 == "" || strings.EqualFold(rec.SHA256, c.ManifestSHA256)) {
		return &DeployBackup{Path: c.Path, SHA256: rec.SHA256,
			Reason: fmt.Sprintf("%s (%s old, verified %s)", c.Name, ui.Duration(now.Sub(c.Time).Round(time.Second)), rec.Time.Local().Format(time.RFC3339))}, ""
	}
	v, err := d.verifyBackup(ctx, c)
	if err != nil {
		return nil, "the newest backup could not be verified: " + err.Error()
	}
	if !v.OK {
		return nil, fmt.Sprintf("the newest backup, %s, does not verify: %s", c.Name, v.Error)
	}
	return &DeployBackup{Path: c.Path, SHA256: v.SHA256,
		Reason: fmt.Sprintf("%s (%s old, verified now)", c.Name, ui.Duration(now.Sub(c.Time).Round(time.Second)))}, ""
}

// verifyBackup is backup verify of one backup; the result is recorded in backup.state
// (except in a dry run).
func (d *deployRun) verifyBackup(ctx context.Context, c backup.Candidate) (*backup.VerifyResult, error) {
	d.info("verifying %s (%s)", c.Name, ui.Bytes(c.Size))
	v, err := backup.Verify(ctx, c, backup.VerifyOptions{Limits: d.limits(), DBChecker: d.dd.DBChecker, Now: d.deps.Now, Progress: d.progress(c.Name)})
	if err != nil || d.opt.DryRun {
		return v, err
	}
	if err := d.stateStore().Update(ctx, func(st *backup.State) error {
		st.SetVerify(c.Name, v.Record())
		return nil
	}); err != nil {
		d.warn("the verification of %s was not recorded: %v", c.Name, err)
	}
	return v, nil
}

func (d *deployRun) limits() archive.Limits {
	lim := archive.DefaultLimits()
	lim.MaxTotalSize = int64(d.cfg.Backup.MaxSize)
	return lim
}

// changedSince names a file of the install changed after t ("" when none was): its ctime,
// which the kernel sets on every write, chmod, rename or create and no call sets back (see
// inspectRunning), so a backup taken before it does not hold the install running now. The
// preserved paths (live data, carried over by a rollback anyway) and backup.exclude are
// not looked at. A walk of the metadata only.
func (d *deployRun) changedSince(t time.Time) string {
	skip := func(rel string) bool {
		for _, p := range d.cfg.Restore.Preserve {
			if rel == filepath.Clean(p) {
				return true
			}
		}
		for _, pat := range d.cfg.Backup.Exclude {
			if ok, _ := path.Match(pat, rel); ok {
				return true
			}
			if ok, _ := path.Match(pat, filepath.Base(rel)); ok {
				return true
			}
		}
		return false
	}
	changed := ""
	root := d.res.InstallDir
	_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // a file that vanished is no evidence either way
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && skip(rel) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return nil //nolint:nilerr // as above
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && time.Unix(st.Ctim.Unix()).After(t) {
			changed = fmt.Sprintf("%s changed at %s", rel, time.Unix(st.Ctim.Unix()).Local().Format(time.RFC3339Nano))
			return filepath.SkipAll
		}
		return nil
	})
	return changed
}

// ensureBaseline records a baseline as 'baseline record' does when there is none, so the
// watch can judge response time. One that cannot be recorded is a warning: the gate and
// the rest of the watch still judge the deploy.
func (d *deployRun) ensureBaseline(ctx context.Context) (string, any, error) {
	b, err := assess.ReadBaseline(d.cfg.StateDir)
	switch {
	case err == nil:
		d.dres.Baseline = "recorded " + b.Recorded.Local().Format(time.RFC3339)
		return "using the baseline " + d.dres.Baseline, map[string]any{"recorded": b.Recorded}, nil
	case !errors.Is(err, fs.ErrNotExist):
		d.warn("%v; the watch judges without a baseline", err)
		d.dres.Baseline = "unreadable: " + err.Error()
		return "no usable baseline: " + err.Error(), nil, nil
	case d.opt.DryRun:
		d.dres.Baseline = "would be recorded"
		return "would record a baseline of the running install (none in " + assess.BaselinePath(d.cfg.StateDir) + ")", nil, nil
	case d.dd.RecordBaseline == nil:
		d.dres.Baseline = "none"
		return "no baseline; response time is not judged", nil, nil
	}
	if err := d.dd.RecordBaseline(ctx); err != nil {
		d.warn("no baseline recorded (%v); the watch does not judge response time", err)
		d.dres.Baseline = "not recorded: " + err.Error()
		return "no baseline: " + err.Error(), map[string]string{"error": err.Error()}, nil
	}
	d.dres.Baseline = "recorded now"
	return "recorded a baseline of the running install in " + assess.BaselinePath(d.cfg.StateDir), nil, nil
}
