package runbook

// The emergency's preflight: everything checked while the service still runs.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/ui"
)

func (r *runner) preflight(ctx context.Context) (string, any, error) {
	seen, err := r.lookAhead.wait(ctx, r.deps.Service)
	r.lookAhead = nil
	if err != nil {
		return "", nil, fmt.Errorf("read the state of %s: %w", r.res.Service, err)
	}
	st := seen.Status
	if !st.Exists {
		return "", nil, fmt.Errorf("%s does not exist; check service.manager / service.unit / service.pm2_name", r.res.Service)
	}
	if !st.Active {
		r.warn("%s is already down (state %s); the rollback goes on", r.res.Service, st.State)
	}
	r.seen = seen // the stop may take it for its own check, while it is fresh

	parent := filepath.Dir(r.res.InstallDir)
	if _, err := os.Stat(parent); err != nil {
		return "", nil, fmt.Errorf("parent of install_dir: %w", err)
	}
	// The staging and failed dirs are created and renamed in install_dir's parent, as root.
	if err := fsutil.CheckTrustedDir(parent); err != nil {
		return "", nil, fmt.Errorf("parent of install_dir (where the staging and failed dirs go): %w; nothing was changed, the service was not stopped", err)
	}
	preserved, err := r.preservedSize()
	if err != nil {
		return "", nil, err
	}
	uid, gid, err := r.restoreOwner()
	if err != nil {
		return "", nil, err
	}

	cands, err := r.candidates()
	if err != nil {
		return "", nil, err
	}
	lim := archive.DefaultLimits()
	lim.MaxTotalSize = int64(r.cfg.Backup.MaxSize)
	running, ofFailing := r.inspectRunning(), 0
	if _, problem := appconfig.AppVersionChecked(r.res.InstallDir); problem != "" {
		r.warn("%s; the running version is unknown, so backups of the failing install are told only by when it was deployed", problem)
	}
	for _, c := range cands {
		if ok, failing := r.eligible(&c, running); !ok {
			if failing {
				ofFailing++
			}
			continue
		}
		sum, warm := r.useStandby(ctx, c, uid, gid)
		if !warm {
			free, err := install.FreeBytes(parent)
			if err != nil {
				return "", nil, err
			}
			if free < c.Size+preserved+carryMargin {
				return "", nil, fmt.Errorf("not enough free space in %s: %s free, the backup %s alone is %s compressed and the preserved data is %s; free some space (old failed dirs %s-failed-*?%s) and retry",
					parent, ui.Bytes(free), c.Name, ui.Bytes(c.Size), ui.Bytes(preserved), r.res.InstallDir, r.standbySpaceHint())
			}
			r.info("checking %s (%s) and extracting it to %s", c.Name, ui.Bytes(c.Size), r.res.StagingDir)
			sum, err = r.fx.Stage(ctx, c.Path, r.res.StagingDir, archive.ExtractOptions{
				Limits: lim, UID: uid, GID: gid, Progress: r.progress(c.Name), AfterEntry: r.extractKillHook(),
			})
			if err != nil {
				if ctx.Err() != nil {
					return "", nil, ctx.Err()
				}
				if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
					return "", nil, fmt.Errorf("extract %s: %w; free some space in %s%s and retry", c.Name, err, parent, r.standbySpaceHint())
				}
				r.skip(c, err.Error())
				continue
			}
			if c.ManifestSHA256 != "" && !strings.EqualFold(c.ManifestSHA256, sum.SHA256) {
				_ = r.fx.RemoveAll(r.res.StagingDir)
				r.skip(c, fmt.Sprintf("sha256 %s does not match its manifest (%s)", sum.SHA256, c.ManifestSHA256))
				continue
			}
		}
		free, err := install.FreeBytes(parent)
		if err == nil && !r.opt.DryRun && free < preserved+carryMargin {
			_ = r.fx.RemoveAll(r.res.StagingDir)
			return "", nil, fmt.Errorf("after staging, %s has %s free but the preserved data needs %s; free some space and retry", parent, ui.Bytes(free), ui.Bytes(preserved))
		}
		cc := c
		r.res.Backup = &cc
		r.res.BackupSHA = sum.SHA256
		data := stagedData{Backup: c.Path, SHA256: sum.SHA256, Entries: sum.Entries, Bytes: sum.Bytes}
		if !r.opt.DryRun {
			if data.StagingID, err = install.IDOf(r.res.StagingDir); err != nil {
				return "", nil, err
			}
		}
		verb := "staged"
		switch {
		case warm && r.opt.DryRun:
			verb = "would take the standby of"
		case warm:
			verb = "took the standby (seal checked, no extraction) of"
		case r.opt.DryRun:
			verb = "verified"
		}
		return fmt.Sprintf("%s %s (%d entries, %s, sha256 %s…)", verb, c.Name, sum.Entries, ui.Bytes(sum.Bytes), shortSHA(sum.SHA256)), data, nil
	}
	if ofFailing == len(cands) {
		return "", nil, fmt.Errorf("every backup in %s that is not marked bad holds the version that is failing now or was taken after it was deployed (see the skipped list); nothing was changed, the service was not stopped. To restore one anyway, pass --backup FILE ('cfrollback backup list' shows them)",
			r.cfg.Backup.Dir)
	}
	return "", nil, fmt.Errorf("no usable backup: %d candidate(s) in %s matching %s, none verified (see the skipped list); nothing was changed, the service was not stopped",
		len(cands), r.cfg.Backup.Dir, r.cfg.Backup.Pattern)
}

