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
	"time"

	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
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

// StandbyRefresh is `cfrollback standby refresh`: a journaled procedure that holds the run
// lock only for its short steps (see refreshPhased).
func StandbyRefresh(ctx context.Context, opt Options, deps Deps) (*StandbyResult, error) {
	opt.Command = StandbyRefreshCommand
	r := newRunner(opt, deps)
	r.quietSkips = true
	return r.refreshPhased(ctx, "")
}

// refreshPhased runs a refresh. The run lock is held for the intent and prepare (which
// removes what killed refreshes left and creates this refresh's private work dir), let go
// while the tree is extracted into the work dir and walked for its seal, and taken again
// (waiting at most swapLockWait) for the swap-in, the seal and the outcome; the set-aside
// standby is removed after the lock is let go. An emergency (or a verify or assess record)
// that comes during the extraction does not wait for it.
func (r *runner) refreshPhased(ctx context.Context, afterRun string) (*StandbyResult, error) {
	since := r.deps.Now()
	lk := &refreshLock{r: r}
	var err error
	if afterRun != "" {
		err = lk.take(ctx) // the rollback just let the lock go: a verify record may hold it a moment
	} else {
		lk.release, err = r.begin()
	}
	if err != nil { // the lock or the journal refused: nothing was done
		res := r.standbyResult(afterRun)
		_, _ = r.refuse(err)
		r.finishStandby(res, err, since)
		return res, err
	}
	res, work, err := r.standbyRefreshBody(ctx, afterRun, lk)
	if cause := Interruption(ctx); cause != nil && err != nil {
		err = r.interrupted(cause, err)
	}
	r.finishStandby(res, err, since)
	lk.let()
	// Unlocked: the standby that was replaced (or a failed extraction) goes with the work
	// dir. A kill here leaves the work dir, which holds nothing sealed, to the next refresh.
	r.maybeKill("cleanup", "start")
	if rerr := work.Remove(); rerr != nil {
		r.warn("could not remove the refresh's work dir %s: %v (the next refresh removes it)", work.Dir, rerr)
	}
	return res, err
}

// swapLockWait bounds how long a refresh waits for the run lock once its tree is extracted;
// then it gives up (outcome busy) and the standby is simply not refreshed.
var swapLockWait = 5 * time.Second

// refreshLock is a refresh's hold on the run lock and the journal (see refreshPhased).
// Without it, r.j and r.hlog are nil: nothing can be journaled.
type refreshLock struct {
	r       *runner
	release func()
}

// let lets the lock and the journal go; a no-op when they are not held.
func (l *refreshLock) let() {
	if l.release != nil {
		l.release()
		l.release, l.r.j, l.r.hlog = nil, nil, nil
	}
}

// take takes the lock and opens the journal again (another run may have appended in
// between), waiting at most swapLockWait while another run holds it.
func (l *refreshLock) take(ctx context.Context) error {
	deadline := time.Now().Add(swapLockWait)
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, 400*time.Millisecond) {
		release, err := l.r.begin()
		if err == nil {
			l.release = release
			return nil
		}
		if !errors.Is(err, lock.ErrLocked) || time.Now().Add(delay).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(delay):
		}
	}
}

// standbyRefresh runs a refresh after a rollback that ended healthy and let its own lock go,
// with the rollback's run id in the same journal.
func (r *runner) standbyRefresh(ctx context.Context, afterRun string) *StandbyResult {
	res, _ := r.refreshPhased(ctx, afterRun)
	return res
}

func (r *runner) standbyResult(afterRun string) *StandbyResult {
	return &StandbyResult{RunID: r.runID, Command: r.opt.Command, DryRun: r.opt.DryRun, Dir: r.cfg.StandbyPath(), AfterRun: afterRun}
}

// errSwapBusy: the run lock stayed held when the extracted tree was ready.
var errSwapBusy = errors.New("the standby was not refreshed")

