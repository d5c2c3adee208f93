package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

// MaxSchemaObjects bounds how many tables and indexes a schema read takes from one file:
// a hostile file cannot make the comparison run for ever.
const MaxSchemaObjects = 100000

// MaxSchemaLines is how many differences a SchemaMismatchError lists before "and N more".
const MaxSchemaLines = 10

// Schema is what a database file declares: its tables (with their columns) and indexes.
// SQLite's own objects (sqlite_sequence, sqlite_stat1, sqlite_autoindex_*) are left out:
// they follow from the declarations.
type Schema struct {
	Tables  []SchemaTable `json:"tables"`
	Indexes []SchemaIndex `json:"indexes"`
}

// SchemaTable is one table. A virtual table's columns are not read (its module may not be
// compiled in); it is compared by name.
type SchemaTable struct {
	Name    string         `json:"name"`
	Virtual bool           `json:"virtual,omitempty"`
	Columns []SchemaColumn `json:"columns,omitempty"`
}

// SchemaColumn is one row of PRAGMA table_info.
type SchemaColumn struct {
	Name string `json:"name"`
	Type string `json:"type"` // declared type, as written
}

// SchemaIndex is one index: its table, whether it is UNIQUE, and its columns ("<expr>"
// for an expression).
type SchemaIndex struct {
	Name    string   `json:"name"`
	Table   string   `json:"table"`
	Unique  bool     `json:"unique,omitempty"`
	Columns []string `json:"columns"`
}

// SchemaChange is one difference between a backup file's schema and the live database's.
// Kind is one of the Schema* constants below. Added changes (the file has something
// the live database does not) are allowed with a warning; the others refuse a restore.
type SchemaChange struct {
	Kind  string `json:"kind"`
	Table string `json:"table,omitempty"`
	Name  string `json:"name"`
	// Live and File say what each side has when they differ (a column's type, an
	// index's definition).
	Live  string `json:"live,omitempty"`
	File  string `json:"file,omitempty"`
	Added bool   `json:"added"`
}

// The kinds of SchemaChange.
const (
	SchemaTableMissing  = "table_missing"  // in the live database, not in the file
	SchemaTableAdded    = "table_added"    // only in the file
	SchemaTableKind     = "table_kind"     // a table in one, a virtual table in the other
	SchemaColumnMissing = "column_missing" // a column of the live table is not in the file's
	SchemaColumnAdded   = "column_added"   // a column only the file's table has
	SchemaColumnType    = "column_type"    // the declared types differ
	SchemaIndexMissing  = "index_missing"  // in the live database, not in the file
	SchemaIndexAdded    = "index_added"    // only in the file
	SchemaIndexDiffers  = "index_differs"  // same name, other table, columns or uniqueness
)

func (c SchemaChange) String() string {
	switch c.Kind {
	case SchemaTableMissing:
		return fmt.Sprintf("table %s: missing in the file", c.Name)
	case SchemaTableAdded:
		return fmt.Sprintf("table %s: only in the file", c.Name)
	case SchemaTableKind:
		return fmt.Sprintf("table %s: live is %s, the file's is %s", c.Name, c.Live, c.File)
	case SchemaColumnMissing:
		return fmt.Sprintf("table %s: column %s missing in the file", c.Table, c.Name)
	case SchemaColumnAdded:
		return fmt.Sprintf("table %s: column %s only in the file", c.Table, c.Name)
	case SchemaColumnType:
		return fmt.Sprintf("table %s: column %s is %s live, %s in the file", c.Table, c.Name, typeName(c.Live), typeName(c.File))
	case SchemaIndexMissing:
		return fmt.Sprintf("index %s on %s: missing in the file", c.Name, c.Table)
	case SchemaIndexAdded:
		return fmt.Sprintf("index %s on %s: only in the file", c.Name, c.Table)
	case SchemaIndexDiffers:
		return fmt.Sprintf("index %s: live is %s, the file's is %s", c.Name, c.Live, c.File)
	}
	return c.Kind + " " + c.Name
}

