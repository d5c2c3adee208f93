package cli

// Where other commands keep the warm standby up to date: backup create refreshes it, backup
// prune drops it when the backup it holds is deleted. Both are the runbook's locked,
// journaled procedures; their failure is a warning, never the command's.

import (
	"context"
	"errors"
	"fmt"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// quietEvents passes on warnings only: the standby's steps are not the command's.
func quietEvents(io *ui.IO) func(runbook.Event) {
	return func(e runbook.Event) {
		if e.Kind == "warn" {
			io.Warnf("%s", e.Message)
		}
	}
}

// refreshStandbyAfterCreate keeps the backup just written warm (the backup timer runs backup
// create, so it is kept current daily): the next emergency comes after the next deploy and
// takes it (runbook.Options.StandbyBackup). Nil when the standby is turned off.
func refreshStandbyAfterCreate(ctx context.Context, io *ui.IO, cfg settings.Config, created string) *runbook.StandbyResult {
	if !cfg.Standby.Enabled {
		return nil
	}
	res, err := runbook.StandbyRefresh(ctx, runbook.Options{Config: cfg, StandbyBackup: created}, runbook.Deps{Events: quietEvents(io)})
	switch {
	case errors.Is(err, lock.ErrLocked):
		io.Warnf("the standby was not refreshed: another cfrollback run holds the lock; 'cfrollback standby refresh' does it later")
	case err != nil:
		io.Warnf("the standby was not refreshed: %v; the backup is written. 'cfrollback standby refresh' retries, standby.enabled: false turns it off", err)
	}
	return res
}

// pruneStandby drops the standby when prune deleted (or, dry run, would delete) the backup it
// holds: a standby must not outlive its backup. It returns what it did, for the result.
func pruneStandby(ctx context.Context, io *ui.IO, cfg settings.Config, dryRun bool, items []backup.PruneItem) string {
	sb := runbook.StandbyInfo(cfg)
	if !sb.Sealed {
		return ""
	}
	hit := false
	for _, it := range items {
		hit = hit || (it.Delete && it.Path == sb.Backup)
	}
	if !hit {
		return ""
	}
	if dryRun {
		return fmt.Sprintf("would drop the standby %s (%s): it holds a backup being deleted", sb.Dir, ui.Bytes(sb.Bytes))
	}
	res, err := runbook.StandbyDrop(ctx, runbook.Options{Config: cfg}, runbook.Deps{Events: quietEvents(io)}, runbook.DropOptions{IfBackupGone: true})
	if err != nil {
		io.Warnf("the standby %s holds a deleted backup and could not be dropped: %v; an emergency will not use it (its seal names a missing backup). Run 'cfrollback standby drop'", sb.Dir, err)
		return "not dropped: " + err.Error()
	}
	if res.Outcome == "dropped" {
		return fmt.Sprintf("dropped the standby %s (%s): it held a deleted backup; 'cfrollback standby refresh' makes a new one", sb.Dir, ui.Bytes(sb.Bytes))
	}
	return ""
}
