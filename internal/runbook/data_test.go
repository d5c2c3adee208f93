package runbook

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/sqlitedb"
)

// makeDB writes a WAL database like Claude Flow's memory.db holding rows and returns its
// bytes. With walLeft, the rows stay in a -wal beside it, as a killed service leaves them.
func makeDB(t *testing.T, path string, walLeft bool, rows ...string) (db, wal []byte) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "m.db")
	h, err := sql.Open("sqlite3", "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	h.SetMaxOpenConns(1)
	stmts := []string{"PRAGMA journal_mode=WAL", "PRAGMA wal_autocheckpoint=0", "CREATE TABLE memory(id INTEGER PRIMARY KEY, v TEXT)"}
	if !walLeft {
		stmts = append(stmts, "PRAGMA wal_checkpoint(TRUNCATE)")
	}
	for _, s := range stmts {
		if _, err := h.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range rows {
		if _, err := h.Exec("INSERT INTO memory(v) VALUES(?)", r); err != nil {
			t.Fatal(err)
		}
	}
	if !walLeft {
		h.Close()
	}
	db, _ = os.ReadFile(p)
	wal, _ = os.ReadFile(p + "-wal")
	h.Close()
	if path != "" {
		write(t, filepath.Dir(path), map[string]string{filepath.Base(path): string(db)})
		if len(wal) > 0 {
			write(t, filepath.Dir(path), map[string]string{filepath.Base(path) + "-wal": string(wal)})
		}
	}
	return db, wal
}

// sameDBFiles fails the test (t.Error, naming the file and what) when path and path-wal do not
// hold db and wal byte for byte.
func sameDBFiles(t *testing.T, path string, db, wal []byte, what string) {
	t.Helper()
	for _, f := range []struct {
		path string
		want []byte
	}{{path, db}, {path + "-wal", wal}} {
		if b, _ := os.ReadFile(f.path); !bytes.Equal(b, f.want) {
			t.Errorf("%s %s", filepath.Base(f.path), what)
		}
	}
}

func dbRows(t *testing.T, path string) string {
	t.Helper()
	h, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rs, err := h.Query("SELECT v FROM memory ORDER BY id")
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var v string
		rs.Scan(&v)
		out = append(out, v)
	}
	return strings.Join(out, ",")
}

func TestEmergencyReplacesACorruptLiveDatabase(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	live := filepath.Join(e.cfg.InstallDir, ".swarm", "memory.db")
	makeDB(t, live, false, "a", "b")
	// pages overwritten: the live database is corrupt
	f, _ := os.OpenFile(live, os.O_RDWR, 0)
	f.WriteAt(bytes.Repeat([]byte("garbage!"), 512), 4096)
	f.Close()
	corrupt, _ := os.ReadFile(live)
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	// DB backups: an older good one, and a newer one that is not a database
	if err := os.MkdirAll(e.cfg.Database.BackupDir, 0o700); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(e.cfg.Database.BackupDir, "memory-backup-20250101-120000.db")
	makeDB(t, good, false, "from db backup")
	write(t, e.cfg.Database.BackupDir, map[string]string{"memory-backup-20250102-120000.db": "not a database"})

	res, err := e.run(false)
	if err != nil {
		t.Fatalf("emergency: %v", err)
	}
	if got := dbRows(t, live); got != "from db backup" {
		t.Fatalf("install's memory.db holds %q, want the DB backup's rows", got)
	}
	if len(res.DataChecks) != 1 {
		t.Fatalf("data checks %+v", res.DataChecks)
	}
	dc := res.DataChecks[0]
	if dc.Status != "replaced" || dc.DBBackup != good || dc.Source != "live" || len(dc.Problems) == 0 || len(dc.Skipped) != 1 {
		t.Fatalf("data check %+v", dc)
	}
	if !strings.HasPrefix(dc.KeptCorrupt, filepath.Join(e.cfg.InstallDir, ".swarm", "memory-failed-")) {
		t.Fatalf("kept corrupt copy at %q", dc.KeptCorrupt)
	}
	if _, err := os.Stat(dc.KeptCorrupt); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(res.FailedDir, ".swarm", "memory.db")); !bytes.Equal(b, corrupt) {
		t.Fatal("the failed install does not hold the corrupt database as it was")
	}
	if !strings.Contains(strings.Join(res.Next, "\n"), "memory was corrupt and replaced by "+good) {
		t.Fatalf("next steps do not say so: %v", res.Next)
	}
	if chk, err := sqlitedb.Check(context.Background(), live, sqlitedb.CheckOptions{}); err != nil || !chk.OK || chk.JournalMode != "wal" {
		t.Fatalf("restored database: %+v %v", chk, err)
	}
}

