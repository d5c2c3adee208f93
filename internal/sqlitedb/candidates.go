package sqlitedb

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Candidate is a backup file of one database: <name>-backup-<ts>.db.
type Candidate struct {
	Path string    `json:"path"`
	Time time.Time `json:"time"`
}

// Candidates lists <name>-backup-*.db in dirs (cfrollback's database.backup_dir and the
// seed's <install>/backups), newest first: by the time in the name, else the file's mtime.
func Candidates(name string, dirs ...string) []Candidate {
	var out []Candidate
	seen := map[string]bool{}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		matches, _ := filepath.Glob(filepath.Join(dir, name+"-backup-*.db"))
		for _, p := range matches {
			fi, err := os.Lstat(p)
			if err != nil || !fi.Mode().IsRegular() || seen[p] {
				continue
			}
			seen[p] = true
			ts := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), name+"-backup-"), ".db")
			t, err := time.ParseInLocation(TimestampLayout, ts, time.Local)
			if err != nil {
				t = fi.ModTime()
			}
			out = append(out, Candidate{Path: p, Time: t})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out
}

// NewestGood returns the first of cands (newest first) whose .sha256 sidecar, if any,
// matches and that passes integrity_check, with its check (row counts included). skip is
// told about every newer candidate passed over, and why. ok is false when none is good.
func NewestGood(ctx context.Context, cands []Candidate, busy time.Duration, skip func(c Candidate, reason string)) (Candidate, CheckResult, bool, error) {
	for _, c := range cands {
		reason := ""
		var r CheckResult
		if _, err := VerifyChecksum(c.Path); err != nil {
			reason = err.Error()
		} else if r, err = Check(ctx, c.Path, CheckOptions{Tables: true, BusyTimeout: busy}); err != nil {
			if ctx.Err() != nil {
				return Candidate{}, r, false, ctx.Err()
			}
			reason = err.Error()
		} else if !r.OK {
			reason = r.Summary()
		}
		if reason == "" {
			return c, r, true, nil
		}
		if skip != nil {
			skip(c, reason)
		}
	}
	return Candidate{}, CheckResult{}, false, nil
}
