package runbook

// The warm standby's procedures: refresh (extract the backup an emergency would choose into
// a temp sibling, rename it into place, seal it), drop, and a read-only status. A refresh
// killed anywhere leaves no seal that vouches for a tree: the old seal is removed before the
// old standby is moved, and the new seal is written, durably, only after the new tree is in
// place and synced (archive.Extract ends with a syncfs).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/standby"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// The standby procedures' commands, as journaled.
const (
	StandbyRefreshCommand = "standby refresh"
	StandbyDropCommand    = "standby drop"
)

// StandbyResult is what a standby refresh or drop did; --json prints it as is.
type StandbyResult struct {
	RunID   string `json:"run_id"`
	Command string `json:"command"`
	DryRun  bool   `json:"dry_run"`
	// Outcome: ok (refreshed), current (it already held the right backup, seal valid),
	// dropped, none (nothing to drop; for a refresh: no backup an emergency would restore), kept (drop --if-backup-gone: its backup is there),
	// planned (dry run), failed, preflight_failed.
	Outcome    string            `json:"outcome"`
	Dir        string            `json:"dir"`
	Backup     *backup.Candidate `json:"backup,omitempty"`
	Entries    int               `json:"entries,omitempty"`
	Bytes      int64             `json:"bytes,omitempty"`
	Skipped    []SkippedBackup   `json:"skipped_backups"`
	Steps      []StepResult      `json:"steps"`
	AfterRun   string            `json:"after_run,omitempty"`
	Detail     string            `json:"detail"`
	DurationMS int64             `json:"duration_ms"`
	Journal    string            `json:"journal,omitempty"`
	Error      string            `json:"error,omitempty"`
	Next       []string          `json:"next,omitempty"`
}

// standbyIntent is journaled first by a refresh or a drop.
type standbyIntent struct {
	Command    string `json:"command"`
	User       string `json:"user"`
	PID        int    `json:"pid"`
	InstallDir string `json:"install_dir"`
	StandbyDir string `json:"standby_dir"`
	TempDir    string `json:"temp_dir,omitempty"`
	AfterRun   string `json:"after_run,omitempty"`
}

// StandbyRefresh is `cfrollback standby refresh`: a locked, journaled procedure.
func StandbyRefresh(ctx context.Context, opt Options, deps Deps) (*StandbyResult, error) {
	opt.Command = StandbyRefreshCommand
	r := newRunner(opt, deps)
	r.quietSkips = true
	var res *StandbyResult
	r.finishFn = func(err error) { r.finishStandby(res, err) }
	_, err := r.run(ctx, func(ctx context.Context) error {
		var err error
		res, err = r.standbyRefreshBody(ctx, "")
		return err
	})
	if res == nil { // the lock or the journal refused: nothing was done
		res = r.standbyResult("")
		r.finishStandby(res, err)
	}
	return res, err
}

// standbyRefresh runs a refresh inside a run that holds the lock already (after an
// emergency), with this runner's own run id in the same journal.
func (r *runner) standbyRefresh(ctx context.Context, afterRun string) *StandbyResult {
	res, err := r.standbyRefreshBody(ctx, afterRun)
	r.finishStandby(res, err)
	return res
}

func (r *runner) standbyResult(afterRun string) *StandbyResult {
	return &StandbyResult{RunID: r.runID, Command: r.opt.Command, DryRun: r.opt.DryRun, Dir: r.cfg.StandbyPath(), AfterRun: afterRun}
}