func TestEmergencyWithDataTakesTheBackupsDatabase(t *testing.T) {
	e := newEnv(t)
	bdb, _ := makeDB(t, "", false, "from the tar backup")
	e.backup("20250101-000000", map[string]string{"app.txt": "v1", ".swarm/memory.db": string(bdb), ".swarm/other.json": "backup"})
	live := filepath.Join(e.cfg.InstallDir, ".swarm", "memory.db")
	liveDB, liveWAL := makeDB(t, live, true, "live 1", "live 2")
	if len(liveWAL) == 0 {
		t.Fatal("the live database has no -wal")
	}
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2", ".swarm/other.json": "live"})

	// the dry run says so and changes nothing
	before := snapshot(t, filepath.Dir(e.cfg.InstallDir))
	res, err := Emergency(context.Background(), Options{Config: e.cfg, DryRun: true, WithData: true}, Deps{Service: e.m})
	if err != nil {
		t.Fatal(err)
	}
	if plan := strings.Join(res.Plan, "\n"); !strings.Contains(plan, "--with-data: the backup's own .swarm/memory.db instead of the live ones") ||
		!strings.Contains(plan, "check_data: would quick_check .swarm/memory.db") {
		t.Fatalf("plan:\n%s", plan)
	}
	if after := snapshot(t, filepath.Dir(e.cfg.InstallDir)); after != before {
		t.Fatalf("dry run changed the tree:\n%s\n%s", before, after)
	}

	res, err = Emergency(context.Background(), Options{Config: e.cfg, WithData: true}, Deps{Service: e.m})
	if err != nil {
		t.Fatal(err)
	}
	// no -wal or -shm next to it: not the live ones, and none made by the check (a
	// root-owned -shm would keep a non-root service from writing)
	for _, s := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(live + s); err == nil {
			t.Errorf("a %s is next to the backup's database", s)
		}
	}
	if got := dbRows(t, live); got != "from the tar backup" {
		t.Fatalf("install's memory.db holds %q, want the backup's", got)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.InstallDir, ".cfrollback-with-data")); !os.IsNotExist(err) {
		t.Errorf("the aside dir is left in the install: %v", err)
	}
	// the rest of .swarm is still carried over; the live database is in the failed install
	if got := read(t, filepath.Join(e.cfg.InstallDir, ".swarm/other.json")); got != "live" {
		t.Errorf("other.json = %q", got)
	}
	kept := filepath.Join(res.FailedDir, ".swarm", "memory.db")
	sameDBFiles(t, kept, liveDB, liveWAL, "changed in the failed install")
	if got := dbRows(t, kept); got != "live 1,live 2" {
		t.Errorf("failed install's database holds %q", got)
	}
	if len(res.DataChecks) != 1 || res.DataChecks[0].Source != "backup" || res.DataChecks[0].Status != "ok" {
		t.Fatalf("data checks %+v", res.DataChecks)
	}
}

func TestEmergencyCarriesAHealthyDatabaseUntouched(t *testing.T) {
	e := newEnv(t)
	bdb, _ := makeDB(t, "", false, "old")
	e.backup("20250101-000000", map[string]string{"app.txt": "v1", ".swarm/memory.db": string(bdb)})
	live := filepath.Join(e.cfg.InstallDir, ".swarm", "memory.db")
	liveDB, liveWAL := makeDB(t, live, true, "live 1", "live 2", "live 3")
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	res, err := e.run(false)
	if err != nil {
		t.Fatal(err)
	}
	sameDBFiles(t, live, liveDB, liveWAL, "was not carried over byte for byte")
	// A -shm may stay next to the carried-over -wal (SQLite rebuilds it on open); removing
	// it would need SQLite's own close, which would checkpoint the -wal into memory.db.
	if got := dbRows(t, live); got != "live 1,live 2,live 3" {
		t.Errorf("rows %q", got)
	}
	if len(res.DataChecks) != 1 || res.DataChecks[0].Status != "ok" || res.DataChecks[0].Source != "live" {
		t.Fatalf("data checks %+v", res.DataChecks)
	}
	if m, _ := filepath.Glob(filepath.Join(e.cfg.InstallDir, ".swarm", "memory-*")); len(m) != 0 {
		t.Errorf("extra files: %v", m)
	}
	t.Logf("check_data: %s", fmt.Sprint(res.DataChecks[0].Detail))
}
