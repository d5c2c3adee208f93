package runbook

import (
	"context"
	"fmt"
	"time"

	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
)

// dbEffects is every write a database procedure makes; reads (checks, candidates, the
// schema comparison) are done directly, so a dry run sees the real files.
type dbEffects interface {
	Stop(ctx context.Context, m service.Manager) error
	Start(ctx context.Context, m service.Manager) error
	RestoreDB(ctx context.Context, backupFile, target string, opt sqlitedb.RestoreOptions) (sqlitedb.RestoreResult, error)
	RepairDB(ctx context.Context, path string, opt sqlitedb.RepairOptions) (sqlitedb.RepairResult, error)
}

type realDBEffects struct{}

var _ dbEffects = realDBEffects{}

func (realDBEffects) Stop(ctx context.Context, m service.Manager) error  { return m.Stop(ctx) }
func (realDBEffects) Start(ctx context.Context, m service.Manager) error { return m.Start(ctx) }
func (realDBEffects) RestoreDB(ctx context.Context, b, t string, o sqlitedb.RestoreOptions) (sqlitedb.RestoreResult, error) {
	return sqlitedb.Restore(ctx, b, t, o)
}
func (realDBEffects) RepairDB(ctx context.Context, p string, o sqlitedb.RepairOptions) (sqlitedb.RepairResult, error) {
	return sqlitedb.Repair(ctx, p, o)
}

// dryRunDBEffects changes nothing. It checks what can be checked without writing: the
// backup's checksum and integrity_check, and, unless the service is to be stopped first,
// who has the database open.
type dryRunDBEffects struct {
	busy          time.Duration
	ignoreOpeners bool // the run stops the service first: its own open files will be gone
}

var _ dbEffects = dryRunDBEffects{}

func (dryRunDBEffects) Stop(context.Context, service.Manager) error  { return nil }
func (dryRunDBEffects) Start(context.Context, service.Manager) error { return nil }
func (fx dryRunDBEffects) RestoreDB(ctx context.Context, b, t string, _ sqlitedb.RestoreOptions) (sqlitedb.RestoreResult, error) {
	res := sqlitedb.RestoreResult{Target: t, Backup: b}
	ok, err := sqlitedb.VerifyChecksum(b)
	if err != nil {
		return res, fmt.Errorf("restore %s: %w", t, err)
	}
	res.ChecksumVerified = ok
	chk, err := sqlitedb.Check(ctx, b, sqlitedb.CheckOptions{BusyTimeout: fx.busy})
	if err != nil {
		return res, fmt.Errorf("restore %s: check the backup %s: %w", t, b, err)
	}
	if !chk.OK {
		return res, fmt.Errorf("restore %s: %w; nothing was changed, pick another backup",
			t, &sqlitedb.CorruptError{Path: b, What: "backup file", Problems: chk.Problems})
	}
	return res, fx.openers(t)
}
func (fx dryRunDBEffects) RepairDB(_ context.Context, p string, _ sqlitedb.RepairOptions) (sqlitedb.RepairResult, error) {
	return sqlitedb.RepairResult{Path: p, Method: "planned"}, fx.openers(p)
}

func (fx dryRunDBEffects) openers(path string) error {
	if fx.ignoreOpeners {
		return nil
	}
	op, _, err := sqlitedb.Openers(path)
	if err != nil {
		return err
	}
	if len(op) > 0 {
		return &sqlitedb.InUseError{Path: path, Openers: op}
	}
	return nil
}
