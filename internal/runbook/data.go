package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
)

// DataCheck is what the check_data step found for one configured database in the
// restored tree, and what it did.
type DataCheck struct {
	Name string `json:"name"`
	// Path is where the database is in the install once the swap is done.
	Path string `json:"path"`
	// Source: "live" (carried over from the stopped install) or "backup" (the backup's
	// own copy: emergency --with-data).
	Source string `json:"source"`
	// Status: ok (left alone), replaced (failed quick_check; the newest good DB backup
	// was put in its place), corrupt_kept (failed quick_check and no DB backup could
	// replace it: the service starts on it), missing, unchecked (the check itself
	// failed), planned (dry run).
	Status   string   `json:"status"`
	Problems []string `json:"problems,omitempty"`
	// DBBackup and DBBackupTime: the database backup that replaced a corrupt file;
	// writes after DBBackupTime are only in the kept copies.
	DBBackup     string    `json:"db_backup,omitempty"`
	DBBackupTime time.Time `json:"db_backup_time,omitzero"`
	// KeptCorrupt is the corrupt file as sqlitedb.Restore kept it, next to the database
	// (the failed install also holds it as it was).
	KeptCorrupt string          `json:"kept_corrupt,omitempty"`
	Skipped     []SkippedBackup `json:"skipped_db_backups,omitempty"`
	CheckMS     int64           `json:"check_ms"`
	Detail      string          `json:"detail"`
}

// preservedDB is a configured database that lives under a restore.preserve path.
type preservedDB struct {
	name, rel string
}

// preservedDatabases lists the configured databases whose files the carry-over copies:
// those under a restore.preserve path of the install dir. The others are the backup's
// own copies already.
func (r *runner) preservedDatabases() []preservedDB {
	var out []preservedDB
	for _, d := range r.cfg.Databases {
		rel := filepath.Clean(d.Path)
		if filepath.IsAbs(rel) {
			var err error
			if rel, err = filepath.Rel(r.res.InstallDir, rel); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				continue // outside the install: a rollback of the install does not touch it
			}
		}
		for _, p := range r.cfg.Restore.Preserve {
			p = filepath.Clean(p)
			if rel == p || strings.HasPrefix(rel, p+"/") {
				out = append(out, preservedDB{name: d.Name, rel: rel})
				break
			}
		}
	}
	return out
}

func dbNames(dbs []preservedDB) string {
	names := make([]string, len(dbs))
	for i, d := range dbs {
		names[i] = d.rel
	}
	return strings.Join(names, ", ")
}

var dbSuffixes = []string{"", "-wal", "-shm", "-journal"}

