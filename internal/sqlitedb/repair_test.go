package sqlitedb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests below damage pages they located by walking the b-trees of the file
// themselves, so they know exactly which rows they destroyed.

// varint decodes an SQLite varint.
func varint(b []byte) (int64, int) {
	var v uint64
	for i := 0; i < 8; i++ {
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			return int64(v), i + 1
		}
	}
	return int64(v<<8 | uint64(b[8])), 9
}

type btreePage struct {
	no     int64
	leaf   bool
	rowids []int64 // for table leaves
}

// walkTree lists the pages of the b-tree rooted at root, leaves with their rowids.
func walkTree(t *testing.T, file []byte, pageSize int, root int64) []btreePage {
	t.Helper()
	var out []btreePage
	var walk func(no int64)
	walk = func(no int64) {
		page := file[(no-1)*int64(pageSize) : no*int64(pageSize)]
		h := 0
		if no == 1 {
			h = 100
		}
		typ := page[h]
		ncells := int(binary.BigEndian.Uint16(page[h+3:]))
		hdr := 8
		if typ == 0x02 || typ == 0x05 {
			hdr = 12
		}
		p := btreePage{no: no, leaf: typ == 0x0A || typ == 0x0D}
		for i := 0; i < ncells; i++ {
			off := int(binary.BigEndian.Uint16(page[h+hdr+2*i:]))
			switch typ {
			case 0x02, 0x05:
				walk(int64(binary.BigEndian.Uint32(page[off:])))
			case 0x0D:
				_, n := varint(page[off:])
				id, _ := varint(page[off+n:])
				p.rowids = append(p.rowids, id)
			}
		}
		if !p.leaf {
			walk(int64(binary.BigEndian.Uint32(page[h+8:])))
		}
		out = append(out, p)
	}
	walk(root)
	return out
}

func leaves(pages []btreePage) []btreePage {
	var out []btreePage
	for _, p := range pages {
		if p.leaf {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].no < out[j].no })
	return out
}

func rootOf(t *testing.T, path, name string) int64 {
	t.Helper()
	db, err := openReadOnly(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var root int64
	if err := db.QueryRow("SELECT rootpage FROM sqlite_schema WHERE name=?", name).Scan(&root); err != nil {
		t.Fatalf("root of %s: %v", name, err)
	}
	return root
}

func overwritePage(t *testing.T, path string, no int64, f func(page []byte)) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	page := make([]byte, 4096)
	if _, err := fh.ReadAt(page, (no-1)*4096); err != nil {
		t.Fatal(err)
	}
	f(page)
	if _, err := fh.WriteAt(page, (no-1)*4096); err != nil {
		t.Fatal(err)
	}
}

func garbage(page []byte) {
	for i := range page {
		page[i] = byte(i*7 + 13)
	}
}