func (r *runner) standbyRefreshBody(ctx context.Context, afterRun string, lk *refreshLock) (*StandbyResult, *standby.Claim, error) {
	res := r.standbyResult(afterRun)
	dir := res.Dir
	work := &standby.Claim{Dir: standby.TempPrefix(dir) + r.runID}
	tree, old := filepath.Join(work.Dir, "tree"), filepath.Join(work.Dir, "old")
	event := journal.EventIntent
	if afterRun != "" {
		event = "standby" // inside a rollback run that has its outcome already: not a new intent
	}
	if err := r.record(event, "", standbyIntent{
		Command: StandbyRefreshCommand, User: whoami(), PID: os.Getpid(), InstallDir: r.res.InstallDir,
		StandbyDir: dir, TempDir: work.Dir, AfterRun: afterRun,
	}); err != nil {
		return res, work, &StepError{Step: "journal", Err: err, Hint: "fix the journal path or its permissions; nothing was changed"}
	}
	if !r.cfg.Standby.Enabled {
		return res, work, &StepError{Step: "preflight", Err: errors.New("standby.enabled is false"),
			Hint: "set standby.enabled: true (or CFROLLBACK_STANDBY_ENABLED=true) to keep a standby; 'cfrollback standby drop' removes one that is left"}
	}
	if err := r.step(ctx, "prepare", func(context.Context) (string, any, error) {
		detail, data, err := r.standbyPrepare(dir)
		if err != nil || r.opt.DryRun {
			return detail, data, err
		}
		c, err := standby.NewClaim(work.Dir)
		if err != nil {
			return "", nil, err
		}
		*work = *c
		return detail + "; extracting in " + work.Dir, data, nil
	}); err != nil {
		return res, work, err
	}
	var pick standby.Backup
	var draft *standby.Seal
	uid, gid := 0, 0
	current, none := false, false
	skipped := map[string]bool{}
	if err := r.step(ctx, "extract", func(ctx context.Context) (string, any, error) {
		var err error
		if uid, gid, err = r.restoreOwner(); err != nil {
			return "", nil, err
		}
		lk.let() // the extraction and its walk run without the lock
		var detail string
		pick, draft, current, detail, err = r.standbyExtract(ctx, res, dir, tree, uid, gid, skipped)
		if lerr := lk.take(ctx); lerr != nil {
			if err == nil && errors.Is(lerr, lock.ErrLocked) {
				res.Outcome = "busy"
				lerr = fmt.Errorf("%w: %w when the tree was ready (waited %s); the next backup create, healthy rollback or 'cfrollback standby refresh' refreshes it", errSwapBusy, lerr, swapLockWait)
			}
			return "", nil, lerr
		}
		if errors.Is(err, errNothingToStandBy) {
			none = true
			return err.Error(), nil, nil
		}
		return detail, map[string]any{"backup": pick.Path, "sha256": pick.SHA256, "current": current, "skipped": res.Skipped}, err
	}); err != nil {
		return res, work, err
	}
	switch {
	case none:
		res.Outcome = "none"
		return res, work, nil
	case current:
		res.Outcome = "current"
		return res, work, nil
	}
	superseded := ""
	if err := r.step(ctx, "swap_in", func(context.Context) (string, any, error) {
		// Under the lock again: is this still the backup an emergency would take, the same
		// file that was extracted, for the same owner?
		if superseded = r.standbyStillChosen(pick, uid, gid, skipped); superseded != "" {
			return "not put in place: " + superseded, nil, nil
		}
		// The old seal goes first: from here until the new seal is written no seal vouches
		// for anything at dir.
		if err := r.removeSeal(dir); err != nil {
			return "", nil, err
		}
		if r.opt.DryRun {
			return "would put the new tree in place of " + dir, nil, nil
		}
		if install.Exists(dir) {
			if err := standby.Disarm(dir); err != nil {
				return "", nil, err
			}
			if err := r.fx.Rename(dir, old); err != nil {
				return "", nil, err
			}
		}
		return r.standbyPutInPlace(tree, dir, draft)
	}); err != nil {
		return res, work, err
	}
	if superseded != "" {
		res.Outcome = "superseded"
		return res, work, nil
	}
	if err := r.step(ctx, "seal", func(context.Context) (string, any, error) {
		if r.opt.DryRun {
			return "would seal it (one stat walk) into " + standby.SealPath(dir), nil, nil
		}
		if err := standby.Moved(draft, dir); err != nil {
			return "", nil, err
		}
		draft.Created = r.deps.Now().UTC()
		if err := standby.Write(standby.SealPath(dir), draft); err != nil {
			return "", nil, err
		}
		res.Entries, res.Bytes = draft.Entries, draft.Bytes
		return fmt.Sprintf("sealed %d entries (%s) at %s", draft.Entries, ui.Bytes(draft.Bytes), dir), map[string]any{"entries": draft.Entries, "bytes": draft.Bytes}, nil
	}); err != nil {
		return res, work, err
	}
	res.Outcome = "ok"
	return res, work, nil
}

