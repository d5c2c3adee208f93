package sqlitedb

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// makeDB creates path with the statements run in order (WAL when the first is the
// journal_mode pragma) and closes it.
func makeDB(t *testing.T, path string, stmts ...string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return path
}

const (
	memoryTable = "CREATE TABLE memory(id INTEGER PRIMARY KEY, key TEXT NOT NULL, value TEXT)"
	memoryIndex = "CREATE UNIQUE INDEX memory_key ON memory(key)"
	agentsTable = "CREATE TABLE agents(id TEXT PRIMARY KEY, name TEXT, state TEXT)"
)

func compare(t *testing.T, file, live string) SchemaComparison {
	t.Helper()
	c, err := CompareSchema(context.Background(), file, live, 0)
	if err != nil {
		t.Fatalf("CompareSchema(%s, %s): %v", file, live, err)
	}
	return c
}

func kinds(cs []SchemaChange) string {
	var s []string
	for _, c := range cs {
		name := c.Name
		if c.Table != "" && c.Kind != SchemaIndexMissing && c.Kind != SchemaIndexAdded && c.Kind != SchemaIndexDiffers {
			name = c.Table + "." + c.Name
		}
		s = append(s, c.Kind+":"+name)
	}
	return strings.Join(s, " ")
}

func TestCompareSchemaSameSchema(t *testing.T) {
	dir := t.TempDir()
	live := makeDB(t, filepath.Join(dir, "memory.db"), "PRAGMA journal_mode=WAL", memoryTable, memoryIndex, agentsTable,
		"INSERT INTO memory(key, value) VALUES ('a', 'b')")
	// The same schema written by another hand: other case, other whitespace, other data.
	file := makeDB(t, filepath.Join(dir, "backup.db"), strings.ToUpper(agentsTable),
		"create table MEMORY(ID integer primary key,   KEY text not null, VALUE text)", "CREATE UNIQUE INDEX Memory_Key ON memory(Key)")
	c := compare(t, file, live)
	if !c.Compared || len(c.Changes) != 0 {
		t.Fatalf("same schema: compared %v, changes %s (%s)", c.Compared, kinds(c.Changes), c.Note)
	}
}

func TestCompareSchemaUnrelatedRefused(t *testing.T) {
	dir := t.TempDir()
	live := makeDB(t, filepath.Join(dir, "memory.db"), memoryTable, memoryIndex)
	file := makeDB(t, filepath.Join(dir, "other.db"), "CREATE TABLE invoices(no INTEGER, total REAL)", "CREATE INDEX invoices_no ON invoices(no)")
	c := compare(t, file, live)
	want := "table_added:invoices table_missing:memory index_added:invoices_no index_missing:memory_key"
	if got := kinds(c.Changes); got != want {
		t.Fatalf("changes = %s, want %s", got, want)
	}
	if got := kinds(c.Conflicts()); got != "table_missing:memory index_missing:memory_key" {
		t.Fatalf("conflicts = %s", got)
	}
	err := error(&SchemaMismatchError{Live: live, File: file, Conflicts: c.Conflicts(), Additions: c.Additions()})
	if !errors.Is(err, ErrSchemaMismatch) {
		t.Fatal("not ErrSchemaMismatch")
	}
	for _, w := range []string{"table memory: missing in the file", "table invoices: only in the file", "index memory_key on memory: missing in the file"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message lacks %q:\n%s", w, err)
		}
	}
}

// The file only adds (a table, a column, an index): the rule lets it through as a warning.
func TestCompareSchemaFileAddsIsWarning(t *testing.T) {
	dir := t.TempDir()
	live := makeDB(t, filepath.Join(dir, "memory.db"), memoryTable, memoryIndex)
	file := makeDB(t, filepath.Join(dir, "newer.db"),
		"CREATE TABLE memory(id INTEGER PRIMARY KEY, key TEXT NOT NULL, value TEXT, ttl INTEGER)", memoryIndex,
		agentsTable, "CREATE INDEX agents_state ON agents(state)")
	c := compare(t, file, live)
	if len(c.Conflicts()) != 0 {
		t.Fatalf("conflicts: %s", kinds(c.Conflicts()))
	}
	if got := kinds(c.Additions()); got != "table_added:agents column_added:memory.ttl index_added:agents_state" {
		t.Fatalf("additions = %s", got)
	}
}

// The file lacks what the live database has (an index, a column) or has it otherwise (a
// type, an index's columns): refused.
func TestCompareSchemaFileLacksIsRefused(t *testing.T) {
	dir := t.TempDir()
	live := makeDB(t, filepath.Join(dir, "memory.db"), memoryTable, memoryIndex, agentsTable,
		"CREATE INDEX agents_state ON agents(state)")
	for _, tc := range []struct {
		name  string
		stmts []string
		want  string
	}{
		{"missing index", []string{memoryTable, memoryIndex, agentsTable}, "index_missing:agents_state"},
		{"missing column", []string{"CREATE TABLE memory(id INTEGER PRIMARY KEY, key TEXT NOT NULL)", memoryIndex, agentsTable,
			"CREATE INDEX agents_state ON agents(state)"}, "column_missing:memory.value"},
		{"missing table", []string{memoryTable, memoryIndex}, "table_missing:agents index_missing:agents_state"},
		{"column type", []string{"CREATE TABLE memory(id INTEGER PRIMARY KEY, key TEXT NOT NULL, value BLOB)", memoryIndex, agentsTable,
			"CREATE INDEX agents_state ON agents(state)"}, "column_type:memory.value"},
		{"index columns", []string{memoryTable, memoryIndex, agentsTable, "CREATE INDEX agents_state ON agents(name)"}, "index_differs:agents_state"},
		{"index uniqueness", []string{memoryTable, "CREATE INDEX memory_key ON memory(key)", agentsTable,
			"CREATE INDEX agents_state ON agents(state)"}, "index_differs:memory_key"},
		{"virtual for a table", []string{memoryTable, memoryIndex, "CREATE VIRTUAL TABLE agents USING rtree(id, x0, x1)"},
			"table_kind:agents index_missing:agents_state"},
		{"no tables at all", nil, "table_missing:agents table_missing:memory index_missing:agents_state index_missing:memory_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stmts := tc.stmts
			if len(stmts) == 0 {
				stmts = []string{"PRAGMA user_version=1"} // a valid SQLite file with no tables
			}
			file := makeDB(t, filepath.Join(t.TempDir(), "b.db"), stmts...)
			c := compare(t, file, live)
			if got := kinds(c.Conflicts()); got != tc.want {
				t.Fatalf("conflicts = %q, want %q", got, tc.want)
			}
		})
	}
}

