package sqlitedb

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// makeBigDB writes a rollback-journal database with a table, an index and a child table.
func makeBigDB(t testing.TB, path string, rows int) {
	t.Helper()
	db, err := openReadWrite(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		"CREATE TABLE memory(id INTEGER PRIMARY KEY, key TEXT UNIQUE, value TEXT)",
		"CREATE TABLE tags(id INTEGER PRIMARY KEY, memory_id INTEGER REFERENCES memory(id), tag TEXT)",
		"CREATE INDEX tags_tag ON tags(tag)",
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	insertRows(t, db, 0, rows)
	if _, err := db.Exec("INSERT INTO tags(memory_id, tag) SELECT id, 'tag' || (id % 10) FROM memory"); err != nil {
		t.Fatal(err)
	}
}

// corruptPages overwrites pages in the middle of the file with garbage.
func corruptPages(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	garbage := make([]byte, 4096*8)
	for i := range garbage {
		garbage[i] = byte(i*7 + 13)
	}
	if _, err := f.WriteAt(garbage, fi.Size()/2/4096*4096); err != nil {
		t.Fatal(err)
	}
}

func TestCheckCorruptReportsEveryRow(t *testing.T) {
	path := tempDB(t, "memory.db")
	makeBigDB(t, path, 3000)
	res, err := Check(context.Background(), path, CheckOptions{Tables: true})
	if err != nil || !res.OK || len(res.Tables) != 2 || res.Tables[0].Rows != 3000 {
		t.Fatalf("healthy db: %+v %v", res, err)
	}
	corruptPages(t, path)
	res, err = Check(context.Background(), path, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK {
		t.Fatalf("corrupt db reported ok")
	}
	// sqlite3 prints the rows on stdout and exits 11 (SQLITE_CORRUPT) after them.
	out, _ := exec.Command(testenv.RequireTool(t, "sqlite3"), path, "PRAGMA integrity_check(10000)").Output()
	cli := strings.TrimSpace(string(out))
	// The CLI's SQLite (older) words the rows differently ("Page 110:" where newer versions
	// say "Tree 2 page 110:"): every page it names must be named by us too.
	ours := strings.ToLower(strings.Join(res.Problems, "\n"))
	pages := 0
	for _, line := range strings.Split(cli, "\n") {
		if !strings.HasPrefix(line, "Page ") {
			continue
		}
		pages++
		if !strings.Contains(ours, strings.ToLower(line)) {
			t.Errorf("sqlite3 reports %q; Check does not", line)
		}
	}
	if pages < 2 || len(res.Problems) < pages {
		t.Errorf("sqlite3 names %d pages, Check has %d problems:\n%s\nsqlite3:\n%s", pages, len(res.Problems), strings.Join(res.Problems, "\n"), cli)
	}
	t.Logf("%d problems (sqlite3 CLI: %d rows)", len(res.Problems), len(strings.Split(cli, "\n")))
	q, err := Check(context.Background(), path, CheckOptions{Quick: true})
	if err != nil || q.OK || q.Check != "quick_check" {
		t.Errorf("quick_check: %+v %v", q, err)
	}
	// A backup of it is refused, and leaves nothing.
	dst := filepath.Join(filepath.Dir(path), "b.db")
	if _, err := Backup(context.Background(), path, dst, BackupOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("backup of a corrupt db: %v", err)
	}
	if exists(dst) || exists(dst+".sha256") {
		t.Errorf("failed backup left files")
	}
}

func TestCheckNotADatabase(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]byte{
		"empty.db": nil,
		"text.db":  []byte(strings.Repeat("hello ", 200)),
		"short.db": []byte("SQLite format 3\x00"),
	}
	for name, content := range cases {
		p := filepath.Join(dir, name)
		os.WriteFile(p, content, 0o600)
		res, err := Check(context.Background(), p, CheckOptions{Tables: true, ForeignKeys: true})
		if err != nil || res.OK || len(res.Problems) == 0 {
			t.Errorf("%s: %+v %v", name, res, err)
		}
		t.Logf("%s: %s", name, res.Summary())
	}
	// A valid header followed by garbage.
	p := filepath.Join(dir, "garbage.db")
	good := filepath.Join(dir, "good.db")
	makeBigDB(t, good, 10)
	b, _ := os.ReadFile(good)
	for i := 100; i < len(b); i++ {
		b[i] = 0xff
	}
	os.WriteFile(p, b, 0o600)
	res, err := Check(context.Background(), p, CheckOptions{})
	if err != nil || res.OK {
		t.Errorf("garbage after header: %+v %v", res, err)
	}
	if _, err := Check(context.Background(), filepath.Join(dir, "missing.db"), CheckOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestCheckForeignKeys(t *testing.T) {
	path := tempDB(t, "config.db")
	makeBigDB(t, path, 5)
	db, _ := openReadWrite(path, 0)
	db.Exec("INSERT INTO tags(memory_id, tag) VALUES(999, 'orphan')")
	db.Close()
	res, err := Check(context.Background(), path, CheckOptions{ForeignKeys: true})
	if err != nil || res.OK || len(res.ForeignKeys) != 1 || res.ForeignKeys[0].Table != "tags" || res.ForeignKeys[0].Parent != "memory" {
		t.Errorf("%+v %v", res, err)
	}
}

// Check of a live WAL database reads the -wal and leaves it alone.
func TestCheckLiveWAL(t *testing.T) {
	path := tempDB(t, "memory.db")
	w := openWriter(t, path, false)
	insertRows(t, w, 0, 123)
	wal, _ := os.ReadFile(path + "-wal")
	res, err := Check(context.Background(), path, CheckOptions{Tables: true})
	if err != nil || !res.OK || res.JournalMode != "wal" || res.Tables[0].Rows != 123 {
		t.Fatalf("%+v %v", res, err)
	}
	after, _ := os.ReadFile(path + "-wal")
	if string(after) != string(wal) {
		t.Errorf("check changed the -wal")
	}
}

// A check of a stopped WAL database leaves the directory as it found it: the -wal and
// -shm its read-only open created are gone again, so none is left owned by root.
func TestCheckStoppedWALLeavesNoSidecars(t *testing.T) {
	path := tempDB(t, "memory.db")
	w := openWriter(t, path, true)
	insertRows(t, w, 0, 50)
	w.Close() // the last connection: SQLite checkpoints and removes -wal/-shm
	if exists(path+"-wal") || exists(path+"-shm") {
		t.Fatal("setup: the writer left its -wal/-shm")
	}
	for _, quick := range []bool{false, true} {
		res, err := Check(context.Background(), path, CheckOptions{Quick: quick})
		if err != nil || !res.OK || res.JournalMode != "wal" {
			t.Fatalf("quick=%v: %+v %v", quick, res, err)
		}
		for _, s := range []string{"-wal", "-shm"} {
			if exists(path + s) {
				t.Errorf("quick=%v: check left %s", quick, filepath.Base(path+s))
			}
		}
	}
	if n := countRows(t, path); n != 50 {
		t.Errorf("rows after check: %d, want 50", n)
	}
}

// The cleanup never takes the -wal/-shm from a process that opened the database after the
// check began: SQLite's exclusive lock on close proves it is alone, and here it is not.
func TestCheckTidyKeepsSidecarsOfLateOpener(t *testing.T) {
	bin := testenv.RequireTool(t, "sqlite3")
	path := tempDB(t, "memory.db")
	w := openWriter(t, path, true)
	insertRows(t, w, 0, 10)
	w.Close()
	cleanup := tidy(path, 0) // as Check does before its read-only open

	cmd := exec.Command(bin, path) // the service starting meanwhile
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	rd := bufio.NewReader(stdout)
	// Commit a row that stays in the -wal, and keep the connection open.
	io.WriteString(stdin, "PRAGMA wal_autocheckpoint=0;\n")
	if line, _ := rd.ReadString('\n'); strings.TrimSpace(line) != "0" {
		t.Fatalf("sqlite3 child said %q", line)
	}
	io.WriteString(stdin, "INSERT INTO memory(key, value) VALUES('late', 'x'); SELECT count(*) FROM memory;\n")
	if line, _ := rd.ReadString('\n'); strings.TrimSpace(line) != "11" {
		t.Fatalf("sqlite3 child said %q", line)
	}
	walBefore, err := os.ReadFile(path + "-wal")
	if err != nil || len(walBefore) == 0 {
		t.Fatalf("the child's commit is not in the -wal: %d bytes, %v", len(walBefore), err)
	}

	cleanup()

	if !exists(path+"-wal") || !exists(path+"-shm") {
		t.Fatalf("cleanup removed the -wal or -shm of a process using the database")
	}
	// The child still works and its commits are still visible to a new reader.
	io.WriteString(stdin, "INSERT INTO memory(key, value) VALUES('later', 'y'); SELECT count(*) FROM memory;\n")
	if line, _ := rd.ReadString('\n'); strings.TrimSpace(line) != "12" {
		t.Fatalf("sqlite3 child after cleanup said %q", line)
	}
	if n := countRows(t, path); n != 12 {
		t.Errorf("a new reader sees %d rows, want 12", n)
	}
}
