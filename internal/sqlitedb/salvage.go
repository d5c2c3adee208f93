package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
)

// rangeFloor: a damaged rowid range this small is read one rowid at a time.
const rangeFloor = 64

// maxErrorsKept bounds TableSalvage.Errors.
const maxErrorsKept = 5

// salvage copies what is readable of the database at srcPath into the new file tmp:
// virtual tables, tables, rows, sqlite_sequence, then indexes, views and triggers (after
// the rows, so triggers do not fire and each index is built once).
func salvage(ctx context.Context, srcPath, tmp string, res *RepairResult, opt RepairOptions) error {
	srcRO, err := openReadOnly(srcPath, opt.BusyTimeout)
	if err != nil {
		return err
	}
	defer srcRO.Close()
	db, err := openReadWrite(tmp, opt.BusyTimeout)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()

	// Settings that must be in place before the first table: ATTACH needs the same
	// text encoding; auto_vacuum only takes effect on an empty file.
	var enc string
	var autoVacuum, userVersion, appID int64
	_ = srcRO.QueryRowContext(ctx, "PRAGMA encoding").Scan(&enc)
	_ = srcRO.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&autoVacuum)
	_ = srcRO.QueryRowContext(ctx, "PRAGMA user_version").Scan(&userVersion)
	_ = srcRO.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID)
	pre := []string{"PRAGMA synchronous=OFF", fmt.Sprintf("PRAGMA auto_vacuum=%d", autoVacuum)}
	if enc != "" {
		pre = append(pre, "PRAGMA encoding='"+enc+"'")
	}
	for _, s := range pre {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("prepare %s: %s: %w", tmp, s, err)
		}
	}
	uri, err := dsn(srcPath, map[string][]string{"mode": {"ro"}})
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "ATTACH DATABASE ? AS src", uri); err != nil {
		return fmt.Errorf("attach %s: %w", srcPath, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DETACH DATABASE src") //nolint:errcheck // the connection closes next

	exists := func(name string) bool {
		var n int
		_ = conn.QueryRowContext(ctx, "SELECT count(*) FROM main.sqlite_schema WHERE type='table' AND name=?", name).Scan(&n)
		return n > 0
	}
	unrecovered := func(o schemaObject, err error) {
		res.Unrecovered = append(res.Unrecovered, fmt.Sprintf("%s %s: %v", o.Type, o.Name, err))
	}
	// Virtual tables first: they create their shadow tables, whose rows are copied below.
	shadow := map[string]bool{}
	for _, o := range res.schema {
		if o.Type == "table" && isVirtual(o) {
			if _, err := conn.ExecContext(ctx, o.SQL); err != nil {
				unrecovered(o, err)
			}
		}
	}
	for _, o := range res.schema {
		if o.Type != "table" || skipTable(o) {
			continue
		}
		if exists(o.Name) {
			shadow[o.Name] = true
			continue
		}
		if _, err := conn.ExecContext(ctx, o.SQL); err != nil {
			unrecovered(o, err)
		}
	}
	for _, o := range res.schema {
		if o.Type != "table" || skipTable(o) || !exists(o.Name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if opt.Progress != nil {
			opt.Progress("copy table " + o.Name)
		}
		if shadow[o.Name] {
			// A shadow table starts with the rows its virtual table wrote on creation.
			if _, err := conn.ExecContext(ctx, "DELETE FROM main."+quoteIdent(o.Name)); err != nil { //nolint:gosec // the table name is quoted by quoteIdent
				unrecovered(o, err)
				continue
			}
		}
		t, err := copyTable(ctx, conn, o, res.schema, opt.MaxReads)
		if err != nil {
			return err
		}
		e, ok := res.estimates[o.Name]
		if !ok {
			e = rows{-1, EstUnknown}
		}
		t.Expected, t.Estimate = e.n, e.est
		switch {
		case e.n < 0:
			t.Lost = -1
		case e.est == EstRowidSpan || e.est == EstMaxRowid:
			// An upper bound: never claim fewer rows than were read.
			t.Expected = max(e.n, t.Salvaged)
			t.Lost = t.Expected - t.Salvaged
		default:
			t.Lost = max(e.n-t.Salvaged, 0)
		}
		res.Tables = append(res.Tables, t)
	}
	if hasTable(res.schema, "sqlite_sequence") && exists("sqlite_sequence") {
		// Inserting explicit rowids already raised each counter to the highest rowid
		// copied; the original's counters can be higher (rows deleted at the end).
		if _, err := conn.ExecContext(ctx, `UPDATE main.sqlite_sequence SET seq = max(seq, coalesce((SELECT s.seq FROM src.sqlite_sequence s WHERE s.name = main.sqlite_sequence.name), 0))`); err != nil {
			res.Notes = append(res.Notes, "AUTOINCREMENT counters recomputed from the rows copied (the original's sqlite_sequence is unreadable: "+err.Error()+")")
		}
	}
	for _, typ := range []string{"index", "view", "trigger"} {
		for _, o := range res.schema {
			if o.Type != typ || o.SQL == "" || strings.HasPrefix(o.Name, "sqlite_") {
				continue // autoindexes come with their table's UNIQUE/PRIMARY KEY
			}
			if _, err := conn.ExecContext(ctx, o.SQL); err != nil {
				unrecovered(o, err)
			}
		}
	}
	if hasTable(res.schema, "sqlite_stat1") {
		res.Notes = append(res.Notes, "query planner statistics (sqlite_stat*) were not copied; ANALYZE rebuilds them")
	}
	for _, s := range []string{fmt.Sprintf("PRAGMA user_version=%d", userVersion), fmt.Sprintf("PRAGMA application_id=%d", appID)} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func hasTable(schema []schemaObject, name string) bool {
	for _, o := range schema {
		if o.Type == "table" && o.Name == name {
			return true
		}
	}
	return false
}

// copyTable copies one table from src into main: one INSERT ... SELECT; if that fails on
// a damaged page (the statement then leaves nothing behind), rowid ranges bisected
// around the damage.
func copyTable(ctx context.Context, conn *sql.Conn, o schemaObject, schema []schemaObject, maxReads int) (TableSalvage, error) {
	t := TableSalvage{Name: o.Name, Method: "bulk"}
	cols, err := insertColumns(ctx, conn, o.Name)
	if err != nil {
		t.Method = "failed"
		t.Errors = []string{"read the columns: " + err.Error()}
		return t, nil
	}
	rowid := rowidName(o, cols)
	sel := strings.Join(cols, ", ")
	if rowid != "" {
		sel = rowid + ", " + sel
	}
	q := quoteIdent(o.Name)
	insert := "INSERT INTO main." + q + "(" + sel + ") SELECT " + sel + " FROM src." + q + " NOT INDEXED"
	n, err := execCount(ctx, conn, insert)
	if err == nil {
		t.Salvaged = n
		return t, nil
	}
	if ctx.Err() != nil {
		return t, ctx.Err()
	}
	t.addError(err)
	if rowid == "" {
		return streamTable(ctx, conn, o, cols, t)
	}
	t.Method = "rowid_ranges"
	lo, hi, bounded := rowidBounds(ctx, conn, o, rowid, schema)
	if !bounded {
		t.addError(fmt.Errorf("the highest rowid cannot be read; rowids %d to %d were searched", lo, hi))
	}
	ranged := insert + " WHERE " + rowid + " BETWEEN ? AND ?"
	gaveUp := false
	// An explicit stack instead of recursion: a full int64 span is 64 halvings deep.
	type span struct{ lo, hi int64 }
	stack := []span{{lo, hi}}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return t, err
		}
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if t.Reads >= maxReads {
			gaveUp = true
			break
		}
		t.Reads++
		n, err := execCount(ctx, conn, ranged, s.lo, s.hi)
		if err == nil {
			t.Salvaged += n
			continue
		}
		t.addError(err)
		width := uint64(s.hi) - uint64(s.lo) //nolint:gosec // on purpose: rowids span all of int64, so hi-lo may exceed MaxInt64; uint64 subtraction gives it exactly
		if width < rangeFloor {
			for id := s.lo; ; id++ {
				t.Reads++
				if n, err := execCount(ctx, conn, insert+" WHERE "+rowid+" = ?", id); err == nil {
					t.Salvaged += n
				}
				if id == s.hi {
					break
				}
			}
			continue
		}
		mid := s.lo + int64(width/2) //nolint:gosec // width/2 < 2^63
		// Upper half pushed first so the lower half is read first: rows go in in order.
		stack = append(stack, span{mid + 1, s.hi}, span{s.lo, mid})
	}
	if gaveUp {
		t.addError(fmt.Errorf("gave up after %d reads; rows in the ranges not yet read are counted as lost", t.Reads))
	}
	return t, nil
}

// unboundedSpan is searched above the highest rowid known when the table's last page
// is unreadable and nothing else says how far its rowids go.
const unboundedSpan = 1 << 20

// rowidBounds finds the range of rowids to search. Every read seeks through the table's
// edge pages, so a damaged first or last page makes min()/max() fail; then an intact
// index (which holds every row's rowid), the AUTOINCREMENT counter, or rowid 1 and
// unboundedSpan above the highest rowid known stand in. bounded is false in that last case.
func rowidBounds(ctx context.Context, conn *sql.Conn, o schemaObject, rowid string, schema []schemaObject) (lo, hi int64, bounded bool) {
	q := quoteIdent(o.Name)
	var loV, hiV sql.NullInt64
	if conn.QueryRowContext(ctx, "SELECT min("+rowid+") FROM src."+q).Scan(&loV) != nil {
		loV.Valid = false
	}
	if conn.QueryRowContext(ctx, "SELECT max("+rowid+") FROM src."+q).Scan(&hiV) != nil {
		hiV.Valid = false
	}
	for _, ix := range schema {
		if loV.Valid && hiV.Valid {
			break
		}
		if ix.Type != "index" || ix.Table != o.Name {
			continue
		}
		var a, b sql.NullInt64
		if conn.QueryRowContext(ctx, "SELECT min("+rowid+"), max("+rowid+") FROM src."+q+" INDEXED BY "+quoteIdent(ix.Name)).Scan(&a, &b) == nil && a.Valid {
			if !loV.Valid {
				loV = a
			}
			if !hiV.Valid {
				hiV = b
			}
		}
	}
	if !hiV.Valid && hasTable(schema, "sqlite_sequence") {
		_ = conn.QueryRowContext(ctx, "SELECT seq FROM src.sqlite_sequence WHERE name=?", o.Name).Scan(&hiV)
	}
	lo = int64(1)
	if loV.Valid {
		lo = loV.Int64
	}
	if hiV.Valid {
		return lo, max(hiV.Int64, lo), true
	}
	if lo > math.MaxInt64-unboundedSpan {
		return lo, math.MaxInt64, false
	}
	return lo, lo + unboundedSpan, false
}

// streamTable reads a WITHOUT ROWID table in key order and keeps every row up to the
// first error: without a rowid there is no range to resume from.
func streamTable(ctx context.Context, conn *sql.Conn, o schemaObject, cols []string, t TableSalvage) (TableSalvage, error) {
	t.Method = "stream"
	q := quoteIdent(o.Name)
	// The rows are buffered: one connection cannot insert while its SELECT is open.
	rs, err := conn.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM src."+q) //nolint:gosec // q and cols are quoted by quoteIdent
	if err != nil {
		t.addError(err)
		return t, nil
	}
	var buf [][]any
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.addError(err)
			break
		}
		buf = append(buf, vals)
	}
	if err := rs.Err(); err != nil {
		t.addError(err)
	}
	rs.Close()
	ins := "INSERT INTO main." + q + "(" + strings.Join(cols, ", ") + ") VALUES(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")" //nolint:gosec // q and cols are quoted by quoteIdent; the values are bound
	for _, vals := range buf {
		if _, err := conn.ExecContext(ctx, ins, vals...); err != nil {
			if ctx.Err() != nil {
				return t, ctx.Err()
			}
			t.addError(err)
			continue
		}
		t.Salvaged++
	}
	return t, nil
}