// eligible applies the rules that pass a backup over before it is read: a damaged manifest
// (unless named), and a backup of the failing install (failing true). Preflight and the
// standby's refresh use the same rules, so the standby holds what preflight will want.
//
// It reads c's manifest first when the candidate list left it unread (DiscoverLazy): only
// the candidates reached, newest first, are read.
func (r *runner) eligible(c *backup.Candidate, running runningInstall) (ok, failing bool) {
	c.LoadManifest()
	if c.ManifestProblem != "" {
		if r.opt.BackupPath == "" {
			r.skip(*c, "its manifest is damaged ("+c.ManifestProblem+"); pass --backup "+c.Name+" to use it anyway (the archive is still checked entry by entry)")
			return false, false
		}
		r.warn("backup %s: its manifest is damaged (%s); using it because it was asked for by name, checked entry by entry", c.Name, c.ManifestProblem)
	}
	if r.opt.StandbyBackup == "" && r.passOverFailing(running, *c) {
		return false, true
	}
	return true, false
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// standbySpaceHint names the standby when it takes space an extraction needs.
func (r *runner) standbySpaceHint() string {
	if st := StandbyInfo(r.cfg); st.Exists && st.Bytes > 0 {
		return fmt.Sprintf("; the standby %s takes %s: 'cfrollback standby drop' frees it", st.Dir, ui.Bytes(st.Bytes))
	}
	return ""
}

func (r *runner) candidates() ([]backup.Candidate, error) {
	if r.opt.StandbyBackup != "" {
		c, err := backup.Lookup(r.cfg.Backup.Dir, r.opt.StandbyBackup)
		if err != nil {
			return nil, err
		}
		return r.dropBadBackups([]backup.Candidate{c}, false), nil
	}
	if r.opt.BackupPath != "" {
		c, err := backup.Lookup(r.cfg.Backup.Dir, r.opt.BackupPath)
		if err != nil {
			return nil, err
		}
		return r.dropBadBackups([]backup.Candidate{c}, true), nil
	}
	cands, rejected, err := backup.DiscoverLazy(r.cfg.Backup.Dir, r.cfg.Backup.Pattern)
	if err != nil {
		return nil, fmt.Errorf("%w; check backup.dir and its permissions", err)
	}
	for _, rj := range rejected {
		r.skip(backup.Candidate{Path: rj.Path, Name: filepath.Base(rj.Path)}, rj.Reason)
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("no backup found in %s matching %s; nothing was changed, the service was not stopped. Point backup.dir at your backups or pass --backup FILE",
			r.cfg.Backup.Dir, r.cfg.Backup.Pattern)
	}
	if cands = r.dropBadBackups(cands, false); len(cands) == 0 {
		return nil, fmt.Errorf("every backup in %s is marked bad; nothing was changed, the service was not stopped. 'cfrollback backup list' shows the marks; pass --backup FILE or clear one with 'cfrollback backup mark good ID'",
			r.cfg.Backup.Dir)
	}
	return cands, nil
}

// runningInstall is what is known of the install that is failing now.
type runningInstall struct {
	version  string    // "" unknown
	deployed time.Time // zero: unknown
	evidence string    // the file deployed was read from
}

// deploySlack absorbs clocks of different grain: the file system stamps ctime from a
// coarse clock (a tick behind time.Now), and a name stamp has whole seconds.
const deploySlack = time.Second

// inspectRunning reads the running install's app version and when it was deployed. The
// deploy time is the ctime of the file the version comes from (the app's own package.json
// in an npm host install, else <install>/package.json), not its mtime: tar, cp -a, rsync -a
// and cfrollback's own restore carry mtimes over from where the file came from, and npm
// packs every file with a 1985 mtime (npm 11 happens to extract with the current time:
// pacote's noMtime, seen on tools/claude-flow/2.0.0), so an mtime can be far older than the
// deploy and would pass good backups over. The kernel sets ctime whenever the inode is
// created or changed, and no call sets it back: it is never earlier than the deploy, and
// a later chmod or chown only makes it later, so fewer backups are passed over. The
// node_modules/claude-flow directory's mtime and node_modules/.package-lock.json move
// with every npm install in the tree, later still.
func (r *runner) inspectRunning() runningInstall {
	ri := runningInstall{version: appconfig.AppVersion(r.res.InstallDir)}
	for _, p := range []string{
		filepath.Join(r.res.InstallDir, "node_modules", "claude-flow", "package.json"),
		filepath.Join(r.res.InstallDir, "package.json"),
	} {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ri.deployed, ri.evidence = time.Unix(st.Ctim.Unix()), p
		}
		break
	}
	return ri
}