func (r *runner) standbyRefreshBody(ctx context.Context, afterRun string) (*StandbyResult, error) {
	res := r.standbyResult(afterRun)
	dir := res.Dir
	tmp, old := standby.TempPrefix(dir)+r.runID, standby.OldPrefix(dir)+r.runID
	event := journal.EventIntent
	if afterRun != "" {
		event = "standby" // inside a rollback run that has its outcome already: not a new intent
	}
	if err := r.record(event, "", standbyIntent{
		Command: StandbyRefreshCommand, User: whoami(), PID: os.Getpid(), InstallDir: r.res.InstallDir,
		StandbyDir: dir, TempDir: tmp, AfterRun: afterRun,
	}); err != nil {
		return res, &StepError{Step: "journal", Err: err, Hint: "fix the journal path or its permissions; nothing was changed"}
	}
	if !r.cfg.Standby.Enabled {
		return res, &StepError{Step: "preflight", Err: errors.New("standby.enabled is false"),
			Hint: "set standby.enabled: true (or CFROLLBACK_STANDBY_ENABLED=true) to keep a standby; 'cfrollback standby drop' removes one that is left"}
	}
	if err := r.step(ctx, "prepare", func(context.Context) (string, any, error) { return r.standbyPrepare(dir) }); err != nil {
		return res, err
	}
	var b standby.Backup
	uid, gid := 0, 0
	current := false
	none := false
	if err := r.step(ctx, "extract", func(ctx context.Context) (string, any, error) {
		var err error
		if uid, gid, err = r.restoreOwner(); err != nil {
			return "", nil, err
		}
		var detail string
		b, current, detail, err = r.standbyExtract(ctx, res, dir, tmp, uid, gid)
		if errors.Is(err, errNothingToStandBy) {
			none = true
			return err.Error(), nil, nil
		}
		return detail, map[string]any{"backup": b.Path, "sha256": b.SHA256, "current": current}, err
	}); err != nil {
		return res, err
	}
	switch {
	case none:
		res.Outcome = "none"
		return res, nil
	case current:
		res.Outcome = "current"
		return res, nil
	}
	if err := r.step(ctx, "swap_in", func(context.Context) (string, any, error) {
		// The old seal goes first: from here until the new seal is written no seal vouches
		// for anything at dir.
		if err := r.removeSeal(dir); err != nil {
			return "", nil, err
		}
		if install.Exists(dir) {
			if err := r.fx.Rename(dir, old); err != nil {
				return "", nil, err
			}
		}
		if err := r.fx.Rename(tmp, dir); err != nil {
			return "", nil, err
		}
		if r.opt.DryRun {
			return "would put the new tree in place of " + dir, nil, nil
		}
		return "new tree in place at " + dir, nil, nil
	}); err != nil {
		return res, err
	}
	if err := r.step(ctx, "seal", func(ctx context.Context) (string, any, error) {
		if r.opt.DryRun {
			return "would seal it (one stat walk) into " + standby.SealPath(dir), nil, nil
		}
		s, err := standby.Make(ctx, dir, b, uid, gid, r.deps.Now(), r.runID)
		if err != nil {
			return "", nil, err
		}
		if err := standby.Write(standby.SealPath(dir), s); err != nil {
			return "", nil, err
		}
		res.Entries, res.Bytes = s.Entries, s.Bytes
		if install.Exists(old) {
			if err := r.fx.RemoveAll(old); err != nil {
				r.warn("could not remove the old standby %s: %v (the next refresh removes it)", old, err)
			}
		}
		return fmt.Sprintf("sealed %d entries (%s) at %s", s.Entries, ui.Bytes(s.Bytes), dir), map[string]any{"entries": s.Entries, "bytes": s.Bytes}, nil
	}); err != nil {
		return res, err
	}
	res.Outcome = "ok"
	return res, nil
}

// standbyPrepare checks where the standby goes and removes what killed refreshes left.
func (r *runner) standbyPrepare(dir string) (string, any, error) {
	parent := filepath.Dir(dir)
	if err := fsutil.CheckTrustedDir(parent); err != nil {
		return "", nil, fmt.Errorf("the standby's dir %s: %w", parent, fsutil.WithKey(err, "standby.dir"))
	}
	if err := sameDevice(parent, filepath.Dir(r.res.InstallDir)); err != nil {
		return "", nil, err
	}
	stale := leftovers(dir)
	for _, p := range stale {
		if err := r.fx.RemoveAll(p); err != nil {
			return "", nil, fmt.Errorf("remove %s, left by an interrupted refresh: %w", p, err)
		}
	}
	r.closeKilledRefreshes()
	if len(stale) == 0 {
		return "nothing left by an earlier refresh", nil, nil
	}
	verb := "removed"
	if r.opt.DryRun {
		verb = "would remove"
	}
	return fmt.Sprintf("%s %d dir(s) left by an interrupted refresh: %s", verb, len(stale), strings.Join(stale, ", ")), nil, nil
}

// closeKilledRefreshes gives killed refreshes an outcome, so they do not stay "interrupted"
// in history: their temp dirs were just removed.
func (r *runner) closeKilledRefreshes() {
	if r.j == nil || r.opt.DryRun {
		return
	}
	jc, err := journal.ReadChecked(r.cfg.Journal)
	if err != nil {
		return
	}
	for _, run := range journal.Runs(jc.Records) {
		if run.ID != r.runID && run.Unfinished() && run.Command == StandbyRefreshCommand {
			r.closeRun(run.ID, outcomeData{Outcome: "abandoned by " + r.runID})
		}
	}
}