// Nothing to compare with: the restore goes on.
func TestCompareSchemaNothingLive(t *testing.T) {
	dir := t.TempDir()
	file := makeDB(t, filepath.Join(dir, "b.db"), memoryTable)
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	noTables := makeDB(t, filepath.Join(dir, "notables.db"), "PRAGMA user_version=7")
	for _, live := range []string{filepath.Join(dir, "missing.db"), empty, noTables} {
		c := compare(t, file, live)
		if c.Compared || len(c.Changes) != 0 || c.Note == "" {
			t.Errorf("%s: compared %v, changes %s, note %q", live, c.Compared, kinds(c.Changes), c.Note)
		}
	}
	// A file that is not SQLite is an error, not an empty schema.
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CompareSchema(context.Background(), junk, noTables, 0); !errors.Is(err, ErrNotDatabase) {
		t.Fatalf("junk file: %v", err)
	}
}

// The comparison writes nothing: the live WAL database stays byte for byte with no -wal or
// -shm left, the file gets none either, and a live -wal's commits (a migration not yet
// checkpointed) are seen.
func TestCompareSchemaWritesNothing(t *testing.T) {
	dir := t.TempDir()
	live := makeDB(t, filepath.Join(dir, "memory.db"), "PRAGMA journal_mode=WAL", memoryTable, memoryIndex)
	file := makeDB(t, filepath.Join(dir, "b.db"), "PRAGMA journal_mode=WAL", memoryTable, memoryIndex)
	before, _ := os.ReadFile(live)
	fileBefore, _ := os.ReadFile(file)
	c := compare(t, file, live)
	if len(c.Changes) != 0 {
		t.Fatalf("changes %s", kinds(c.Changes))
	}
	after, _ := os.ReadFile(live)
	fileAfter, _ := os.ReadFile(file)
	if !bytes.Equal(before, after) || !bytes.Equal(fileBefore, fileAfter) {
		t.Fatal("a file changed")
	}
	for _, p := range []string{live + "-wal", live + "-shm", file + "-wal", file + "-shm"} {
		if exists(p) {
			t.Errorf("%s left behind", p)
		}
	}

	// A migration still in the live -wal.
	w := openWriter(t, live, false)
	if _, err := w.Exec("ALTER TABLE memory ADD COLUMN ttl INTEGER"); err != nil {
		t.Fatal(err)
	}
	c = compare(t, file, live)
	if got := kinds(c.Conflicts()); got != "column_missing:memory.ttl" {
		t.Fatalf("with the -wal: conflicts %q", got)
	}
}

func TestSchemaMismatchErrorIsBounded(t *testing.T) {
	dir := t.TempDir()
	var stmts []string
	for i := 0; i < 15; i++ {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE t%02d(a)", i))
	}
	live := makeDB(t, filepath.Join(dir, "live.db"), stmts...)
	file := makeDB(t, filepath.Join(dir, "b.db"), "CREATE TABLE other(a)")
	c := compare(t, file, live)
	msg := (&SchemaMismatchError{Live: live, File: file, Conflicts: c.Conflicts(), Additions: c.Additions()}).Error()
	if n := strings.Count(msg, "\n  "); n != MaxSchemaLines+1 {
		t.Errorf("%d lines, want %d:\n%s", n, MaxSchemaLines+1, msg)
	}
	if !strings.Contains(msg, "and 6 more") || !strings.Contains(msg, "(15 difference(s), and 1 addition(s))") {
		t.Errorf("message:\n%s", msg)
	}
}

// The sqlite3 CLI agrees: the tables it lists are the ones compared.
func TestReadSchemaMatchesSQLite3CLI(t *testing.T) {
	dir := t.TempDir()
	p := makeDB(t, filepath.Join(dir, "memory.db"), "PRAGMA journal_mode=WAL", memoryTable, memoryIndex, agentsTable,
		"CREATE TABLE seq(id INTEGER PRIMARY KEY AUTOINCREMENT, x)", "INSERT INTO seq(x) VALUES (1)", "ANALYZE")
	s, err := ReadSchema(context.Background(), p, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range s.Tables {
		names = append(names, tb.Name)
	}
	for _, ix := range s.Indexes {
		names = append(names, ix.Name)
	}
	got := strings.Join(names, "\n")
	want := sqlite3CLI(t, p, `SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY type DESC, name`)
	if got != want {
		t.Fatalf("ReadSchema: %q, sqlite3: %q", got, want)
	}
}