func (t *TableSalvage) addError(err error) {
	if len(t.Errors) < maxErrorsKept {
		t.Errors = append(t.Errors, err.Error())
	}
}

func execCount(ctx context.Context, conn *sql.Conn, q string, args ...any) (int64, error) {
	r, err := conn.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// insertColumns lists the columns an INSERT can name (generated and hidden ones cannot),
// quoted.
func insertColumns(ctx context.Context, conn *sql.Conn, table string) ([]string, error) {
	rs, err := conn.QueryContext(ctx, "SELECT name, hidden FROM pragma_table_xinfo(?, 'src')", table)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var cols []string
	for rs.Next() {
		var name string
		var hidden int
		if err := rs.Scan(&name, &hidden); err != nil {
			return nil, err
		}
		if hidden == 0 {
			cols = append(cols, quoteIdent(name))
		}
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("no columns")
	}
	return cols, nil
}

// rowidName is a name for the rowid that no column shadows, or "" for a WITHOUT ROWID
// table (or one whose columns take all three names).
func rowidName(o schemaObject, cols []string) string {
	sqlText := strings.ToUpper(o.SQL)
	if i := strings.LastIndex(sqlText, ")"); i >= 0 && strings.Contains(sqlText[i:], "WITHOUT") && strings.Contains(sqlText[i:], "ROWID") {
		return ""
	}
	taken := map[string]bool{}
	for _, c := range cols {
		taken[strings.ToLower(strings.Trim(c, `"`))] = true
	}
	for _, n := range []string{"rowid", "_rowid_", "oid"} {
		if !taken[n] {
			return n
		}
	}
	return ""
}