// repairDB is makeBigDB plus a table with no index (so its row count cannot come from an
// index), in WAL mode like Claude Flow's memory.db, checkpointed.
func repairDB(t *testing.T, rows int) string {
	t.Helper()
	path := tempDB(t, "memory.db")
	makeBigDB(t, path, rows)
	db, err := openReadWrite(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"CREATE TABLE notes(id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT)",
		"INSERT INTO notes(body) SELECT printf('%0300d', id) FROM memory",
		"CREATE VIEW v AS SELECT key FROM memory",
		"PRAGMA user_version=7",
		"PRAGMA journal_mode=WAL",
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	db.Close()
	if exists(path + "-wal") {
		t.Fatal("the -wal was not checkpointed")
	}
	return path
}

func ids(t *testing.T, path, table string) map[int64]bool {
	t.Helper()
	db, err := openReadOnly(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.Query("SELECT rowid FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	out := map[int64]bool{}
	for rs.Next() {
		var id int64
		rs.Scan(&id)
		out[id] = true
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func fixedNow() time.Time { return time.Date(2025, 1, 4, 14, 0, 0, 0, time.Local) }

func TestRepairSalvageReportsExactlyWhatWasDestroyed(t *testing.T) {
	const n = 3000
	path := repairDB(t, n)
	file, _ := os.ReadFile(path)
	memLeaves := leaves(walkTree(t, file, 4096, rootOf(t, path, "memory")))
	noteLeaves := leaves(walkTree(t, file, 4096, rootOf(t, path, "notes")))
	destroyed := map[string]map[int64]bool{"memory": {}, "notes": {}}
	// Two leaves of memory (its row count still readable through its UNIQUE index) and
	// one of notes (no index: estimated from the rowid span).
	for _, p := range []btreePage{memLeaves[10], memLeaves[len(memLeaves)/2]} {
		for _, id := range p.rowids {
			destroyed["memory"][id] = true
		}
		overwritePage(t, path, p.no, garbage)
	}
	p := noteLeaves[len(noteLeaves)/3]
	for _, id := range p.rowids {
		destroyed["notes"][id] = true
	}
	overwritePage(t, path, p.no, garbage)
	before, _ := os.ReadFile(path)

	res, err := Repair(context.Background(), path, RepairOptions{Now: fixedNow})
	if err != nil {
		t.Fatalf("Repair: %v", err)
	}
	if res.Method != RepairSalvage || res.IndexOnly || res.Clean || res.Replaced || len(res.Problems) == 0 {
		t.Fatalf("result %+v", res)
	}
	want := map[string]struct {
		salvaged, lost int64
		est            string
	}{
		"memory": {n - int64(len(destroyed["memory"])), int64(len(destroyed["memory"])), EstCount},
		"notes":  {n - int64(len(destroyed["notes"])), int64(len(destroyed["notes"])), EstRowidSpan},
		"tags":   {n, 0, EstCount},
	}
	if len(res.Tables) != 3 {
		t.Fatalf("tables %+v", res.Tables)
	}
	for _, tb := range res.Tables {
		w := want[tb.Name]
		if tb.Salvaged != w.salvaged || tb.Lost != w.lost || tb.Estimate != w.est {
			t.Errorf("%s: salvaged %d lost %d by %s (method %s, %d reads), want %d, %d by %s",
				tb.Name, tb.Salvaged, tb.Lost, tb.Estimate, tb.Method, tb.Reads, w.salvaged, w.lost, w.est)
		}
		t.Logf("%s: %d salvaged, %d lost (%s), %s, %d reads", tb.Name, tb.Salvaged, tb.Lost, tb.Estimate, tb.Method, tb.Reads)
	}
	if res.RowsLost != int64(len(destroyed["memory"])+len(destroyed["notes"])) || res.RowsSalvaged != 3*n-res.RowsLost {
		t.Errorf("totals: %d salvaged, %d lost", res.RowsSalvaged, res.RowsLost)
	}
	// The original is untouched; the salvage is kept beside it and holds exactly the rows
	// that were not destroyed.
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the original changed")
	}
	if want := filepath.Join(filepath.Dir(path), "memory-salvaged-20250104-140000.db"); res.SalvagedFile != want {
		t.Fatalf("salvaged file %q, want %q", res.SalvagedFile, want)
	}
	for table, gone := range destroyed {
		got := ids(t, res.SalvagedFile, table)
		for id := int64(1); id <= n; id++ {
			if got[id] == gone[id] {
				t.Fatalf("%s rowid %d: salvaged %v, destroyed %v", table, id, got[id], gone[id])
			}
		}
	}
	if out := sqlite3CLI(t, res.SalvagedFile, "PRAGMA integrity_check; PRAGMA user_version; PRAGMA journal_mode; SELECT count(*) FROM v; SELECT seq FROM sqlite_sequence"); out != "ok\n7\nwal\n"+strconv.FormatInt(want["memory"].salvaged, 10)+"\n3000" {
		t.Errorf("sqlite3 on the salvage: %q", out)
	}
}

func TestRepairIndexContentIsReindexed(t *testing.T) {
	path := repairDB(t, 3000)
	file, _ := os.ReadFile(path)
	idx := leaves(walkTree(t, file, 4096, rootOf(t, path, "sqlite_autoindex_memory_1")))
	// Keys change inside the cells; the page stays a well-formed b-tree page.
	overwritePage(t, path, idx[2].no, func(page []byte) {
		copy(page, bytes.ReplaceAll(page, []byte("k0"), []byte("x0")))
	})
	chk, _ := Check(context.Background(), path, CheckOptions{})
	if chk.OK {
		t.Fatal("the damage was not seen by integrity_check")
	}
	t.Logf("problems: %s", strings.Join(firstProblems(chk.Problems, 3), " | "))
	before, _ := os.ReadFile(path)

	res, err := Repair(context.Background(), path, RepairOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IndexOnly || res.Method != RepairReindex || !res.Clean || !res.Replaced || res.RowsLost != 0 || res.RowsSalvaged != 9000 {
		t.Fatalf("result %+v", res)
	}
	assertReplaced(t, path, res, before)
}

func TestRepairBrokenIndexPageIsRebuilt(t *testing.T) {
	path := repairDB(t, 3000)
	file, _ := os.ReadFile(path)
	idx := leaves(walkTree(t, file, 4096, rootOf(t, path, "tags_tag")))
	overwritePage(t, path, idx[1].no, garbage)
	before, _ := os.ReadFile(path)
	res, err := Repair(context.Background(), path, RepairOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	// REINDEX cannot free the pages of a tree it cannot read: the tables are copied into
	// a new file instead, where every index is built fresh.
	if !res.IndexOnly || res.Method != RepairRebuild || !res.Clean || !res.Replaced || res.RowsLost != 0 || res.RowsSalvaged != 9000 {
		t.Fatalf("result %+v", res)
	}
	assertReplaced(t, path, res, before)
}

func assertReplaced(t *testing.T, path string, res RepairResult, before []byte) {
	t.Helper()
	if want := filepath.Join(filepath.Dir(path), "memory-corrupt-20250104-140000.db"); res.CorruptCopy != want {
		t.Fatalf("corrupt copy %q, want %q", res.CorruptCopy, want)
	}
	if kept, _ := os.ReadFile(res.CorruptCopy); !bytes.Equal(kept, before) {
		t.Fatal("the kept original differs from the original")
	}
	if out := sqlite3CLI(t, path, "PRAGMA integrity_check; PRAGMA journal_mode; PRAGMA user_version; SELECT count(*) FROM memory; SELECT count(*) FROM tags WHERE tag='tag3'"); out != "ok\nwal\n7\n3000\n300" {
		t.Fatalf("sqlite3 on the repaired database: %q", out)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp")); len(m) != 0 {
		t.Fatalf("temp files left: %v", m)
	}
}

func TestRepairRefusesWhileOpenAndKeepsNothingEmpty(t *testing.T) {
	path := repairDB(t, 100)
	w := openWriter(t, path, true)
	if _, err := Repair(context.Background(), path, RepairOptions{}); !errors.Is(err, ErrInUse) {
		t.Fatalf("repair of an open database: %v", err)
	}
	w.Close()

	empty := tempDB(t, "config.db")
	os.WriteFile(empty, nil, 0o600)
	res, err := Repair(context.Background(), empty, RepairOptions{})
	if err != nil || res.Clean || res.Replaced || res.SalvagedFile != "" || !res.LostUnknown {
		t.Fatalf("empty file: %+v %v", res, err)
	}
	// Every table page of a small database destroyed: nothing salvaged, nothing written.
	file, _ := os.ReadFile(path)
	for _, name := range []string{"memory", "notes", "tags"} {
		for _, p := range leaves(walkTree(t, file, 4096, rootOf(t, path, name))) {
			overwritePage(t, path, p.no, garbage)
		}
	}
	res, err = Repair(context.Background(), path, RepairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Clean || res.Replaced || res.SalvagedFile != "" || res.RowsSalvaged != 0 || res.RowsLost == 0 {
		t.Fatalf("all pages destroyed: %+v", res)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*")); len(m) != 3 { // the db, and the -wal and -shm the test's reads made
		t.Fatalf("files: %v", m)
	}
}