// standbyExtract picks the backup an emergency would pick now, by the same rules, and
// extracts it into tmp, unless the standby already holds it (current).
func (r *runner) standbyExtract(ctx context.Context, res *StandbyResult, dir, tmp string, uid, gid int) (standby.Backup, bool, string, error) {
	cands, err := r.candidates()
	if err != nil {
		return standby.Backup{}, false, "", err
	}
	lim := archive.DefaultLimits()
	lim.MaxTotalSize = int64(r.cfg.Backup.MaxSize)
	running := r.inspectRunning()
	preserved, err := r.preservedSize()
	if err != nil {
		return standby.Backup{}, false, "", err
	}
	for _, c := range cands {
		if ok, _ := r.eligible(c, running); !ok {
			continue
		}
		b, err := standby.BackupOf(c.Path)
		if err != nil {
			r.skip(c, err.Error())
			continue
		}
		cc := c
		res.Backup = &cc
		if s, err := standby.Check(ctx, dir, standby.Want{Backup: b, ManifestSHA256: c.ManifestSHA256, UID: uid, GID: gid, MaxBytes: lim.MaxTotalSize}); err == nil {
			res.Entries, res.Bytes = s.Entries, s.Bytes
			b.SHA256 = s.Backup.SHA256
			return b, true, fmt.Sprintf("already holds %s, seal valid (%d entries, %s)", c.Name, s.Entries, ui.Bytes(s.Bytes)), nil
		} else if ctx.Err() != nil {
			return b, false, "", ctx.Err()
		}
		if err := r.standbySpace(c, preserved); err != nil {
			return b, false, "", err
		}
		r.info("extracting %s (%s) to %s", c.Name, ui.Bytes(c.Size), tmp)
		sum, err := r.fx.Stage(ctx, c.Path, tmp, archive.ExtractOptions{
			Limits: lim, UID: uid, GID: gid, Progress: r.progress(c.Name), AfterEntry: r.extractKillHook(),
		})
		if err != nil {
			if ctx.Err() != nil {
				return b, false, "", ctx.Err()
			}
			if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
				return b, false, "", fmt.Errorf("extract %s: %w; the standby needs the space of one install: free some, or set standby.enabled: false", c.Name, err)
			}
			r.skip(c, err.Error())
			continue
		}
		if c.ManifestSHA256 != "" && !strings.EqualFold(c.ManifestSHA256, sum.SHA256) {
			_ = r.fx.RemoveAll(tmp)
			r.skip(c, fmt.Sprintf("sha256 %s does not match its manifest (%s)", sum.SHA256, c.ManifestSHA256))
			continue
		}
		b.SHA256 = sum.SHA256
		res.Entries, res.Bytes = sum.Entries, sum.Bytes
		verb := "extracted"
		if r.opt.DryRun {
			verb = "would extract (verified)"
		}
		return b, false, fmt.Sprintf("%s %s (%d entries, %s) into %s", verb, c.Name, sum.Entries, ui.Bytes(sum.Bytes), tmp), nil
	}
	res.Backup = nil
	return standby.Backup{}, false, "", errNothingToStandBy
}

// errNothingToStandBy: every backup is one an emergency would pass over (often the only one
// is of the running install). Not a failure: there is nothing to keep warm.
var errNothingToStandBy = errors.New("no backup an emergency would restore now (see the skipped list); nothing to keep warm")

// standbySpace refuses a refresh that would leave too little room for a cold emergency: the
// standby's tree, and then still the backup's compressed size, the preserved data and the
// margin an emergency that extracts needs.
func (r *runner) standbySpace(c backup.Candidate, preserved int64) error {
	expanded := c.Size
	if m, err := backup.ReadManifest(c.Path); err == nil && m.Bytes > expanded {
		expanded = m.Bytes
	}
	parent := filepath.Dir(r.cfg.StandbyPath())
	free, err := install.FreeBytes(parent)
	if err != nil {
		return err
	}
	if need := expanded + c.Size + preserved + carryMargin; free < need {
		return fmt.Errorf("not enough free space in %s for the standby: %s free; %s needs %s expanded, and an emergency that extracts would still need %s (backup) + %s (preserved data) + %s; free some space or set standby.enabled: false",
			parent, ui.Bytes(free), c.Name, ui.Bytes(expanded), ui.Bytes(c.Size), ui.Bytes(preserved), ui.Bytes(carryMargin))
	}
	return nil
}

// removeSeal removes the seal of the standby at dir, durably; none is fine.
func (r *runner) removeSeal(dir string) error {
	p := standby.SealPath(dir)
	if r.opt.DryRun || !install.Exists(p) {
		return nil
	}
	if err := r.fx.RemoveAll(p); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(p))
}

