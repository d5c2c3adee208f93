package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// ProbeOp is the result of one operation of Probe.
type ProbeOp struct {
	Op         string `json:"op"` // integrity, read, write, delete
	OK         bool   `json:"ok"`
	Skipped    bool   `json:"skipped,omitempty"` // not run: the integrity check failed
	Detail     string `json:"detail"`
	DurationMS int64  `json:"duration_ms"`
}

// probeFullCheckMax is the largest file Probe checks with integrity_check; a larger one
// gets quick_check. integrity_check also cross-checks every index against its table, which
// quick_check skips: an index that lost rows passes quick_check, yet a lookup through it
// (what the service does, e.g. by key) silently finds nothing. Measured with
// BenchmarkProbeIntegrity (go-sqlite3 1.14.53, SQLite 3.54.1, 2 cores): a 50 MB WAL
// database of 180,000 rows with three indexes takes 0.29 s for integrity_check and
// 0.11-0.15 s for quick_check on an idle host, 0.4-0.6 s and 0.2 s with the two cores
// busy (the sqlite3 3.40 CLI, idle: 0.25 s and 0.10 s). Memory databases are typically
// under 100 MB, so the full check costs about a second at most; above this size
// quick_check keeps the probe short.
const probeFullCheckMax = 256 << 20

// probeMaxProblems caps the problems the integrity operation collects: it names the
// first few, and 'database check' lists them all.
const probeMaxProblems = 20

// Probe exercises the live database path the way the service would (read its tables,
// write a row, delete it) inside one transaction that is always rolled back, so no data
// changes. ops is any of "read", "write", "delete". A write takes SQLite's write lock for
// the few milliseconds of the probe (waiting up to busy).
//
// First, always, comes an "integrity" operation: Check on a read-only connection (see
// probeFullCheckMax for which check). A corrupt file can still answer the reads and
// writes of a small probe, so they alone would pass it. When the check fails the other
// operations are not run (Skipped) and no read-write connection is opened. On a WAL
// database the check never blocks the service's writes; on a rollback-journal one a
// commit waits for it (its busy timeout covers the fraction of a second).
func Probe(ctx context.Context, path string, ops []string, busy time.Duration) ([]ProbeOp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	for _, op := range ops {
		if op != "read" && op != "write" && op != "delete" {
			return nil, fmt.Errorf("unknown operation %q: use read, write, delete", op)
		}
	}
	integrity, err := probeIntegrity(ctx, path, fi.Size(), busy)
	if err != nil {
		return nil, err
	}
	if !integrity.OK {
		out := []ProbeOp{integrity}
		for _, op := range ops {
			out = append(out, ProbeOp{Op: op, Skipped: true, Detail: "not run: the integrity check failed"})
		}
		return out, nil
	}
	out, err := probeOps(ctx, path, ops, busy)
	return append([]ProbeOp{integrity}, out...), err
}

// probeIntegrity is the integrity operation of Probe.
func probeIntegrity(ctx context.Context, path string, size int64, busy time.Duration) (ProbeOp, error) {
	res, err := Check(ctx, path, CheckOptions{Quick: size > probeFullCheckMax, MaxErrors: probeMaxProblems, BusyTimeout: busy})
	if err != nil {
		return ProbeOp{}, err // names the path
	}
	op := ProbeOp{Op: "integrity", OK: res.OK, DurationMS: res.DurationMS}
	if res.OK {
		op.Detail = res.Check + " ok"
		return op, nil
	}
	first := res.Problems
	if len(first) > 3 {
		first = first[:3]
	}
	op.Detail = fmt.Sprintf("%s: CORRUPT, %s: %s", res.Check, problemCount(len(res.Problems)), strings.Join(first, "; "))
	return op, nil
}

func problemCount(n int) string {
	switch {
	case n >= probeMaxProblems:
		return fmt.Sprintf("%d+ problems, first", n)
	case n == 1:
		return "1 problem"
	case n > 3:
		return fmt.Sprintf("%d problems, first", n)
	}
	return fmt.Sprintf("%d problems", n)
}

// probeOps runs ops inside one transaction that it rolls back.
func probeOps(ctx context.Context, path string, ops []string, busy time.Duration) ([]ProbeOp, error) {
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
					rows, err := tx.QueryContext(ctx, "SELECT * FROM "+quoteIdent(n)+" LIMIT 1") //nolint:gosec // the table name is quoted by quoteIdent
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
				if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+" VALUES('cfrollback', 'probe')"); err != nil { //nolint:gosec // table is cfrollback_probe_<pid>, made above; no input reaches it
					return "", err
				}
				var v string
				if err := tx.QueryRowContext(ctx, "SELECT v FROM "+table).Scan(&v); err != nil || v != "probe" {
					return "", fmt.Errorf("read back the written row: %v", err) //nolint:errorlint // err is nil when the row read back differs
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
					if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+" VALUES('cfrollback', 'probe')"); err != nil { //nolint:gosec // table is cfrollback_probe_<pid>, made above; no input reaches it
						return "", err
					}
				}
				r, err := tx.ExecContext(ctx, "DELETE FROM "+table) //nolint:gosec // table is cfrollback_probe_<pid>, made above; no input reaches it
				if err != nil {
					return "", err
				}
				if n, _ := r.RowsAffected(); n != 1 {
					return "", fmt.Errorf("deleted %d rows, want 1", n)
				}
				return "deleted the row (rolled back)", nil
			})
		}
	}
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return out, fmt.Errorf("probe %s: roll back: %w", path, err)
	}
	return out, nil
}
