package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
)

// sqliteSnapshotter captures a live database for `backup create` through
// SQLite's online backup API: every committed row, no -wal/-shm needed.
type sqliteSnapshotter struct{ busy time.Duration }

var _ backup.DBSnapshotter = sqliteSnapshotter{}

func (s sqliteSnapshotter) Snapshot(ctx context.Context, src, dst string) error {
	if _, err := sqlitedb.Backup(ctx, src, dst, sqlitedb.BackupOptions{BusyTimeout: s.busy}); err != nil {
		return err
	}
	// The archive has its own per-file sha256 in the manifest.
	if err := os.Remove(dst + ".sha256"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// sqliteChecker is `backup verify --deep`'s integrity_check of each database.
type sqliteChecker struct{ busy time.Duration }

var _ backup.DBChecker = sqliteChecker{}

func (c sqliteChecker) Check(ctx context.Context, path string) error {
	res, err := sqlitedb.Check(ctx, path, sqlitedb.CheckOptions{BusyTimeout: c.busy})
	if err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("integrity_check of %s: %s", path, strings.Join(firstN(res.Problems, 3), "; "))
	}
	return nil
}

// healthDatabases is health-check --comprehensive's row per database: a full
// integrity_check of the live file, read-only (a WAL database stays as it is).
type healthDatabases struct{ cfg settings.Config }

var _ health.DatabaseChecker = healthDatabases{}

func (h healthDatabases) CheckDatabases(ctx context.Context) []health.Check {
	var out []health.Check
	for _, d := range h.cfg.Databases {
		name := "database " + d.Name
		p := h.cfg.DatabasePath(d)
		t0 := time.Now()
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			out = append(out, health.Check{Name: name, Verdict: health.Skip, Detail: p + " does not exist"})
			continue
		}
		res, err := sqlitedb.Check(ctx, p, sqlitedb.CheckOptions{BusyTimeout: h.cfg.Database.BusyTimeout})
		c := health.Check{Name: name, Duration: time.Since(t0)}
		switch {
		case err != nil:
			c.Verdict, c.Detail = health.Fail, err.Error()
		case !res.OK:
			c.Verdict, c.Detail = health.Fail, "integrity_check: "+strings.Join(firstN(res.Problems, 2), "; ")+"; see 'cfrollback database check --db "+d.Name+"'"
		default:
			c.Verdict, c.Detail = health.Pass, "integrity_check ok"
		}
		out = append(out, c)
	}
	return out
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("(%d more)", len(s)-n))
	}
	return s
}