// standbyPutInPlace renames the sealed tree to dir and, when standby.read_only_mount is
// on, bind-mounts it onto itself read-only (draft records the mount, or in ArmNote why there
// is none). The tree's root is 0700 from before the rename until the mount is on, so that
// nobody else can open a file in it for writing in between.
func (r *runner) standbyPutInPlace(tree, dir string, draft *standby.Seal) (string, any, error) {
	shut, err := standby.ShutTree(tree)
	if err != nil {
		return "", nil, err
	}
	if err := r.fx.Rename(tree, dir); err != nil {
		_ = shut.Open()
		return "", nil, err
	}
	detail := "new tree in place at " + dir
	switch {
	case !r.cfg.Standby.ReadOnlyMount:
		draft.ArmNote = standbyMountOff
	default:
		if err := standby.Arm(dir, draft); err != nil {
			draft.ArmNote = err.Error()
			r.info("the standby is not mounted read-only (%v); emergency checks it with a stat walk", err)
		} else {
			detail += ", mounted read-only"
		}
	}
	if err := shut.Open(); err != nil {
		return "", nil, fmt.Errorf("give %s its mode back: %w", dir, err)
	}
	return detail, map[string]any{"read_only_mount": draft.MountID != 0}, nil
}

// standbyMountOff is the seal's ArmNote when standby.read_only_mount is off.
const standbyMountOff = "standby.read_only_mount is false"

// standbyStillChosen says why the backup a refresh extracted (pick) is no longer the one an
// emergency would take now ("" when it still is): another backup came first, the file
// changed, or the owner a restore would give changed. Backups the refresh passed over
// because they did not extract are passed over again.
func (r *runner) standbyStillChosen(pick standby.Backup, uid, gid int, skipped map[string]bool) string {
	if r.opt.DryRun {
		return ""
	}
	if u, g, err := r.restoreOwner(); err != nil || u != uid || g != gid {
		return "the owner a restore would give changed while it was extracted"
	}
	// eligible's notes were journaled and reported by the extraction already
	saved, hl, j, events := r.res.Skipped, r.hlog, r.j, r.deps.Events
	r.hlog, r.j, r.deps.Events = nil, nil, func(Event) {}
	defer func() { r.res.Skipped, r.hlog, r.j, r.deps.Events = saved, hl, j, events }()
	cands, err := r.candidates()
	if err != nil {
		return err.Error()
	}
	running := r.inspectRunning()
	for _, c := range cands {
		if skipped[c.Path] {
			continue
		}
		if ok, _ := r.eligible(&c, running); !ok {
			continue
		}
		if c.Path != pick.Path {
			return fmt.Sprintf("an emergency would now take %s, not %s", c.Name, filepath.Base(pick.Path))
		}
		now, err := standby.BackupOf(c.Path)
		if err != nil {
			return err.Error()
		}
		now.SHA256 = pick.SHA256
		if now != pick {
			return "the backup file " + c.Name + " changed while it was extracted"
		}
		return ""
	}
	return "an emergency would not take " + filepath.Base(pick.Path) + " any more"
}

// standbyPrepare checks where the standby goes and removes what killed refreshes left (a work
// dir that a running refresh holds is left alone).
func (r *runner) standbyPrepare(dir string) (string, any, error) {
	parent := filepath.Dir(dir)
	if err := fsutil.CheckTrustedDir(parent); err != nil {
		return "", nil, fmt.Errorf("the standby's dir %s: %w", parent, fsutil.WithKey(err, "standby.dir"))
	}
	if err := sameDevice(parent, filepath.Dir(r.res.InstallDir)); err != nil {
		return "", nil, err
	}
	var stale, busy []string
	for _, p := range leftovers(dir) {
		if r.opt.DryRun {
			if !standby.Held(p) {
				stale = append(stale, p)
			}
			continue
		}
		held, err := standby.Sweep(p)
		if err != nil {
			return "", nil, fmt.Errorf("remove %s, left by an interrupted refresh: %w", p, err)
		}
		if held {
			busy = append(busy, p)
		} else {
			stale = append(stale, p)
		}
	}
	r.closeKilledRefreshes()
	detail := "nothing left by an earlier refresh"
	if len(stale) > 0 {
		verb := "removed"
		if r.opt.DryRun {
			verb = "would remove"
		}
		detail = fmt.Sprintf("%s %d dir(s) left by an interrupted refresh: %s", verb, len(stale), strings.Join(stale, ", "))
	}
	if len(busy) > 0 {
		detail += fmt.Sprintf("; %d refresh(es) still extracting, left alone: %s", len(busy), strings.Join(busy, ", "))
	}
	return detail, nil, nil
}

