package cli

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/backup"
)

// TestBackupCreateWithConcurrentWALWriter takes a backup through the real
// sqliteSnapshotter while a writer commits to a WAL database every few
// milliseconds. The backup must hold the last row committed before create
// started, pass integrity_check, and be one consistent snapshot: every
// commit writes a row and a counter in one transaction, and the two agree.
func TestBackupCreateWithConcurrentWALWriter(t *testing.T) {
	install, backups := filepath.Join(t.TempDir(), "app"), t.TempDir()
	if err := os.MkdirAll(filepath.Join(install, ".swarm"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Some MB of other files, so the writer commits while create runs.
	blob := make([]byte, 8<<20)
	_, _ = rand.Read(blob)
	for i := range 4 {
		if err := os.WriteFile(filepath.Join(install, fmt.Sprintf("blob%d.bin", i)), blob, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dbPath := filepath.Join(install, ".swarm", "memory.db")
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?_busy_timeout=5000&_journal_mode=WAL&_synchronous=NORMAL")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, s := range []string{
		"CREATE TABLE rows(n INTEGER PRIMARY KEY, payload TEXT)",
		"CREATE TABLE meta(id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER)",
		"INSERT INTO meta VALUES(1, 0)",
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v; want wal", mode, err)
	}

	commit := func(n int) error {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.Exec("INSERT INTO rows VALUES(?, ?)", n, strings.Repeat("m", 500)); err != nil {
			return err
		}
		if _, err := tx.Exec("UPDATE meta SET last = ? WHERE id = 1", n); err != nil {
			return err
		}
		return tx.Commit()
	}
	// Enough pages that the online backup takes several steps.
	for n := 1; n <= 3000; n++ {
		if err := commit(n); err != nil {
			t.Fatal(err)
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	var lastCommitted, during atomic.Int64
	var creating atomic.Bool
	var writerErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 3001; ctx.Err() == nil; n++ {
			if err := commit(n); err != nil {
				writerErr = err
				return
			}
			lastCommitted.Store(int64(n))
			if creating.Load() {
				during.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	defer func() { stop(); wg.Wait() }()
	for lastCommitted.Load() < 3020 {
		time.Sleep(time.Millisecond)
	}

	before := lastCommitted.Load() // committed before create started
	creating.Store(true)
	res, err := backup.Create(context.Background(), backup.CreateOptions{
		InstallDir: install, BackupDir: backups,
		Databases:   []backup.Database{{Name: "memory", Path: ".swarm/memory.db"}},
		Snapshotter: sqliteSnapshotter{busy: 5 * time.Second},
		CreatedBy:   "test", Host: "test",
	})
	creating.Store(false)
	time.Sleep(10 * time.Millisecond)
	stop()
	wg.Wait()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if writerErr != nil {
		t.Fatalf("writer: %v", writerErr)
	}
	if len(res.Databases) != 1 || res.Databases[0].Method != "online_backup" || len(res.Warnings) != 0 {
		t.Fatalf("databases %+v, warnings %v", res.Databases, res.Warnings)
	}
	if _, err := os.Stat(dbPath + "-wal"); err != nil {
		t.Fatalf("the live database has no -wal (%v): the test did not exercise WAL", err)
	}

	out := filepath.Join(t.TempDir(), "out")
	if _, err := archive.Extract(context.Background(), res.Path, out, archive.ExtractOptions{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"-wal", "-shm"} {
		if _, err := os.Lstat(filepath.Join(out, ".swarm/memory.db"+s)); !os.IsNotExist(err) {
			t.Errorf("memory.db%s is in the backup", s)
		}
	}
	restored := filepath.Join(out, ".swarm/memory.db")
	if err := (sqliteChecker{}).Check(context.Background(), restored); err != nil {
		t.Fatalf("integrity_check of the backed-up database: %v", err)
	}
	rdb, err := sql.Open("sqlite3", "file:"+restored+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	var maxN, count, last int64
	if err := rdb.QueryRow("SELECT max(n), count(*), (SELECT last FROM meta) FROM rows").Scan(&maxN, &count, &last); err != nil {
		t.Fatal(err)
	}
	t.Logf("last commit before create: %d; in the backup: %d; the writer committed %d times during create (%d ms), %d in all",
		before, maxN, during.Load(), res.DurationMS, lastCommitted.Load()-3000)
	if maxN < before {
		t.Errorf("the backup's last row is %d; %d was committed before create started", maxN, before)
	}
	if count != maxN || last != maxN {
		t.Errorf("not one consistent snapshot: %d rows, max n %d, meta.last %d", count, maxN, last)
	}
	if during.Load() == 0 {
		t.Errorf("the writer did not commit while create ran; the test proves nothing")
	}

	// verify --deep agrees, with the real integrity_check.
	v, err := backup.Verify(context.Background(), backup.Candidate{Path: res.Path, Name: filepath.Base(res.Path)},
		backup.VerifyOptions{Deep: true, DBChecker: sqliteChecker{}})
	if err != nil || !v.OK || len(v.CheckedDatabases) != 1 {
		t.Fatalf("verify --deep: %v %+v", err, v)
	}
}
