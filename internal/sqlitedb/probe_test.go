package sqlitedb

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func probeSummary(ops []ProbeOp) string {
	var s []string
	for _, o := range ops {
		v := "ok"
		switch {
		case o.Skipped:
			v = "skipped"
		case !o.OK:
			v = "fail"
		}
		s = append(s, o.Op+"="+v)
	}
	return strings.Join(s, " ")
}

// corruptIndex makes index tags_tag (on tags(tag)) claim to be on tags(memory_id): its
// b-tree stays well-formed, so quick_check passes, but none of its entries match the
// rows, as when an index lost or kept stale entries. A lookup through it finds nothing.
func corruptIndex(t testing.TB, path string) {
	t.Helper()
	execSQL(t, path, "PRAGMA writable_schema=ON",
		"UPDATE sqlite_schema SET sql='CREATE INDEX tags_tag ON tags(memory_id)' WHERE name='tags_tag'",
		"PRAGMA writable_schema=OFF")
}

// execSQL runs stmts, in order, on one read-write connection to path.
func execSQL(t testing.TB, path string, stmts ...string) {
	t.Helper()
	db, err := openReadWrite(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestProbeSoundDatabase(t *testing.T) {
	path := tempDB(t, "memory.db")
	makeBigDB(t, path, 500)
	ops, err := Probe(context.Background(), path, []string{"read", "write", "delete"}, time.Second)
	if err != nil || probeSummary(ops) != "integrity=ok read=ok write=ok delete=ok" {
		t.Fatalf("%s: %+v %v", probeSummary(ops), ops, err)
	}
	if ops[0].Detail != "integrity_check ok" {
		t.Errorf("integrity detail %q", ops[0].Detail)
	}
	if n := countRows(t, path); n != 500 {
		t.Errorf("rows after the probe: %d, want 500", n)
	}
	if _, err := Probe(context.Background(), path, []string{"frobnicate"}, time.Second); err == nil {
		t.Errorf("unknown operation accepted")
	}
}

// A database that 'database check' calls corrupt fails the probe, whether a table's
// pages or an index are damaged; the rolled-back read/write probe alone passed both.
func TestProbeCorruptDatabase(t *testing.T) {
	cases := map[string]struct {
		corrupt   func(testing.TB, string)
		quickSees bool
		want      string
	}{
		"table pages": {corruptPages, true, "integrity_check: CORRUPT"},
		"index":       {corruptIndex, false, "missing from index tags_tag"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := tempDB(t, "memory.db")
			makeBigDB(t, path, 3000)
			c.corrupt(t, path)
			full, err := Check(context.Background(), path, CheckOptions{})
			if err != nil || full.OK {
				t.Fatalf("database check calls it sound: %+v %v", full, err)
			}
			quick, err := Check(context.Background(), path, CheckOptions{Quick: true})
			if err != nil || quick.OK == c.quickSees {
				t.Errorf("quick_check ok=%v, want %v: %v", quick.OK, !c.quickSees, err)
			}
			// What the memory test did before it checked integrity.
			old, err := probeOps(context.Background(), path, []string{"read", "write", "delete"}, time.Second)
			t.Logf("read/write/delete alone: %s (%v)", probeSummary(old), err)

			ops, err := Probe(context.Background(), path, []string{"read", "write", "delete"}, time.Second)
			if err != nil || probeSummary(ops) != "integrity=fail read=skipped write=skipped delete=skipped" {
				t.Fatalf("%s: %+v %v", probeSummary(ops), ops, err)
			}
			if !strings.Contains(ops[0].Detail, c.want) {
				t.Errorf("integrity detail %q, want %q", ops[0].Detail, c.want)
			}
			t.Logf("%s", ops[0].Detail)
		})
	}
}

// BenchmarkProbeIntegrity measures the integrity operation of Probe on a 50 MB memory
// database shaped like Claude Flow's (see probeFullCheckMax):
//
//	go test -run '^$' -bench ProbeIntegrity -benchtime 5x ./internal/sqlitedb/
func BenchmarkProbeIntegrity(b *testing.B) {
	path := tempDB(b, "memory.db")
	execSQL(b, path,
		"PRAGMA journal_mode=WAL",
		"CREATE TABLE memory_entries(id INTEGER PRIMARY KEY, key TEXT NOT NULL, value TEXT NOT NULL, namespace TEXT, timestamp INTEGER)",
		"CREATE INDEX idx_namespace ON memory_entries(namespace)",
		"CREATE INDEX idx_timestamp ON memory_entries(timestamp)",
		"CREATE INDEX idx_key ON memory_entries(key)",
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<180000) INSERT INTO memory_entries(key, value, namespace, timestamp) SELECT 'key-'||x, printf('%0200d', x*7919), 'ns'||(x%20), 1700000000+x FROM c")
	for _, quick := range []bool{false, true} {
		b.Run(fmt.Sprintf("quick=%v", quick), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				res, err := Check(context.Background(), path, CheckOptions{Quick: quick, MaxErrors: probeMaxProblems})
				if err != nil || !res.OK {
					b.Fatalf("%+v %v", res, err)
				}
				b.ReportMetric(float64(res.SizeBytes)/(1<<20), "MB")
			}
		})
	}
}
