package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// openWriter opens path the way Claude Flow does: WAL, synchronous=NORMAL. With
// autocheckpoint off, every commit stays in the -wal until the test closes the connection.
func openWriter(t testing.TB, path string, autocheckpoint bool) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	stmts := []string{"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"}
	if !autocheckpoint {
		stmts = append(stmts, "PRAGMA wal_autocheckpoint=0")
	}
	stmts = append(stmts, "CREATE TABLE IF NOT EXISTS memory(id INTEGER PRIMARY KEY, key TEXT UNIQUE, value TEXT)")
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func insertRows(t testing.TB, db *sql.DB, from, n int) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		if _, err := tx.Exec("INSERT INTO memory(key, value) VALUES(?, ?)", fmt.Sprintf("k%07d", i), strings.Repeat("v", 200)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func countRows(t testing.TB, path string) int {
	t.Helper()
	db, err := openReadOnly(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM memory").Scan(&n); err != nil {
		t.Fatalf("count rows of %s: %v", path, err)
	}
	return n
}

// sqlite3CLI runs the real sqlite3 binary and returns its output.
func sqlite3CLI(t testing.TB, args ...string) string {
	t.Helper()
	bin := testenv.RequireTool(t, "sqlite3")
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %q: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func mustBackup(t testing.TB, src, dst string) BackupResult {
	t.Helper()
	res, err := Backup(context.Background(), src, dst, BackupOptions{})
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	return res
}

func tempDB(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(t.TempDir(), name)
}