// closeKilledRefreshes gives killed refreshes an outcome, so they do not stay "interrupted"
// in history: their work dirs were just removed. A refresh that still holds its work dir is
// running (extracting without the lock) and is left alone.
func (r *runner) closeKilledRefreshes() {
	if r.j == nil || r.opt.DryRun {
		return
	}
	jc, err := journal.ReadRecent(r.cfg.Journal) // only unfinished runs are looked at
	if err != nil {
		return
	}
	for _, run := range journal.Runs(jc.Records) {
		if run.ID == r.runID || !run.Unfinished() || run.Command != StandbyRefreshCommand {
			continue
		}
		if standby.Held(standby.TempPrefix(r.cfg.StandbyPath()) + run.ID) {
			continue
		}
		r.closeRun(run.ID, outcomeData{Outcome: "abandoned by " + r.runID})
	}
}

// standbyExtract picks the backup an emergency would pick now, by the same rules, and
// extracts it into tree and walks it for its seal (draft), unless the standby already holds
// it (current). Backups passed over because they did not extract are added to skipped.
func (r *runner) standbyExtract(ctx context.Context, res *StandbyResult, dir, tree string, uid, gid int, skipped map[string]bool) (standby.Backup, *standby.Seal, bool, string, error) {
	cands, err := r.candidates()
	if err != nil {
		return standby.Backup{}, nil, false, "", err
	}
	lim := archive.DefaultLimits()
	lim.MaxTotalSize = int64(r.cfg.Backup.MaxSize)
	running := r.inspectRunning()
	preserved, err := r.preservedSize()
	if err != nil {
		return standby.Backup{}, nil, false, "", err
	}
	for _, c := range cands {
		if ok, _ := r.eligible(&c, running); !ok {
			continue
		}
		b, err := standby.BackupOf(c.Path)
		if err != nil {
			r.skip(c, err.Error())
			skipped[c.Path] = true
			continue
		}
		cc := c
		res.Backup = &cc
		if s, err := standby.Check(ctx, dir, standby.Want{Backup: b, ManifestSHA256: c.ManifestSHA256, UID: uid, GID: gid, MaxBytes: lim.MaxTotalSize}); err == nil && !r.standbyWantsMount(s) {
			res.Entries, res.Bytes = s.Entries, s.Bytes
			b.SHA256 = s.Backup.SHA256
			return b, nil, true, fmt.Sprintf("already holds %s, seal valid (%d entries, %s)", c.Name, s.Entries, ui.Bytes(s.Bytes)), nil
		} else if err == nil {
			_, why := s.Proof()
			r.info("the standby holds %s but is not mounted read-only (%s); extracting it again to mount it", c.Name, why)
		} else if ctx.Err() != nil {
			return b, nil, false, "", ctx.Err()
		}
		if err := r.standbySpace(c, preserved); err != nil {
			return b, nil, false, "", err
		}
		r.info("extracting %s (%s) to %s", c.Name, ui.Bytes(c.Size), tree)
		sum, err := r.fx.Stage(ctx, c.Path, tree, archive.ExtractOptions{
			Limits: lim, UID: uid, GID: gid, Progress: r.progress(c.Name), AfterEntry: r.standbyExtractHook(),
		})
		if err != nil {
			_ = r.fx.RemoveAll(tree)
			if ctx.Err() != nil {
				return b, nil, false, "", ctx.Err()
			}
			if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
				return b, nil, false, "", fmt.Errorf("extract %s: %w; the standby needs the space of one install: free some, or set standby.enabled: false", c.Name, err)
			}
			r.skip(c, err.Error())
			skipped[c.Path] = true
			continue
		}
		if c.ManifestSHA256 != "" && !strings.EqualFold(c.ManifestSHA256, sum.SHA256) {
			_ = r.fx.RemoveAll(tree)
			r.skip(c, fmt.Sprintf("sha256 %s does not match its manifest (%s)", sum.SHA256, c.ManifestSHA256))
			skipped[c.Path] = true
			continue
		}
		b.SHA256 = sum.SHA256
		res.Entries, res.Bytes = sum.Entries, sum.Bytes
		verb := "extracted"
		if r.opt.DryRun {
			verb = "would extract (verified)"
		}
		detail := fmt.Sprintf("%s %s (%d entries, %s) into %s", verb, c.Name, sum.Entries, ui.Bytes(sum.Bytes), tree)
		if r.opt.DryRun {
			return b, nil, false, detail, nil
		}
		// The walk for the seal, still without the lock: nobody but root can reach the tree
		// in the private work dir, and the swap's rename changes only its root's ctime.
		draft, err := standby.Make(ctx, tree, b, uid, gid, r.deps.Now(), r.runID)
		if err != nil {
			return b, nil, false, "", err
		}
		return b, draft, false, detail, nil
	}
	res.Backup = nil
	return standby.Backup{}, nil, false, "", errNothingToStandBy
}

