package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// RepairOptions tune Repair.
type RepairOptions struct {
	BusyTimeout time.Duration
	// Now stamps the names of the kept files; nil means time.Now.
	Now func() time.Time
	// Progress, if set, is told each stage.
	Progress func(stage string)
	// MaxReads bounds the range and single-row reads of a table whose bulk copy failed;
	// 0 means DefaultMaxReads. Reaching it is reported, never silent.
	MaxReads int
}

// DefaultMaxReads is enough to bisect around a few thousand damaged pages.
const DefaultMaxReads = 2_000_000

// Repair methods.
const (
	RepairNone    = "none"    // the database passed integrity_check: nothing to do
	RepairReindex = "reindex" // only indexes were damaged: REINDEX of a copy
	// RepairRebuild: only indexes were damaged but REINDEX could not run over their
	// broken pages; the tables were copied into a new file and the indexes built fresh.
	RepairRebuild = "rebuild"
	// RepairSalvage: table pages are damaged; what was readable was copied table by table.
	RepairSalvage = "salvage"
)

// RepairResult says what Repair found, saved and lost.
type RepairResult struct {
	Path string `json:"path"`
	// Problems is every row integrity_check returned for the original.
	Problems []string `json:"problems"`
	// IndexOnly: every problem names an index, or a page of an index's tree.
	IndexOnly bool   `json:"index_only"`
	Method    string `json:"method"`
	// Clean: the repaired file passed integrity_check and no row was lost (by the
	// estimates in Tables). Only a clean repair replaces the original.
	Clean    bool `json:"clean"`
	Replaced bool `json:"replaced"`
	// CorruptCopy is the original, kept under <stem>-corrupt-<ts>.db (its -wal and -shm
	// beside it under the same name) when the repaired file took its place.
	CorruptCopy string `json:"corrupt_copy,omitempty"`
	// SalvagedFile is a salvage that was not clean, kept as <stem>-salvaged-<ts>.db next
	// to the database, which was left untouched. It passed integrity_check.
	SalvagedFile string          `json:"salvaged_file,omitempty"`
	Tables       []TableSalvage  `json:"tables"`
	RowsSalvaged int64           `json:"rows_salvaged"`
	RowsLost     int64           `json:"rows_lost"`
	LostUnknown  bool            `json:"rows_lost_unknown,omitempty"`
	Unrecovered  []string        `json:"unrecovered,omitempty"` // schema objects not recreated, and why
	Notes        []string        `json:"notes,omitempty"`
	After        []string        `json:"problems_after,omitempty"` // integrity_check of a repaired copy that failed it
	Duration     time.Duration   `json:"-"`
	DurationMS   int64           `json:"duration_ms"`
	schema       []schemaObject  // of the original
	estimates    map[string]rows // per table
}

// TableSalvage is one table's part of a repair.
type TableSalvage struct {
	Name     string `json:"name"`
	Salvaged int64  `json:"rows_salvaged"`
	// Expected is how many rows the original held by Estimate; -1 when no estimate could
	// be made. Lost is Expected-Salvaged (never below 0), -1 when unknown.
	Expected int64  `json:"rows_expected"`
	Lost     int64  `json:"rows_lost"`
	Estimate string `json:"estimated_by"`
	// Method: reindex (table untouched), bulk (one INSERT ... SELECT), rowid_ranges (the
	// bulk copy failed; rowid ranges bisected around the damage, the last 64 rowids of a
	// damaged range read one by one), stream (a WITHOUT ROWID table read in order until
	// the first error), failed.
	Method string   `json:"method"`
	Errors []string `json:"errors,omitempty"` // the first few read errors
	// Reads is how many range and single-row reads the fallback needed.
	Reads int `json:"reads,omitempty"`
}

// Estimates of a table's original row count, most trustworthy first.
const (
	EstCount      = "count(*)"                // may walk an intact index: exact
	EstCountTable = "count(*) of the table"   // NOT INDEXED: exact when it succeeds
	EstRowidSpan  = "max(rowid)-min(rowid)+1" // upper bound: exact only without gaps
	EstMaxRowid   = "max(rowid)"              // assumes rowids 1..max: upper bound
	EstUnknown    = "unknown"                 // nothing could be read
	EstReindex    = "count(*) after REINDEX"
)

type rows struct {
	n   int64
	est string
}

type schemaObject struct {
	Type, Name, Table, SQL string
	Root                   int64
}

