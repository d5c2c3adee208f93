package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// PruneOptions are prune's rules.
type PruneOptions struct {
	Keep   int           // always keep the newest Keep backups
	MaxAge time.Duration // beyond those, delete backups older than this
	Now    time.Time
	// InUse maps paths (backups and failed dirs) that a run is using to
	// that run's id; they are never deleted.
	InUse map[string]string
	// FailedOlderThan, when positive, deletes failed dirs older than it;
	// zero lists them only.
	FailedOlderThan time.Duration
}

// PruneItem is one backup or failed dir and what prune does with it.
type PruneItem struct {
	ID     string    `json:"id"`
	Path   string    `json:"path"`
	Kind   string    `json:"kind"` // backup | failed_dir
	Time   time.Time `json:"time"`
	Size   int64     `json:"size"`
	Delete bool      `json:"delete"`
	Reason string    `json:"reason"`
}

// PlanPrune decides, for backups newest first (as Discover returns them),
// which to delete. It never deletes the newest backup marked good, the
// newest one whose last verification passed, one that InUse names, or one
// of the newest Keep; of the rest it deletes those older than MaxAge.
func PlanPrune(cands []Candidate, st *State, opt PruneOptions) []PruneItem {
	newestGood, newestVerified := "", ""
	for _, c := range cands {
		s := st.Get(c.Name)
		if newestGood == "" && s.Mark != nil && s.Mark.Value == MarkGood {
			newestGood = c.Path
		}
		if newestVerified == "" && s.Verify != nil && s.Verify.OK {
			newestVerified = c.Path
		}
	}
	out := make([]PruneItem, 0, len(cands))
	for i, c := range cands {
		it := PruneItem{ID: ID(c.Name), Path: c.Path, Kind: "backup", Time: c.Time, Size: c.Size}
		age := opt.Now.Sub(c.Time)
		switch run, inUse := opt.InUse[c.Path]; {
		case inUse:
			it.Reason = "in use by run " + run
		case c.Path == newestGood:
			it.Reason = "newest backup marked good"
		case c.Path == newestVerified:
			it.Reason = "newest backup that verified"
		case i < opt.Keep:
			it.Reason = fmt.Sprintf("one of the newest %d", opt.Keep)
		case age <= opt.MaxAge:
			it.Reason = "younger than " + ui.FormatDuration(opt.MaxAge)
		default:
			it.Delete = true
			it.Reason = fmt.Sprintf("%s old, older than %s and not one of the newest %d", ui.Age(age), ui.FormatDuration(opt.MaxAge), opt.Keep)
		}
		out = append(out, it)
	}
	return out
}

// FailedDirs lists the failed installs kept by rollbacks (paths matching
// glob), with their sizes and the time from their name.
func FailedDirs(glob string) ([]PruneItem, error) {
	matches, err := filepath.Glob(glob)
	if err != nil {
		return nil, err
	}
	var out []PruneItem
	for _, p := range matches {
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() {
			continue
		}
		it := PruneItem{ID: filepath.Base(p), Path: p, Kind: "failed_dir", Time: fi.ModTime()}
		if m := stampRE.FindString(filepath.Base(p)); m != "" {
			if t, err := time.ParseInLocation("20060102-150405", m, time.Local); err == nil {
				it.Time = t
			}
		}
		it.Size = treeSize(p)
		out = append(out, it)
	}
	return out, nil
}

// PlanFailedDirs decides which failed dirs to delete: only with
// FailedOlderThan set, only older than it, never one a run is using.
func PlanFailedDirs(dirs []PruneItem, opt PruneOptions) []PruneItem {
	for i := range dirs {
		d := &dirs[i]
		age := opt.Now.Sub(d.Time)
		switch run, inUse := opt.InUse[d.Path]; {
		case inUse:
			d.Reason = "in use by run " + run
		case opt.FailedOlderThan <= 0:
			d.Reason = "failed dirs are deleted only with --failed-older-than"
		case age <= opt.FailedOlderThan:
			d.Reason = "younger than " + ui.FormatDuration(opt.FailedOlderThan)
		default:
			d.Delete = true
			d.Reason = fmt.Sprintf("%s old, older than %s", ui.Age(age), ui.FormatDuration(opt.FailedOlderThan))
		}
	}
	return dirs
}

func treeSize(root string) int64 {
	var n int64
	_ = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// InUse finds the backups and failed dirs that a run may be using: those
// named by any unfinished run in the journal (a run that was killed is
// completed or undone by the next emergency, which needs them). If the
// lock is held by a run whose backup is not known yet (it is still
// choosing one), it returns a *lock.HeldError: nothing may be deleted now.
func InUse(journalPath, lockPath string) (map[string]string, error) {
	inUse := map[string]string{}
	jc, err := journal.ReadChecked(journalPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cannot tell which backups a run is using: %w; run 'cfrollback journal verify'", err)
	}
	known := map[string]bool{}
	for _, run := range journal.Runs(jc.Records) {
		// A run the hash chain no longer vouches for may have had its outcome forged or
		// an unfinished step deleted: what it names is kept, finished or not.
		if !run.Unfinished() && jc.Trusted(run) {
			continue
		}
		for _, rec := range run.Records {
			for _, p := range pathsIn(rec.Data) {
				inUse[p] = run.ID
				known[run.ID] = true
			}
		}
	}
	h, err := lock.ReadHolder(lockPath)
	if err != nil {
		return inUse, nil
	}
	// A probe that cannot tell counts as held: deleting nothing is the safe side.
	if held, err := lock.Probe(lockPath); err == nil && !held {
		return inUse, nil
	}
	if h.RunID == "" || !known[h.RunID] {
		return nil, &lock.HeldError{Path: lockPath, Holder: h}
	}
	return inUse, nil
}

// pathsIn collects "backup" and "failed_dir" values from a record's data
// and from its nested "data" (a step_done's payload).
func pathsIn(raw json.RawMessage) []string {
	var d map[string]json.RawMessage
	if json.Unmarshal(raw, &d) != nil {
		return nil
	}
	var out []string
	for _, k := range []string{"backup", "failed_dir"} {
		var s string
		if json.Unmarshal(d[k], &s) == nil && s != "" {
			out = append(out, s)
		}
	}
	if inner, ok := d["data"]; ok {
		out = append(out, pathsIn(inner)...)
	}
	return out
}

// ParseAge parses an age such as 7d, 2w, 36h or 90m (time.ParseDuration
// units plus d for days and w for weeks).
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if num, ok := strings.CutSuffix(s, suffix); ok {
			n, err := strconv.ParseFloat(num, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("age %q: want a number and a unit, such as 7d, 36h or 2w", s)
			}
			return time.Duration(n * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("age %q: want a number and a unit, such as 7d, 36h or 2w", s)
	}
	return d, nil
}
