package runbook

import (
	"context"
	"os"

	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
)

// effects is every write a procedure makes. Reads (status, listing, sizes)
// are done directly, so a dry run sees the real machine.
type effects interface {
	Stage(ctx context.Context, archivePath, dest string, opt archive.ExtractOptions) (archive.Summary, error)
	// Stop and Start pass what the run saw of the service (service.StopInformed); the zero
	// Seen when it knows nothing. Stop returns the status that confirmed the service down.
	Stop(ctx context.Context, m service.Manager, seen service.Seen) (service.Seen, error)
	Start(ctx context.Context, m service.Manager, seen service.Seen) error
	CarryOver(oldRoot, newRoot string, preserve []string) (install.CarryStats, error)
	Overlay(oldRoot, newRoot string) (install.CarryStats, error)
	Exchange(a, b, aside string) (fellBack bool, err error)
	Rename(oldPath, newPath string) error
	RemoveAll(path string) error
	RestoreDB(ctx context.Context, backupFile, target string, opt sqlitedb.RestoreOptions) (sqlitedb.RestoreResult, error)
}

// nothingSeen is what a procedure passes to Stop and Start when it has read nothing of the
// service that may stand in for the manager's own check (service.StopInformed).
var nothingSeen = service.Seen{}

// realEffects does the work. exchange carries the test hooks of the swap
// (forced two-rename fallback, a kill between the renames); zero in use.
type realEffects struct{ exchange install.ExchangeOptions }

var _ effects = realEffects{}

func (realEffects) Stage(ctx context.Context, archivePath, dest string, opt archive.ExtractOptions) (archive.Summary, error) {
	return archive.Extract(ctx, archivePath, dest, opt)
}
func (realEffects) Stop(ctx context.Context, m service.Manager, seen service.Seen) (service.Seen, error) {
	return service.StopInformed(ctx, m, seen)
}
func (realEffects) Start(ctx context.Context, m service.Manager, seen service.Seen) error {
	return service.StartInformed(ctx, m, seen)
}
func (realEffects) CarryOver(o, n string, p []string) (install.CarryStats, error) {
	return install.CarryOver(o, n, p)
}
func (realEffects) Overlay(o, n string) (install.CarryStats, error) { return install.Overlay(o, n) }
func (fx realEffects) Exchange(a, b, aside string) (bool, error) {
	return install.ExchangeWith(a, b, aside, fx.exchange)
}
func (realEffects) Rename(o, n string) error { return install.Rename(o, n) }
func (realEffects) RemoveAll(p string) error { return os.RemoveAll(p) }
func (realEffects) RestoreDB(ctx context.Context, b, t string, o sqlitedb.RestoreOptions) (sqlitedb.RestoreResult, error) {
	return sqlitedb.Restore(ctx, b, t, o)
}

// dryRunEffects verifies instead of extracting and changes nothing else.
type dryRunEffects struct{ r *runner }

var _ effects = (*dryRunEffects)(nil)

func (d *dryRunEffects) Stage(ctx context.Context, archivePath, _ string, opt archive.ExtractOptions) (archive.Summary, error) {
	return archive.Verify(ctx, archivePath, opt.Limits, opt.Progress)
}
func (d *dryRunEffects) Stop(context.Context, service.Manager, service.Seen) (service.Seen, error) {
	return service.Seen{}, nil
}
func (d *dryRunEffects) Start(context.Context, service.Manager, service.Seen) error { return nil }
func (d *dryRunEffects) CarryOver(string, string, []string) (install.CarryStats, error) {
	return install.CarryStats{}, nil
}
func (d *dryRunEffects) Overlay(string, string) (install.CarryStats, error) {
	return install.CarryStats{}, nil
}
func (d *dryRunEffects) Exchange(string, string, string) (bool, error) { return false, nil }
func (d *dryRunEffects) Rename(string, string) error                   { return nil }
func (d *dryRunEffects) RemoveAll(string) error                        { return nil }
func (d *dryRunEffects) RestoreDB(context.Context, string, string, sqlitedb.RestoreOptions) (sqlitedb.RestoreResult, error) {
	return sqlitedb.RestoreResult{}, nil
}