// Repair tries to make a corrupt database sound again, keeping the original untouched.
// It refuses (an *InUseError) while a process has the database open.
//
//   - Only indexes damaged: a copy is REINDEXed and must pass integrity_check; if REINDEX
//     cannot run over the broken pages, the tables are copied into a new file and the
//     indexes built fresh there (rebuild).
//   - Otherwise every table is salvaged into a new file: schema from sqlite_master, one
//     INSERT ... SELECT per table, falling back to bisected rowid ranges and row-by-row
//     reads around the damage. Per table it reports rows salvaged and rows lost against
//     count(*) (or, when that cannot be read, max(rowid)).
//
// A clean result (passes integrity_check, no row lost) replaces the database: the original
// and its -wal/-shm are kept as <stem>-corrupt-<ts>.db. Anything else leaves the database
// as it was; a salvage with rows in it is kept as <stem>-salvaged-<ts>.db for a person
// to choose. A salvage with no rows from a database that had some is never kept.
func Repair(ctx context.Context, path string, opt RepairOptions) (res RepairResult, err error) {
	if err := checkSidecars(path); err != nil {
		return res, err
	}
	t0 := time.Now()
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxReads <= 0 {
		opt.MaxReads = DefaultMaxReads
	}
	stage := func(s string) {
		if opt.Progress != nil {
			opt.Progress(s)
		}
	}
	defer func() {
		res.Duration = time.Since(t0)
		res.DurationMS = res.Duration.Milliseconds()
	}()
	res = RepairResult{Path: path, Method: RepairNone, Tables: []TableSalvage{}}
	fi, err := os.Stat(path)
	if err != nil {
		return res, fmt.Errorf("repair %s: %w", path, err)
	}
	if err := refuseOpeners(path); err != nil {
		return res, fmt.Errorf("repair: %w", err)
	}
	removeStaleTemps(filepath.Dir(path))
	h, herr := readHeader(path)
	if herr != nil {
		if errors.Is(herr, ErrNotDatabase) {
			res.Method = RepairSalvage
			res.Problems = []string{strings.TrimPrefix(herr.Error(), path+": ")}
			res.LostUnknown = true
			res.Notes = append(res.Notes, "nothing to salvage: the file is not an SQLite database")
			return res, nil
		}
		return res, fmt.Errorf("repair %s: %w", path, herr)
	}

	// A read-only connection to a WAL database creates an empty -wal and a -shm when
	// there are none, and cannot remove them; no other process has the file open (checked
	// above), so remove them again. After a replace they went with the original.
	cleanup := tidy(path, opt.BusyTimeout)
	defer func() {
		if !res.Replaced {
			cleanup()
		}
	}()
	stage("integrity_check of the original")
	src, err := openReadOnly(path, opt.BusyTimeout)
	if err != nil {
		return res, fmt.Errorf("repair %s: %w", path, err)
	}
	defer src.Close()
	if res.Problems, err = integrity(ctx, src, false, 0); err != nil {
		return res, fmt.Errorf("repair %s: %w", path, err)
	}
	if len(res.Problems) == 0 {
		res.Clean = true
		return res, nil
	}
	res.schema, err = readSchema(ctx, src)
	if err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.Method = RepairSalvage
		res.LostUnknown = true
		res.Notes = append(res.Notes, "nothing to salvage: the schema (sqlite_master) cannot be read: "+err.Error())
		return res, nil
	}
	res.IndexOnly = indexOnly(res.Problems, res.schema)
	stage("estimate the rows of every table")
	res.estimates = estimateRows(ctx, src, res.schema)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	// Every later read opens the file again; this connection would count as an opener.
	src.Close()

	var tmp string
	defer func() {
		if tmp != "" {
			removeDB(tmp)
		}
	}()
	if res.IndexOnly {
		res.Method = RepairReindex
		stage("REINDEX a copy")
		var rerr error
		tmp, rerr = reindexCopy(ctx, path, &res, opt)
		if rerr != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Notes = append(res.Notes, "REINDEX of a copy did not make it sound ("+rerr.Error()+"); rebuilt from the tables instead")
			res.Method = RepairRebuild
			res.Tables = []TableSalvage{}
		}
	} else {
		res.Method = RepairSalvage
	}
	if tmp == "" {
		stage("copy every table into a new file")
		tmp = tempPath(path, "salvage")
		if err := salvage(ctx, path, tmp, &res, opt); err != nil {
			return res, fmt.Errorf("repair %s: %w", path, err)
		}
	}
	for _, t := range res.Tables {
		res.RowsSalvaged += t.Salvaged
		if t.Lost < 0 {
			res.LostUnknown = true
		} else {
			res.RowsLost += t.Lost
		}
	}
	var expected int64
	for _, e := range res.estimates {
		expected += max(e.n, 0)
	}
	if res.RowsSalvaged == 0 && (expected > 0 || res.LostUnknown) {
		res.Notes = append(res.Notes, "no row could be salvaged; no file was written")
		return res, nil
	}
	if _, err := setJournalMode(ctx, tmp, h.WAL, opt.BusyTimeout); err != nil {
		return res, fmt.Errorf("repair %s: set the journal mode of the repaired copy: %w", path, err)
	}
	stage("integrity_check of the repaired copy")
	after, err := checkFile(ctx, tmp, false, opt.BusyTimeout)
	if err != nil {
		return res, fmt.Errorf("repair %s: check the repaired copy: %w", path, err)
	}
	if len(after) > 0 {
		res.After = after
		res.Notes = append(res.Notes, "the repaired copy failed integrity_check; it was not kept")
		return res, nil
	}
	res.Clean = res.RowsLost == 0 && !res.LostUnknown && len(res.Unrecovered) == 0
	if err := matchOwner(tmp, path, fi); err != nil {
		return res, fmt.Errorf("repair %s: %w", path, err)
	}
	if err := syncFile(tmp); err != nil {
		return res, fmt.Errorf("repair %s: fsync: %w", path, err)
	}
	stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if !res.Clean {
		kept := uniqueName(filepath.Dir(path), stem+"-salvaged", opt.Now())
		if err := renameNoReplace(tmp, kept); err != nil {
			return res, fmt.Errorf("repair %s: keep the salvaged copy: %w", path, err)
		}
		tmp = ""
		res.SalvagedFile = kept
		return res, fsutil.SyncDir(filepath.Dir(path))
	}

	stage("swap in the repaired database")
	if err := refuseOpeners(path); err != nil {
		return res, fmt.Errorf("repair: %w", err)
	}
	corrupt := uniqueName(filepath.Dir(path), stem+"-corrupt", opt.Now())
	if err := keepOriginal(path, corrupt); err != nil {
		return res, fmt.Errorf("repair %s: keep the original as %s: %w; the database was not replaced", path, corrupt, err)
	}
	res.CorruptCopy = corrupt
	if err := os.Rename(tmp, path); err != nil {
		return res, fmt.Errorf("repair %s: %w", path, err)
	}
	tmp = ""
	res.Replaced = true
	return res, fsutil.SyncDir(filepath.Dir(path))
}