// withDataAside moves the backup's own copies of the preserved databases (with any
// -wal/-shm/-journal the archive had) out of the way of the carry-over, into a dir inside
// staging: a crash before the swap discards staging, so nothing can be left behind.
func (r *runner) withDataAside() (aside string, moved []preservedDB, err error) {
	aside = filepath.Join(r.res.StagingDir, ".cfrollback-with-data")
	for i, d := range r.preservedDatabases() {
		staged := filepath.Join(r.res.StagingDir, d.rel)
		if !install.Exists(staged) {
			r.warn("--with-data: the backup has no copy of %s; the live database is carried over", d.rel)
			continue
		}
		dir := filepath.Join(aside, fmt.Sprint(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return aside, moved, err
		}
		for _, s := range dbSuffixes {
			if install.Exists(staged + s) {
				if err := r.fx.Rename(staged+s, filepath.Join(dir, "db"+s)); err != nil {
					return aside, moved, err
				}
			}
		}
		moved = append(moved, d)
	}
	return aside, moved, nil
}

// withDataBack puts the backup's copies back over what the carry-over brought from the
// live install (whose files stay, untouched, in the failed install).
func (r *runner) withDataBack(aside string, moved []preservedDB) error {
	for i, d := range r.preservedDatabases() {
		if !contains(moved, d) {
			continue
		}
		staged := filepath.Join(r.res.StagingDir, d.rel)
		for _, s := range dbSuffixes {
			if err := r.fx.RemoveAll(staged + s); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(filepath.Dir(staged), 0o755); err != nil {
			return err
		}
		dir := filepath.Join(aside, fmt.Sprint(i))
		for _, s := range dbSuffixes {
			if install.Exists(filepath.Join(dir, "db"+s)) {
				if err := r.fx.Rename(filepath.Join(dir, "db"+s), staged+s); err != nil {
					return err
				}
			}
		}
	}
	return r.fx.RemoveAll(aside)
}

func contains(dbs []preservedDB, d preservedDB) bool {
	for _, x := range dbs {
		if x == d {
			return true
		}
	}
	return false
}

// checkData is the check_data step: quick_check of every preserved database in the
// restored tree. It runs while the service is down because only then is the data final.
// A corrupt database is replaced by the newest DB backup that restores cleanly; the
// corrupt file is kept. The step never fails the rollback: the code rollback is what
// the run is for, and a database it cannot fix is said loudly.
func (r *runner) checkData(ctx context.Context) (string, any, error) {
	dbs := r.preservedDatabases()
	if len(dbs) == 0 {
		return "no configured database is under restore.preserve; nothing to check", nil, nil
	}
	source := "live"
	if r.opt.WithData {
		source = "backup"
	}
	if r.opt.DryRun {
		var parts []string
		for _, d := range dbs {
			dc := DataCheck{Name: d.name, Path: filepath.Join(r.res.InstallDir, d.rel), Source: source, Status: "planned"}
			newest := "none found"
			if c := r.dbCandidates(d.name); len(c) > 0 {
				newest = c[0].Path
			}
			dc.Detail = fmt.Sprintf("would quick_check %s (%s copy) and replace it if corrupt with the newest good DB backup (newest now: %s)", d.rel, source, newest)
			r.res.DataChecks = append(r.res.DataChecks, dc)
			parts = append(parts, fmt.Sprintf("%s (newest DB backup now: %s)", d.rel, newest))
		}
		return fmt.Sprintf("would quick_check %s in the restored tree (service down) and replace a corrupt one with the newest good DB backup, keeping the corrupt file",
			strings.Join(parts, ", ")), nil, nil
	}
	var summary []string
	for _, d := range dbs {
		dc := r.checkOne(ctx, d, source)
		r.res.DataChecks = append(r.res.DataChecks, dc)
		summary = append(summary, d.name+": "+dc.Detail)
	}
	return strings.Join(summary, "; "), r.res.DataChecks, nil
}

func (r *runner) checkOne(ctx context.Context, d preservedDB, source string) DataCheck {
	staged := filepath.Join(r.res.StagingDir, d.rel)
	dc := DataCheck{Name: d.name, Path: filepath.Join(r.res.InstallDir, d.rel), Source: source}
	if !install.Exists(staged) {
		dc.Status, dc.Detail = "missing", "not present; nothing to check"
		return dc
	}
	chk, err := sqlitedb.Check(ctx, staged, sqlitedb.CheckOptions{Quick: true, BusyTimeout: r.cfg.Database.BusyTimeout})
	dc.CheckMS = chk.DurationMS
	if err != nil {
		dc.Status, dc.Detail = "unchecked", "quick_check could not run: "+err.Error()
		r.warn("%s: %s; it was carried over as it was", d.rel, dc.Detail)
		return dc
	}
	if chk.OK {
		dc.Status, dc.Detail = "ok", fmt.Sprintf("quick_check ok in %d ms, left as it was", chk.DurationMS)
		return dc
	}
	dc.Problems = chk.Problems
	r.warn("%s (%s copy) failed quick_check: %s", d.rel, source, chk.Summary())
	for _, c := range r.dbCandidates(d.name) {
		res, err := r.fx.RestoreDB(ctx, c.Path, staged, sqlitedb.RestoreOptions{BusyTimeout: r.cfg.Database.BusyTimeout, Now: r.deps.Now})
		if err != nil {
			reason := strings.TrimPrefix(err.Error(), "restore "+staged+": ")
			dc.Skipped = append(dc.Skipped, SkippedBackup{Path: c.Path, Reason: reason})
			r.warn("SKIPPING DB backup %s: %s", c.Path, reason)
			if errors.Is(err, sqlitedb.ErrCorrupt) || errors.Is(err, sqlitedb.ErrNotDatabase) || strings.Contains(err.Error(), "sha256") {
				continue
			}
			break // not the backup's fault (space, permissions): the next one would fail too
		}
		dc.Status, dc.DBBackup, dc.DBBackupTime = "replaced", c.Path, c.Time
		if res.Failed != nil {
			dc.KeptCorrupt = r.installPath(res.Failed.Path)
		}
		dc.Detail = fmt.Sprintf("CORRUPT (%s); replaced by the DB backup %s from %s: writes after that are lost from the live database, which is kept as %s and in the failed install",
			chk.Summary(), c.Path, c.Time.Format(time.RFC3339), dc.KeptCorrupt)
		r.warn("%s: %s", d.rel, dc.Detail)
		return dc
	}
	dc.Status = "corrupt_kept"
	dc.Detail = fmt.Sprintf("CORRUPT (%s) and no DB backup could replace it; the service starts on it. After the rollback: cfrollback database check --db %s --repair-if-needed", chk.Summary(), d.name)
	r.warn("%s: %s", d.rel, dc.Detail)
	return dc
}

// dbCandidates are the database's backups in database.backup_dir and the seed's
// <install>/backups (the live install's: staging is not in place yet), newest first.
func (r *runner) dbCandidates(name string) []sqlitedb.Candidate {
	return sqlitedb.Candidates(name, r.cfg.Database.BackupDir, filepath.Join(r.res.InstallDir, "backups"))
}

// installPath names a path under staging by where it will be after the swap.
func (r *runner) installPath(p string) string {
	if rel, err := filepath.Rel(r.res.StagingDir, p); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.Join(r.res.InstallDir, rel)
	}
	return p
}

// dataNext are the next steps a data check adds to a finished run.
func (r *runner) dataNext() []string {
	var out []string
	for _, dc := range r.res.DataChecks {
		switch dc.Status {
		case "replaced":
			out = append(out, fmt.Sprintf("cfrollback database check --db %s --tables all   # %s was corrupt and replaced by %s; the corrupt file is kept at %s", dc.Name, dc.Name, dc.DBBackup, dc.KeptCorrupt))
		case "corrupt_kept":
			out = append(out, fmt.Sprintf("cfrollback database check --db %s --repair-if-needed   # %s is corrupt and no DB backup could replace it", dc.Name, dc.Name))
		}
	}
	return out
}