func typeName(t string) string {
	if t == "" {
		return "untyped"
	}
	return t
}

// SchemaComparison is the result of CompareSchema.
type SchemaComparison struct {
	Live string `json:"live"`
	File string `json:"file"`
	// Compared is false when the live database has nothing to compare with (missing, empty,
	// no tables) or its schema could not be read; Note says which.
	Compared bool           `json:"compared"`
	Note     string         `json:"note,omitempty"`
	Changes  []SchemaChange `json:"changes,omitempty"`
}

// Conflicts are the changes that refuse a restore: what the file lacks or has otherwise.
func (c SchemaComparison) Conflicts() []SchemaChange { return c.filter(false) }

// Additions are what the file only adds (tables, columns, indexes): a restore proceeds
// with a warning.
func (c SchemaComparison) Additions() []SchemaChange { return c.filter(true) }

func (c SchemaComparison) filter(added bool) []SchemaChange {
	var out []SchemaChange
	for _, ch := range c.Changes {
		if ch.Added == added {
			out = append(out, ch)
		}
	}
	return out
}

// ErrSchemaMismatch matches every *SchemaMismatchError.
var ErrSchemaMismatch = errors.New("schema does not match the live database")

// SchemaMismatchError refuses a restore whose file lacks or changes part of the live
// database's schema.
type SchemaMismatchError struct {
	Live, File string
	Conflicts  []SchemaChange
	Additions  []SchemaChange
}

func (e *SchemaMismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "backup %s: its schema does not match the live database %s (%d difference(s)",
		e.File, e.Live, len(e.Conflicts))
	if len(e.Additions) > 0 {
		fmt.Fprintf(&b, ", and %d addition(s)", len(e.Additions))
	}
	b.WriteString("):")
	b.WriteString(FormatSchemaChanges(append(append([]SchemaChange(nil), e.Conflicts...), e.Additions...), MaxSchemaLines))
	return b.String()
}

// Is makes errors.Is(err, ErrSchemaMismatch) true.
func (e *SchemaMismatchError) Is(target error) bool { return target == ErrSchemaMismatch }