// standbyWantsMount says whether a standby that checks (s) should be extracted again to get
// its read-only mount back: it had one (or was sealed while the setting was off) and the
// mount is gone, after a reboot say. Mounting the tree where it stands would not do: a
// descriptor opened for writing before the mount would write past it.
func (r *runner) standbyWantsMount(s *standby.Seal) bool {
	how, _ := s.Proof()
	return r.cfg.Standby.ReadOnlyMount && how == standby.ProofWalk && (s.ArmNote == "" || s.ArmNote == standbyMountOff)
}

// standbyExtractHook is the archive callback during a refresh's extraction: the kill hook
// (KillAt=extract:N), and testExtracting for tests that need a refresh caught mid-extraction.
func (r *runner) standbyExtractHook() func(n int) {
	kill, paused := r.extractKillHook(), testExtracting
	if kill == nil && paused == nil {
		return nil
	}
	return func(n int) {
		if kill != nil {
			kill(n)
		}
		if paused != nil && n == 1 {
			paused()
		}
	}
}

// testExtracting, set by tests, is called after a refresh wrote its first entry.
var testExtracting func()

// errNothingToStandBy: every backup is one an emergency would pass over (often the only one
// is of the running install). Not a failure: there is nothing to keep warm.
var errNothingToStandBy = errors.New("no backup an emergency would restore now (see the skipped list); nothing to keep warm")

// standbySpace refuses a refresh that would leave too little room for a cold emergency: the
// standby's tree, and then still the backup's compressed size, the preserved data and the
// margin an emergency that extracts needs.
func (r *runner) standbySpace(c backup.Candidate, preserved int64) error {
	expanded := c.Size
	if m, err := c.ManifestHeader(); err == nil && m.Bytes > expanded {
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

// finishStandby completes res and journals its outcome; since is when the procedure began.
func (r *runner) finishStandby(res *StandbyResult, err error, since time.Time) {
	res.DurationMS = r.deps.Now().Sub(since).Milliseconds()
	res.Steps, res.Skipped = r.res.Steps, r.res.Skipped
	res.Journal = r.res.Journal
	if len(res.Steps) > 0 {
		res.Detail = res.Steps[len(res.Steps)-1].Detail
	}
	switch {
	case errors.Is(err, errSwapBusy):
		res.Outcome = "busy"
		res.Error = err.Error()
		res.Next = []string{"cfrollback standby refresh"}
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
	if r.opt.DryRun {
		return
	}
	if r.j == nil {
		if res.Outcome == "busy" {
			r.info("the outcome of refresh %s is not journaled (the lock is held); the next refresh records it as abandoned", r.runID)
		}
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
	r.finishFn = func(err error) { r.finishStandby(res, err, r.start) }
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
			var paths, busy []string
			for _, p := range leftovers(dir) {
				if standby.Held(p) {
					busy = append(busy, p) // a refresh is extracting there; it seals only under the lock
				} else {
					paths = append(paths, p)
				}
			}
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
			if !r.opt.DryRun {
				if err := standby.Disarm(dir); err != nil {
					return "", nil, err
				}
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
			detail := fmt.Sprintf("%s the seal and %s", verb, strings.Join(paths, ", "))
			if len(busy) > 0 {
				detail += fmt.Sprintf("; a refresh is extracting in %s and puts a standby in place when done: run 'cfrollback standby drop' again after it", strings.Join(busy, ", "))
			}
			return detail, nil, nil
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