// keepOriginal gives the original a second name (a hard link: the database's own name is
// never empty) and moves its -wal, -shm and -journal to that name, so the kept copy opens
// with every commit it had and no stale -wal stays next to the file that replaces it.
func keepOriginal(path, corrupt string) error {
	if err := os.Link(path, corrupt); err != nil {
		if err := copyFile(path, corrupt); err != nil {
			return err
		}
	}
	for _, s := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Lstat(path + s); err != nil {
			continue
		}
		if err := renameNoReplace(path+s, corrupt+s); err != nil {
			return err
		}
	}
	return fsutil.SyncDir(filepath.Dir(path))
}

func present(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// uniqueName is dir/<prefix>-<ts>.db, with -2, -3 ... when taken.
func uniqueName(dir, prefix string, now time.Time) string {
	ts := now.Format(TimestampLayout)
	for i := 1; ; i++ {
		name := fmt.Sprintf("%s-%s.db", prefix, ts)
		if i > 1 {
			name = fmt.Sprintf("%s-%s-%d.db", prefix, ts, i)
		}
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			return p
		}
	}
}

// reindexCopy copies path with the backup API (which copies pages without reading the
// b-trees, so the damage comes along), REINDEXes the copy and checks it.
func reindexCopy(ctx context.Context, path string, res *RepairResult, opt RepairOptions) (string, error) {
	tmp := tempPath(path, "reindex")
	var br BackupResult
	if err := copyPages(ctx, path, tmp, BackupOptions{BusyTimeout: opt.BusyTimeout, StepPages: -1, StepSleep: DefaultStepSleep, MaxRestarts: DefaultMaxRestarts}, &br); err != nil {
		removeDB(tmp)
		return "", fmt.Errorf("copy: %w", err)
	}
	db, err := openReadWrite(tmp, opt.BusyTimeout)
	if err != nil {
		removeDB(tmp)
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "REINDEX"); err != nil {
		removeDB(tmp)
		return "", fmt.Errorf("REINDEX: %w", err)
	}
	problems, err := integrity(ctx, db, false, 0)
	if err == nil && len(problems) > 0 {
		err = fmt.Errorf("integrity_check after REINDEX: %s", strings.Join(firstProblems(problems, 3), "; "))
	}
	if err != nil {
		db.Close()
		removeDB(tmp)
		return "", err
	}
	for _, o := range res.schema {
		if o.Type != "table" || skipTable(o) {
			continue
		}
		t := TableSalvage{Name: o.Name, Method: RepairReindex, Estimate: EstReindex}
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(o.Name)).Scan(&t.Salvaged); err != nil {
			db.Close()
			removeDB(tmp)
			return "", fmt.Errorf("count %s after REINDEX: %w", o.Name, err)
		}
		t.Expected = t.Salvaged
		if e, ok := res.estimates[o.Name]; ok && e.n >= 0 {
			t.Expected, t.Estimate = e.n, e.est
		}
		t.Lost = max(t.Expected-t.Salvaged, 0)
		res.Tables = append(res.Tables, t)
	}
	return tmp, db.Close()
}