func (r *runner) finishStandby(res *StandbyResult, err error) {
	res.DurationMS = r.deps.Now().Sub(r.start).Milliseconds()
	res.Steps, res.Skipped = r.res.Steps, r.res.Skipped
	res.Journal = r.res.Journal
	if len(res.Steps) > 0 {
		res.Detail = res.Steps[len(res.Steps)-1].Detail
	}
	switch {
	case err != nil:
		res.Outcome = "failed"
		if errors.Is(err, ErrPreflight) {
			res.Outcome = "preflight_failed"
		}
		res.Error = err.Error()
		res.Next = []string{"cfrollback standby status", "cfrollback standby refresh --dry-run"}
	case r.opt.DryRun:
		res.Outcome = "planned"
	}
	if r.opt.DryRun || r.j == nil {
		return
	}
	event := journal.EventOutcome
	if res.AfterRun != "" {
		event = "standby" // the rollback run recorded its own outcome
	}
	_ = r.record(event, "", map[string]any{
		"outcome": res.Outcome, "standby_dir": res.Dir, "backup": backupOf(res.Backup), "error": res.Error, "duration_ms": res.DurationMS,
	})
	r.hlog.printf("%s outcome: %s %s", res.Command, strings.ToUpper(res.Outcome), res.Detail)
}

func backupOf(c *backup.Candidate) string {
	if c == nil {
		return ""
	}
	return c.Path
}

// DropOptions narrow standby drop.
type DropOptions struct {
	// IfBackupGone drops the standby only when the backup it holds no longer exists (after
	// a prune); otherwise the outcome is "kept".
	IfBackupGone bool
}

// StandbyDrop is `cfrollback standby drop`: removes the seal (first, durably), then the tree
// and anything an interrupted refresh left. A locked, journaled procedure.
func StandbyDrop(ctx context.Context, opt Options, deps Deps, do DropOptions) (*StandbyResult, error) {
	opt.Command = StandbyDropCommand
	r := newRunner(opt, deps)
	res := r.standbyResult("")
	r.finishFn = func(err error) { r.finishStandby(res, err) }
	_, err := r.run(ctx, func(ctx context.Context) error {
		if err := r.record(journal.EventIntent, "", standbyIntent{
			Command: StandbyDropCommand, User: whoami(), PID: os.Getpid(), InstallDir: r.res.InstallDir, StandbyDir: res.Dir,
		}); err != nil {
			return &StepError{Step: "journal", Err: err, Hint: "fix the journal path or its permissions; nothing was changed"}
		}
		return r.step(ctx, "drop", func(context.Context) (string, any, error) {
			dir := res.Dir
			if do.IfBackupGone {
				s, err := standby.Read(standby.SealPath(dir))
				if err == nil && install.Exists(s.Backup.Path) {
					res.Outcome = "kept"
					return "kept: its backup " + s.Backup.Path + " is still there", nil, nil
				}
			}
			paths := leftovers(dir)
			sealed := install.Exists(standby.SealPath(dir))
			if install.Exists(dir) {
				paths = append(paths, dir)
			}
			if len(paths) == 0 && !sealed {
				res.Outcome = "none"
				return "there was no standby at " + dir, nil, nil
			}
			if err := r.removeSeal(dir); err != nil {
				return "", nil, err
			}
			for _, p := range paths {
				if err := r.fx.RemoveAll(p); err != nil {
					return "", nil, err
				}
			}
			res.Outcome = "dropped"
			verb := "removed"
			if r.opt.DryRun {
				verb = "would remove"
			}
			return fmt.Sprintf("%s the seal and %s", verb, strings.Join(append([]string{}, paths...), ", ")), nil, nil
		})
	})
	return res, err
}

// sameDevice refuses a standby dir on another filesystem than the install's: it must be
// renamed into the staging dir's place.
func sameDevice(a, b string) error {
	var sa, sb syscall.Stat_t
	if err := syscall.Stat(a, &sa); err != nil {
		return &os.PathError{Op: "stat", Path: a, Err: err}
	}
	if err := syscall.Stat(b, &sb); err != nil {
		return nil // no install parent yet: emergency will say so
	}
	if sa.Dev != sb.Dev {
		return fmt.Errorf("%s and %s are on different filesystems; the standby must be renamed into the install's place: set standby.dir to a dir beside install_dir, or leave it empty", a, b)
	}
	return nil
}

// leftovers are the temp and set-aside dirs interrupted refreshes of the standby at dir left.
func leftovers(dir string) []string {
	stale, _ := filepath.Glob(globQuote(standby.TempPrefix(dir)) + "*")
	olds, _ := filepath.Glob(globQuote(standby.OldPrefix(dir)) + "*")
	return append(stale, olds...)
}

func globQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(s)
}
