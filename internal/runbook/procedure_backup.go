package runbook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// The backup-catalog changes, as journaled in their intent and shown by history.
const (
	BackupMarkCommand  = "backup mark"
	BackupPruneCommand = "backup prune"
)

// MarkResult is what 'backup mark' did, or (DryRun) would do.
type MarkResult struct {
	RunID  string    `json:"run_id,omitempty"`
	ID     string    `json:"id"`
	Path   string    `json:"path"`
	Mark   string    `json:"mark"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
	// Was is the mark before this one ("" for none); DryRun: nothing was written.
	Was    string `json:"was,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// markIntent is journaled under "change" (not as "backup": a mark run does not use the
// backup, so prune need not keep it for an unfinished mark).
type markIntent struct {
	Path   string `json:"path"`
	Mark   string `json:"mark"`
	Reason string `json:"reason,omitempty"`
}

// markOutcome is journaled under the outcome's "change": the mark it replaced.
type markOutcome struct {
	Was string `json:"was,omitempty"`
}

// MarkBackup marks backup c good or bad by hand in store as a procedure (RunChange): lock,
// intent, the mark step (backup.state updated under its own lock), outcome. A dry run
// reads the current mark and writes nothing.
func MarkBackup(ctx context.Context, cfg settings.Config, store backup.Store, c backup.Candidate, m backup.Mark,
	dryRun bool, args []string, deps ChangeDeps) (*MarkResult, error) {
	res := &MarkResult{ID: backup.ID(c.Name), Path: c.Path, Mark: m.Value, Reason: m.Reason, Time: m.Time, DryRun: dryRun}
	summary := fmt.Sprintf("mark backup %s %s", res.ID, m.Value)
	_, err := RunChange(ctx, ChangeSpec{Config: cfg, Command: BackupMarkCommand, DryRun: dryRun, Args: args, Summary: summary,
		Intent: markIntent{Path: c.Path, Mark: m.Value, Reason: m.Reason}}, deps,
		func(ctx context.Context, p *Proc) (any, error) {
			if !dryRun {
				res.RunID = p.RunID()
			}
			err := p.Step(ctx, "mark", func(ctx context.Context) (string, any, error) {
				if dryRun {
					st, err := store.Load()
					if err != nil {
						return "", nil, err
					}
					if old := st.Get(c.Name).Mark; old != nil {
						res.Was = old.Value
					}
					return fmt.Sprintf("would mark %s %s in %s", res.ID, m.Value, store.Path), nil, nil
				}
				if err := store.Update(ctx, func(st *backup.State) error {
					if old := st.Get(c.Name).Mark; old != nil {
						res.Was = old.Value
					}
					st.SetMark(c.Name, m)
					return nil
				}); err != nil {
					return "", nil, err
				}
				p.Changed("marked backup %s %s in %s (it was %s)", res.ID, m.Value, store.Path, orNone(res.Was))
				return fmt.Sprintf("marked %s %s (was %s)", res.ID, m.Value, orNone(res.Was)), nil, nil
			})
			if err != nil {
				err = fmt.Errorf("mark %s: %w", res.ID, err)
			}
			return markOutcome{Was: res.Was}, err
		})
	return res, err
}

// PruneResult is what 'backup prune' deleted, or (DryRun) would delete.
type PruneResult struct {
	RunID      string             `json:"run_id,omitempty"`
	DryRun     bool               `json:"dry_run"`
	Keep       int                `json:"keep"`
	MaxAge     string             `json:"max_age"`
	Backups    []backup.PruneItem `json:"backups"`
	FailedDirs []backup.PruneItem `json:"failed_dirs"`
	Deleted    int                `json:"deleted"`
	Freed      int64              `json:"freed_bytes"`
	Errors     []string           `json:"errors"`
	// Standby is what became of the warm standby when its backup was deleted (the cli
	// drops it after the prune, as a procedure of its own).
	Standby string `json:"standby,omitempty"`
}

// pruneIntent is journaled under "change": the plan.
type pruneIntent struct {
	Keep            int      `json:"keep"`
	MaxAge          string   `json:"max_age"`
	FailedOlderThan string   `json:"failed_older_than,omitempty"`
	Delete          []string `json:"delete"`
}

// pruneOutcome is journaled under the outcome's "change": what was deleted.
type pruneOutcome struct {
	Deleted []string `json:"deleted"`
	Freed   int64    `json:"freed_bytes"`
	Errors  []string `json:"errors,omitempty"`
}

// PruneBackups deletes what the plan of backup.PlanPrune / PlanFailedDirs says, as a
// procedure (RunChange). The backups runs are using are found before the lock is taken
// (backup.InUse refuses while a run holds it and is still choosing); once prune holds the
// lock no run can start choosing one. Steps: delete (each backup with its manifest, each
// failed dir asked for), forget (the deleted backups' entries in backup.state). A
// deletion that fails is listed in Errors and the others go on; the run then fails.
func PruneBackups(ctx context.Context, cfg settings.Config, cands []backup.Candidate, popt backup.PruneOptions,
	dryRun bool, args []string, deps ChangeDeps) (*PruneResult, error) {
	store := backup.Store{Path: cfg.Backup.State, CreateDir: true, Install: cfg.InstallDir, BackupDir: cfg.Backup.Dir}
	st, err := store.Load()
	if err != nil {
		return nil, err
	}
	inUse, err := backup.InUse(cfg.Journal, cfg.Lock)
	if err != nil {
		return nil, fmt.Errorf("backup prune: %w", err)
	}
	popt.InUse = inUse
	res := &PruneResult{DryRun: dryRun, Keep: popt.Keep, MaxAge: ui.FormatDuration(popt.MaxAge), Errors: []string{}}
	res.Backups = backup.PlanPrune(cands, st, popt)
	glob := strings.NewReplacer("{install}", cfg.InstallDir, "{ts}", "*").Replace(cfg.FailedDirPattern)
	dirs, err := backup.FailedDirs(glob)
	if err != nil {
		return nil, fmt.Errorf("list failed dirs %s: %w", glob, err)
	}
	res.FailedDirs = backup.PlanFailedDirs(dirs, popt)
	intent := pruneIntent{Keep: popt.Keep, MaxAge: res.MaxAge, Delete: []string{}}
	if popt.FailedOlderThan > 0 {
		intent.FailedOlderThan = ui.FormatDuration(popt.FailedOlderThan)
	}
	for _, items := range [][]backup.PruneItem{res.Backups, res.FailedDirs} {
		for _, it := range items {
			if it.Delete {
				intent.Delete = append(intent.Delete, it.Path)
			}
		}
	}
	doomed := len(intent.Delete)
	summary := fmt.Sprintf("delete %d of %d backups and failed installs (keep %d, max age %s)", doomed, len(res.Backups)+len(res.FailedDirs), popt.Keep, res.MaxAge)
	out := pruneOutcome{Deleted: []string{}}
	_, err = RunChange(ctx, ChangeSpec{Config: cfg, Command: BackupPruneCommand, DryRun: dryRun, Args: args, Summary: summary, Intent: intent}, deps,
		func(ctx context.Context, p *Proc) (any, error) {
			if !dryRun {
				res.RunID = p.RunID()
			}
			var gone []string
			err := p.Step(ctx, "delete", func(context.Context) (string, any, error) {
				if dryRun {
					return fmt.Sprintf("would delete %d", doomed), nil, nil
				}
				gone = res.deleteBackups(p)
				res.deleteFailedDirs(p)
				out.Deleted, out.Freed, out.Errors = append(out.Deleted, gone...), res.Freed, res.Errors
				return fmt.Sprintf("deleted %d, freed %s", res.Deleted, ui.Bytes(res.Freed)), nil, nil
			})
			if err != nil || len(gone) == 0 {
				return out, pruneErr(res, err)
			}
			err = p.Step(ctx, "forget", func(ctx context.Context) (string, any, error) {
				if err := store.Update(ctx, func(s *backup.State) error {
					for _, path := range gone {
						s.Forget(filepath.Base(path))
					}
					return nil
				}); err != nil {
					// the files are gone either way: a stale entry is only listed, never used
					p.Warn("deleted backups are still listed in %s: %v", cfg.Backup.State, err)
					return "not forgotten: " + err.Error(), nil, nil
				}
				return fmt.Sprintf("forgot %d backups in %s", len(gone), cfg.Backup.State), nil, nil
			})
			return out, pruneErr(res, err)
		})
	return res, err
}

// pruneErr is the run's error: its own, or that some deletions failed.
func pruneErr(res *PruneResult, err error) error {
	if err == nil && len(res.Errors) > 0 {
		return fmt.Errorf("backup prune: %d deletion(s) failed: %s", len(res.Errors), strings.Join(res.Errors, "; "))
	}
	return err
}

func (res *PruneResult) deleteBackups(p *Proc) (gone []string) {
	for _, it := range res.Backups {
		if !it.Delete {
			continue
		}
		if err := os.Remove(it.Path); err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("delete %s: %v", it.Path, err))
			continue
		}
		p.Changed("deleted %s", it.Path)
		if err := os.Remove(backup.ManifestPath(it.Path)); err != nil && !os.IsNotExist(err) {
			res.Errors = append(res.Errors, fmt.Sprintf("delete %s: %v", backup.ManifestPath(it.Path), err))
		}
		gone = append(gone, it.Path)
		res.Deleted++
		res.Freed += it.Size
	}
	return gone
}

func (res *PruneResult) deleteFailedDirs(p *Proc) {
	for _, d := range res.FailedDirs {
		if !d.Delete {
			continue
		}
		if err := os.RemoveAll(d.Path); err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("delete %s: %v", d.Path, err))
			continue
		}
		p.Changed("deleted %s", d.Path)
		res.Deleted++
		res.Freed += d.Size
	}
}