// heldFailing says why backup c holds the failing install ("" when it does not): its
// manifest records the running app version, or it was taken after that install was
// deployed, so it is a backup of what is failing, however long that ran healthy first.
func (ri runningInstall) heldFailing(c backup.Candidate) string {
	taken, version := c.Time, ""
	if m, err := c.ManifestHeader(); err == nil {
		version = m.AppVersion
		if !m.Created.IsZero() {
			taken = m.Created
		}
	}
	if ri.version != "" && version == ri.version {
		return fmt.Sprintf("holds app version %s, the version that is failing now", version)
	}
	if !ri.deployed.IsZero() && taken.After(ri.deployed.Add(deploySlack)) {
		return fmt.Sprintf("was taken %s, after the failing install was deployed (%s, the ctime of %s)",
			taken.Local().Format(time.RFC3339), ri.deployed.Local().Format(time.RFC3339), ri.evidence)
	}
	return ""
}

// passOverFailing skips, loudly, a backup of the install that is failing now: restoring
// it waits out the health timeout and needs a second run. A backup named with --backup is
// a person's choice (helm's rollback to a named revision): it is only warned about. Checked
// one candidate at a time, so only the manifests of backups reached are read.
func (r *runner) passOverFailing(running runningInstall, c backup.Candidate) bool {
	why := running.heldFailing(c)
	switch {
	case why == "":
		return false
	case r.opt.BackupPath != "":
		r.warn("backup %s %s; using it because it was asked for by name", c.Name, why)
		return false
	}
	r.skip(c, why+"; pass --backup "+c.Name+" to use it anyway")
	return true
}

// skip records a backup that was passed over. Never silent.
func (r *runner) skip(c backup.Candidate, reason string) {
	reason = strings.TrimPrefix(reason, c.Path+": ")
	r.res.Skipped = append(r.res.Skipped, SkippedBackup{Path: c.Path, Reason: reason})
	if r.quietSkips {
		r.info("passing over backup %s: %s", c.Name, reason)
	} else {
		r.warn("SKIPPING backup %s: %s", c.Name, reason)
	}
	_ = r.record("backup_skipped", "preflight", map[string]string{"backup": c.Path, "reason": reason})
}

func (r *runner) progress(name string) archive.Progress {
	last := time.Time{}
	return func(read, total int64) {
		if time.Since(last) < time.Second || total == 0 {
			return
		}
		last = time.Now()
		r.deps.Events(Event{Kind: "progress", Step: "preflight", Message: fmt.Sprintf("%s: %d%% of %s", name, read*100/total, ui.Bytes(total))})
	}
}

func (r *runner) preservedSize() (int64, error) {
	var total int64
	for _, p := range r.cfg.Restore.Preserve {
		n, err := install.TreeSize(filepath.Join(r.res.InstallDir, p))
		if err != nil {
			return 0, fmt.Errorf("size of preserved path %s: %w", p, err)
		}
		total += n
	}
	return total, nil
}