// FormatSchemaChanges gives one indented line per change, at most limit of them, then
// "and N more".
func FormatSchemaChanges(changes []SchemaChange, limit int) string {
	var b strings.Builder
	for i, c := range changes {
		if limit > 0 && i == limit {
			fmt.Fprintf(&b, "\n  and %d more", len(changes)-limit)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(c.String())
	}
	return b.String()
}

// CompareSchema reads the schema of the backup file and of the live database and lists
// how they differ. Nothing is written: the file is opened immutable (only its main file is
// read, which is exactly what Restore copies; no -wal or -shm is created next to it), the
// live database read-only (its -wal read like any reader's; a -wal/-shm the open creates is
// removed again as Check does).
//
// A file that is not a regular SQLite file, or whose schema cannot be read, is an error. A
// live database that does not exist, is empty or has no tables has nothing to compare:
// Compared is false. A live database whose schema cannot be read (it may be the corrupt one
// being replaced) is not an error either: Compared is false and Note says why.
func CompareSchema(ctx context.Context, file, live string, busy time.Duration) (SchemaComparison, error) {
	cmp := SchemaComparison{Live: live, File: file}
	if _, err := readHeader(file); err != nil {
		return cmp, fmt.Errorf("backup %w", err)
	}
	fs, err := readSchemaImmutable(ctx, file)
	if err != nil {
		if ctx.Err() != nil {
			return cmp, ctx.Err()
		}
		return cmp, fmt.Errorf("backup %s: read its schema: %w", file, err)
	}
	if _, err := os.Stat(live); errors.Is(err, os.ErrNotExist) {
		cmp.Note = "the live database does not exist"
		return cmp, nil
	}
	if _, err := readHeader(live); err != nil {
		if errors.Is(err, ErrNotDatabase) {
			cmp.Note = "the live database is not an SQLite file: " + strings.TrimPrefix(err.Error(), live+": ")
			return cmp, nil
		}
		return cmp, fmt.Errorf("live database %w", err)
	}
	ls, err := readSchemaLive(ctx, live, busy)
	if err != nil {
		if ctx.Err() != nil {
			return cmp, ctx.Err()
		}
		cmp.Note = "the live database's schema cannot be read: " + err.Error()
		return cmp, nil
	}
	if len(ls.Tables) == 0 {
		cmp.Note = "the live database has no tables"
		return cmp, nil
	}
	cmp.Compared = true
	cmp.Changes = DiffSchema(ls, fs)
	return cmp, nil
}

// DiffSchema lists what file has other than live: tables, then their columns, then
// indexes, each in name order. Names are compared without regard to ASCII case, as SQLite
// does; declared types likewise.
func DiffSchema(live, file Schema) []SchemaChange {
	var out []SchemaChange
	lt, ft := tableMap(live.Tables), tableMap(file.Tables)
	for _, k := range unionKeys(lt, ft) {
		l, lok := lt[k]
		f, fok := ft[k]
		switch {
		case !fok:
			out = append(out, SchemaChange{Kind: SchemaTableMissing, Name: l.Name})
		case !lok:
			out = append(out, SchemaChange{Kind: SchemaTableAdded, Name: f.Name, Added: true})
		case l.Virtual != f.Virtual:
			out = append(out, SchemaChange{Kind: SchemaTableKind, Name: l.Name, Live: tableKind(l), File: tableKind(f)})
		default:
			out = append(out, diffColumns(l, f)...)
		}
	}
	li, fi := indexMap(live.Indexes), indexMap(file.Indexes)
	for _, k := range unionKeys(li, fi) {
		l, lok := li[k]
		f, fok := fi[k]
		switch {
		case !fok:
			out = append(out, SchemaChange{Kind: SchemaIndexMissing, Name: l.Name, Table: l.Table})
		case !lok:
			out = append(out, SchemaChange{Kind: SchemaIndexAdded, Name: f.Name, Table: f.Table, Added: true})
		case !strings.EqualFold(indexDef(l), indexDef(f)):
			out = append(out, SchemaChange{Kind: SchemaIndexDiffers, Name: l.Name, Table: l.Table, Live: indexDef(l), File: indexDef(f)})
		}
	}
	return out
}

func diffColumns(l, f SchemaTable) []SchemaChange {
	var out []SchemaChange
	lc, fc := map[string]SchemaColumn{}, map[string]SchemaColumn{}
	for _, c := range l.Columns {
		lc[strings.ToLower(c.Name)] = c
	}
	for _, c := range f.Columns {
		fc[strings.ToLower(c.Name)] = c
	}
	// Live order first (the order a person knows), then the file's additions.
	for _, c := range l.Columns {
		g, ok := fc[strings.ToLower(c.Name)]
		switch {
		case !ok:
			out = append(out, SchemaChange{Kind: SchemaColumnMissing, Table: l.Name, Name: c.Name})
		case !strings.EqualFold(strings.TrimSpace(c.Type), strings.TrimSpace(g.Type)):
			out = append(out, SchemaChange{Kind: SchemaColumnType, Table: l.Name, Name: c.Name, Live: c.Type, File: g.Type})
		}
	}
	for _, c := range f.Columns {
		if _, ok := lc[strings.ToLower(c.Name)]; !ok {
			out = append(out, SchemaChange{Kind: SchemaColumnAdded, Table: l.Name, Name: c.Name, Added: true})
		}
	}
	return out
}

func tableKind(t SchemaTable) string {
	if t.Virtual {
		return "a virtual table"
	}
	return "a table"
}

func indexDef(ix SchemaIndex) string {
	s := ""
	if ix.Unique {
		s = "UNIQUE "
	}
	return s + ix.Table + "(" + strings.Join(ix.Columns, ", ") + ")"
}

func tableMap(ts []SchemaTable) map[string]SchemaTable {
	m := make(map[string]SchemaTable, len(ts))
	for _, t := range ts {
		m[strings.ToLower(t.Name)] = t
	}
	return m
}

func indexMap(ix []SchemaIndex) map[string]SchemaIndex {
	m := make(map[string]SchemaIndex, len(ix))
	for _, i := range ix {
		m[strings.ToLower(i.Name)] = i
	}
	return m
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// ReadSchema reads path's schema through a read-only connection, removing a -wal/-shm
// the open created (as Check does).
func ReadSchema(ctx context.Context, path string, busy time.Duration) (Schema, error) {
	if _, err := readHeader(path); err != nil {
		return Schema{}, err
	}
	return readSchemaLive(ctx, path, busy)
}

func readSchemaLive(ctx context.Context, path string, busy time.Duration) (Schema, error) {
	defer tidy(path, busy)()
	db, err := openReadOnly(path, busy)
	if err != nil {
		return Schema{}, err
	}
	defer db.Close()
	return readDBSchema(ctx, db)
}

// readSchemaImmutable opens path with immutable=1: no locks, no -wal or -shm read or
// created; only the main file, which is what Restore copies.
func readSchemaImmutable(ctx context.Context, path string) (Schema, error) {
	d, err := dsn(path, url.Values{"mode": {"ro"}, "immutable": {"1"}})
	if err != nil {
		return Schema{}, err
	}
	db, err := sql.Open("sqlite3", d)
	if err != nil {
		return Schema{}, err
	}
	db.SetMaxOpenConns(1)
	defer db.Close()
	return readDBSchema(ctx, db)
}

func readDBSchema(ctx context.Context, db *sql.DB) (Schema, error) {
	var s Schema
	rows, err := db.QueryContext(ctx, `SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema
		WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY type DESC, name`)
	if err != nil {
		return s, err
	}
	n := 0
	for rows.Next() {
		var typ, name, tbl, sqlText string
		if err := rows.Scan(&typ, &name, &tbl, &sqlText); err != nil {
			rows.Close()
			return s, err
		}
		if n++; n > MaxSchemaObjects {
			rows.Close()
			return s, fmt.Errorf("more than %d tables and indexes", MaxSchemaObjects)
		}
		if typ == "table" {
			s.Tables = append(s.Tables, SchemaTable{Name: name,
				Virtual: strings.HasPrefix(strings.ToUpper(strings.TrimSpace(sqlText)), "CREATE VIRTUAL")})
		} else {
			s.Indexes = append(s.Indexes, SchemaIndex{Name: name, Table: tbl})
		}
	}
	if err := rows.Close(); err != nil {
		return s, err
	}
	if err := rows.Err(); err != nil {
		return s, err
	}
	for i := range s.Tables {
		if s.Tables[i].Virtual {
			continue
		}
		cols, err := tableColumns(ctx, db, s.Tables[i].Name)
		if err != nil {
			return s, fmt.Errorf("columns of %s: %w", s.Tables[i].Name, err)
		}
		s.Tables[i].Columns = cols
	}
	for i := range s.Indexes {
		if err := indexInfo(ctx, db, &s.Indexes[i]); err != nil {
			return s, fmt.Errorf("index %s: %w", s.Indexes[i].Name, err)
		}
	}
	return s, nil
}

func tableColumns(ctx context.Context, db *sql.DB, table string) ([]SchemaColumn, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, type FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SchemaColumn
	for rows.Next() {
		var c SchemaColumn
		var typ sql.NullString
		if err := rows.Scan(&c.Name, &typ); err != nil {
			return out, err
		}
		c.Type = typ.String
		out = append(out, c)
	}
	return out, rows.Err()
}

func indexInfo(ctx context.Context, db *sql.DB, ix *SchemaIndex) error {
	var unique sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT "unique" FROM pragma_index_list(?) WHERE name = ?`, ix.Table, ix.Name).Scan(&unique)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	ix.Unique = unique.Int64 != 0
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_index_info(?) ORDER BY seqno`, ix.Name)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name sql.NullString
		if err := rows.Scan(&name); err != nil {
			return err
		}
		if name.Valid {
			ix.Columns = append(ix.Columns, name.String)
		} else {
			ix.Columns = append(ix.Columns, "<expr>")
		}
	}
	return rows.Err()
}
