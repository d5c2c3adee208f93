package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// ProbeOp is the result of one operation of Probe.
type ProbeOp struct {
	Op         string `json:"op"` // read, write, delete
	OK         bool   `json:"ok"`
	Detail     string `json:"detail"`
	DurationMS int64  `json:"duration_ms"`
}

// Probe exercises the live database path the way the service would (read its tables,
// write a row, delete it) inside one transaction that is always rolled back, so no data
// changes. ops is any of "read", "write", "delete". A write takes SQLite's write lock for
// the few milliseconds of the probe (waiting up to busy).
func Probe(ctx context.Context, path string, ops []string, busy time.Duration) ([]ProbeOp, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	d, err := dsn(path, url.Values{"mode": {"rw"}, "_busy_timeout": {busyMS(busy)}})
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite3", d)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("probe %s: begin: %w", path, err)
	}
	defer tx.Rollback() //nolint:errcheck // the point: nothing is kept
	table := fmt.Sprintf("cfrollback_probe_%d", os.Getpid())
	var out []ProbeOp
	run := func(op string, f func() (string, error)) {
		t0 := time.Now()
		detail, err := f()
		r := ProbeOp{Op: op, OK: err == nil, Detail: detail, DurationMS: time.Since(t0).Milliseconds()}
		if err != nil {
			r.Detail = err.Error()
		}
		out = append(out, r)
	}
	wrote := false
	for _, op := range ops {
		switch op {
		case "read":
			run(op, func() (string, error) {
				names, err := tableNames(ctx, tx)
				if err != nil {
					return "", err
				}
				for _, n := range names {
					rows, err := tx.QueryContext(ctx, "SELECT * FROM "+quoteIdent(n)+" LIMIT 1")
					if err != nil {
						return "", fmt.Errorf("read %s: %w", n, err)
					}
					for rows.Next() {
					}
					err = rows.Err()
					rows.Close()
					if err != nil {
						return "", fmt.Errorf("read %s: %w", n, err)
					}
				}
				return fmt.Sprintf("read a row of each of %d tables", len(names)), nil
			})
		case "write":
			run(op, func() (string, error) {
				if _, err := tx.ExecContext(ctx, "CREATE TABLE "+table+"(k TEXT, v TEXT)"); err != nil {
					return "", err
				}
				if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+" VALUES('cfrollback', 'probe')"); err != nil {
					return "", err
				}
				var v string
				if err := tx.QueryRowContext(ctx, "SELECT v FROM "+table).Scan(&v); err != nil || v != "probe" {
					return "", fmt.Errorf("read back the written row: %v", err)
				}
				wrote = true
				return "wrote and read back a row (rolled back)", nil
			})
		case "delete":
			run(op, func() (string, error) {
				if !wrote {
					if _, err := tx.ExecContext(ctx, "CREATE TEMP TABLE "+table+"(k TEXT, v TEXT)"); err != nil {
						return "", err
					}
					if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+" VALUES('cfrollback', 'probe')"); err != nil {
						return "", err
					}
				}
				r, err := tx.ExecContext(ctx, "DELETE FROM "+table)
				if err != nil {
					return "", err
				}
				if n, _ := r.RowsAffected(); n != 1 {
					return "", fmt.Errorf("deleted %d rows, want 1", n)
				}
				return "deleted the row (rolled back)", nil
			})
		default:
			return out, fmt.Errorf("unknown operation %q: use read, write, delete", op)
		}
	}
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return out, fmt.Errorf("probe %s: roll back: %w", path, err)
	}
	return out, nil
}
