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

// DefaultMaxErrors caps how many problems integrity_check lists (SQLite's own default is
// 100, which can hide how much is damaged).
const DefaultMaxErrors = 10000

// CheckOptions say how thorough Check is.
type CheckOptions struct {
	// Quick runs PRAGMA quick_check (no index/content cross-check: O(N) instead of
	// O(N log N)) instead of integrity_check.
	Quick bool
	// Tables counts the rows of every table.
	Tables bool
	// ForeignKeys runs PRAGMA foreign_key_check.
	ForeignKeys bool
	// MaxErrors caps the problems listed; 0 means DefaultMaxErrors.
	MaxErrors   int
	BusyTimeout time.Duration
}

// CheckResult is the state of one database file.
type CheckResult struct {
	Path        string `json:"path"`
	OK          bool   `json:"ok"`
	Check       string `json:"check"` // "integrity_check" or "quick_check"
	SizeBytes   int64  `json:"size_bytes"`
	PageSize    int    `json:"page_size,omitempty"`
	PageCount   int64  `json:"page_count,omitempty"`
	JournalMode string `json:"journal_mode,omitempty"`
	// Problems is every row integrity_check/quick_check returned other than "ok", or the
	// error that stopped it (e.g. "file is not a database").
	Problems    []string      `json:"problems,omitempty"`
	ForeignKeys []FKViolation `json:"foreign_key_violations,omitempty"`
	Tables      []TableCount  `json:"tables,omitempty"`
	Duration    time.Duration `json:"-"`
	DurationMS  int64         `json:"duration_ms"`
}

// FKViolation is one row of PRAGMA foreign_key_check.
type FKViolation struct {
	Table  string `json:"table"`
	RowID  int64  `json:"rowid"`
	Parent string `json:"parent"`
	FKID   int    `json:"fkid"`
}

// TableCount is the row count of one table, or why it could not be counted.
type TableCount struct {
	Name  string `json:"name"`
	Rows  int64  `json:"rows"`
	Error string `json:"error,omitempty"`
}

// Summary is one line for a person.
func (r CheckResult) Summary() string {
	if r.OK {
		return fmt.Sprintf("ok (%s)", r.Check)
	}
	n := len(r.Problems)
	if n == 0 && len(r.ForeignKeys) > 0 {
		return fmt.Sprintf("%d foreign key violations", len(r.ForeignKeys))
	}
	if n == 1 {
		return "CORRUPT: " + r.Problems[0]
	}
	return fmt.Sprintf("CORRUPT: %d problems, first: %s", n, r.Problems[0])
}

// Check opens path read-only (safe on a live WAL database: it never checkpoints, and
// removes a -wal/-shm only if it created them and no one else uses them) and reports
// its integrity. A missing file is an error; a file that is empty,
// not SQLite or corrupt is a result with OK false and the reason in Problems.
//
// A cancel ends it at once even while it waits for another process's lock (see untilDone).
func Check(ctx context.Context, path string, opt CheckOptions) (CheckResult, error) {
	return untilDone(ctx, func() (CheckResult, error) { return check(ctx, path, opt) })
}

func check(ctx context.Context, path string, opt CheckOptions) (CheckResult, error) {
	t0 := time.Now()
	res := CheckResult{Path: path, Check: "integrity_check"}
	if opt.Quick {
		res.Check = "quick_check"
	}
	if _, err := os.Stat(path); err != nil {
		return res, fmt.Errorf("check %s: %w", path, err)
	}
	if err := checkSidecars(path); err != nil {
		return res, err
	}
	h, err := readHeader(path)
	res.SizeBytes, res.PageSize = h.Size, h.PageSize
	if errors.Is(err, ErrNotDatabase) {
		res.Problems = []string{strings.TrimPrefix(err.Error(), path+": ")}
		return finish(res, t0), nil
	}
	if err != nil {
		return res, fmt.Errorf("check %s: %w", path, err)
	}
	// The read-only open of a WAL database creates a -wal and -shm when there are none;
	// have SQLite remove them again (safe on a live database, see tidy).
	defer tidy(path, opt.BusyTimeout)()
	db, err := openReadOnly(path, opt.BusyTimeout)
	if err != nil {
		return res, fmt.Errorf("check %s: %w", path, err)
	}
	defer db.Close()
	res, err = checkDB(ctx, db, res, opt)
	return finish(res, t0), err
}