func firstProblems(p []string, n int) []string {
	if len(p) > n {
		return p[:n]
	}
	return p
}

func readSchema(ctx context.Context, db *sql.DB) ([]schemaObject, error) {
	rs, err := db.QueryContext(ctx, "SELECT type, name, tbl_name, coalesce(rootpage, 0), coalesce(sql, '') FROM sqlite_schema")
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []schemaObject
	for rs.Next() {
		var o schemaObject
		if err := rs.Scan(&o.Type, &o.Name, &o.Table, &o.Root, &o.SQL); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rs.Err()
}

var (
	treePage     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Tree (\d+) page \d+`) })
	indexProblem = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)(wrong # of entries in index|missing from index|non-unique entry in index|in index .* is not|of index )`)
	})
	// Collateral rows: pages orphaned by a broken index page, and the error that ends
	// the check.
	collateral = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)(^page \d+: never used|^page \d+ is never used|^database disk image is malformed$|^database corruption)`)
	})
)

// indexOnly says whether every problem is an index's: it names an index, or a page of a
// tree whose root is an index. Older SQLite wording ("On tree page N") does not name the
// tree, so it counts as not index-only (the salvage path rebuilds indexes anyway).
func indexOnly(problems []string, schema []schemaObject) bool {
	indexRoots := map[int64]bool{}
	for _, o := range schema {
		if o.Type == "index" && o.Root > 0 {
			indexRoots[o.Root] = true
		}
	}
	sawIndex := false
	for _, p := range problems {
		switch {
		case indexProblem().MatchString(p):
			sawIndex = true
		case treePage().MatchString(p):
			root, _ := strconv.ParseInt(treePage().FindStringSubmatch(p)[1], 10, 64)
			if !indexRoots[root] {
				return false
			}
			sawIndex = true
		case collateral().MatchString(p):
		default:
			return false
		}
	}
	return sawIndex
}

// skipTable: SQLite's own tables are recreated by SQLite (sqlite_sequence, handled after
// the copy) or are statistics (sqlite_stat*) that ANALYZE rebuilds; virtual tables hold
// no rows of their own (their shadow tables are copied).
func skipTable(o schemaObject) bool {
	return strings.HasPrefix(o.Name, "sqlite_") || isVirtual(o)
}

func isVirtual(o schemaObject) bool {
	return strings.HasPrefix(strings.ToUpper(strings.TrimSpace(o.SQL)), "CREATE VIRTUAL")
}

// estimateRows reads how many rows each table held: count(*) (the planner may walk an
// intact index), count(*) NOT INDEXED, then the rowid bounds.
func estimateRows(ctx context.Context, db *sql.DB, schema []schemaObject) map[string]rows {
	out := map[string]rows{}
	for _, o := range schema {
		if o.Type != "table" || skipTable(o) {
			continue
		}
		q := quoteIdent(o.Name)
		var n int64
		if db.QueryRowContext(ctx, "SELECT count(*) FROM "+q).Scan(&n) == nil {
			out[o.Name] = rows{n, EstCount}
			continue
		}
		if db.QueryRowContext(ctx, "SELECT count(*) FROM "+q+" NOT INDEXED").Scan(&n) == nil {
			out[o.Name] = rows{n, EstCountTable}
			continue
		}
		var lo, hi sql.NullInt64
		errHi := db.QueryRowContext(ctx, "SELECT max(rowid) FROM "+q).Scan(&hi)
		errLo := db.QueryRowContext(ctx, "SELECT min(rowid) FROM "+q).Scan(&lo)
		switch {
		case errHi == nil && errLo == nil && hi.Valid && lo.Valid:
			out[o.Name] = rows{hi.Int64 - lo.Int64 + 1, EstRowidSpan}
		case errHi == nil && hi.Valid:
			out[o.Name] = rows{hi.Int64, EstMaxRowid}
		default:
			out[o.Name] = rows{-1, EstUnknown}
		}
	}
	return out
}