// tidy notes whether path's -wal and -shm exist; the func it returns has SQLite remove
// them again if there was no -wal and they appeared (a read-only connection to a WAL
// database creates them and cannot remove them; orphaned empty -wal/-shm files are what
// users reported blocking writes). It opens the database read-write, reads, and closes: SQLite deletes
// the -wal and -shm on close only when an exclusive lock proves that no other connection,
// in any process, uses the database — so it cannot pull them from under a service that
// started meanwhile. Errors are ignored: at worst the files stay.
func tidy(path string, busy time.Duration) func() {
	hadWAL, hadSHM := present(path+"-wal"), present(path+"-shm")
	return func() {
		if hadWAL {
			// A -wal that was there may hold commits: it stays, with the -shm the check
			// may have added (the next opener rebuilds a -shm, and SQLite running as root
			// gives it the database's owner). Closing read-write would checkpoint it.
			return
		}
		if !present(path+"-wal") && (hadSHM || !present(path+"-shm")) {
			return
		}
		d, err := dsn(path, url.Values{"mode": {"rw"}, "_busy_timeout": {busyMS(busy)}})
		if err != nil {
			return
		}
		db, err := sql.Open("sqlite3", d)
		if err != nil {
			return
		}
		var n int
		_ = db.QueryRow("SELECT count(*) FROM sqlite_schema").Scan(&n)
		_ = db.Close()
	}
}

func finish(r CheckResult, t0 time.Time) CheckResult {
	r.Duration = time.Since(t0)
	r.DurationMS = r.Duration.Milliseconds()
	return r
}

func checkDB(ctx context.Context, db *sql.DB, res CheckResult, opt CheckOptions) (CheckResult, error) {
	// journal_mode on a read-only connection just reports the mode.
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&res.JournalMode); err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.Problems = []string{err.Error()}
		return res, nil
	}
	_ = db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&res.PageCount)
	problems, err := integrity(ctx, db, opt.Quick, opt.MaxErrors)
	if err != nil {
		return res, err
	}
	res.Problems = problems
	res.OK = len(problems) == 0
	if opt.ForeignKeys {
		fks, err := foreignKeyCheck(ctx, db)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Problems = append(res.Problems, "foreign_key_check: "+err.Error())
			res.OK = false
		}
		res.ForeignKeys = fks
		if len(fks) > 0 {
			res.OK = false
		}
	}
	if opt.Tables {
		tc, err := tableCounts(ctx, db)
		if err != nil && ctx.Err() != nil {
			return res, ctx.Err()
		}
		if err != nil {
			res.Problems = append(res.Problems, "list tables: "+err.Error())
			res.OK = false
		}
		res.Tables = tc
	}
	return res, nil
}

// integrity runs integrity_check (or quick_check) and returns every row that is not "ok".
// An error that stops the pragma itself (SQLITE_CORRUPT, SQLITE_NOTADB) is returned as a
// problem, not an error: it is the answer to "is this file sound?". Only a cancelled ctx is
// an error.
func integrity(ctx context.Context, db *sql.DB, quick bool, maxErrors int) ([]string, error) {
	if maxErrors <= 0 {
		maxErrors = DefaultMaxErrors
	}
	pragma := "integrity_check"
	if quick {
		pragma = "quick_check"
	}
	rows, err := db.QueryContext(ctx, fmt.Sprintf("PRAGMA %s(%d)", pragma, maxErrors))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return []string{err.Error()}, nil
	}
	defer rows.Close()
	var problems []string
	n := 0
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		n++
		if s == "ok" {
			continue
		}
		// One row can hold several messages, one a line.
		for _, line := range strings.Split(s, "\n") {
			if line != "" && !strings.HasPrefix(line, "*** in database ") {
				problems = append(problems, line)
			}
		}
	}
	if err := rows.Err(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		problems = append(problems, err.Error())
	}
	if n == 0 && len(problems) == 0 {
		problems = []string{pragma + " returned no rows"}
	}
	return problems, nil
}

func foreignKeyCheck(ctx context.Context, db *sql.DB) ([]FKViolation, error) {
	rows, err := db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FKViolation
	for rows.Next() {
		var v FKViolation
		var rowid sql.NullInt64
		if err := rows.Scan(&v.Table, &rowid, &v.Parent, &v.FKID); err != nil {
			return out, err
		}
		v.RowID = rowid.Int64
		out = append(out, v)
	}
	return out, rows.Err()
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// tableNames lists the ordinary tables (not sqlite_ internals, not virtual tables).
func tableNames(ctx context.Context, db querier) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return names, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

func tableCounts(ctx context.Context, db *sql.DB) ([]TableCount, error) {
	names, err := tableNames(ctx, db)
	if err != nil {
		return nil, err
	}
	out := make([]TableCount, 0, len(names))
	for _, n := range names {
		tc := TableCount{Name: n}
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(n)).Scan(&tc.Rows); err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			tc.Error = err.Error()
		}
		out = append(out, tc)
	}
	return out, nil
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
