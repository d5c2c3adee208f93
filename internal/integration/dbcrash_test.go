package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// TestCrashInsideCheckDataRestore: the running (broken) install's memory.db is corrupt,
// so the emergency's check_data step replaces it in staging with the newest good DB
// backup; cfrollback is SIGKILLed inside that restore, just before its rename. The rerun
// must end healthy with the DB backup's rows in the install, the corrupt database kept byte
// for byte in the failed install, and no staging left.
func TestCrashInsideCheckDataRestore(t *testing.T) {
	sqlite := testenv.RequireTool(t, "sqlite3")
	s := newSandbox(t)
	s.goodBackupBrokenInstall()
	live := filepath.Join(s.Install, ".swarm", "memory.db")
	mustDo(t, os.MkdirAll(filepath.Dir(live), 0o755))
	sql := func(db, q string) string {
		t.Helper()
		out, err := exec.Command(sqlite, db, q).CombinedOutput()
		if err != nil {
			t.Fatalf("sqlite3 %s: %v\n%s", db, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	sql(live, "CREATE TABLE memory(id INTEGER PRIMARY KEY, v TEXT); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<3000) INSERT INTO memory(v) SELECT printf('%0200d', x) FROM c;")
	f, err := os.OpenFile(live, os.O_RDWR, 0)
	mustDo(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte("garbage!"), 2048), 20*4096)
	mustDo(t, err)
	mustDo(t, f.Close())
	corrupt, err := os.ReadFile(live)
	mustDo(t, err)
	dbBackups := filepath.Join(s.Dir, "dbbackups")
	mustDo(t, os.MkdirAll(dbBackups, 0o700))
	sql(filepath.Join(dbBackups, "memory-backup-20250104-120000.db"), "CREATE TABLE memory(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO memory(v) VALUES('from the db backup');")

	env, url := commandService(t, s)
	startBroken(t, s, env, url)
	killed := s.run(append([]string{"CFROLLBACK_TEST_KILL_AT=dbrestore:before-rename"}, env...), "emergency", "--json")
	if killed.Code != -1 {
		t.Fatalf("emergency with a kill inside check_data's restore: exit %d, want killed\n%s\n%s", killed.Code, killed.Stdout, killed.Stderr)
	}
	if len(glob(t, s.Install+".staging-*")) != 1 {
		t.Fatal("no staging dir after the kill: it was not inside check_data")
	}
	if b, _ := os.ReadFile(live); !bytes.Equal(b, corrupt) {
		t.Fatal("the live install's database changed before the swap")
	}

	r := s.run(env, "emergency", "--json")
	s.assertRolledBack(r, url)
	if got := sql(live, "SELECT v FROM memory"); got != "from the db backup" {
		t.Fatalf("the install's memory.db holds %q, want the DB backup's row", got)
	}
	failed, _ := r.JSON["failed_dir"].(string)
	if b, _ := os.ReadFile(filepath.Join(failed, ".swarm", "memory.db")); !bytes.Equal(b, corrupt) {
		t.Fatal("the failed install does not hold the corrupt database byte for byte")
	}
	if m := glob(t, filepath.Join(s.Install, ".swarm", ".memory.db.*.tmp")); len(m) != 0 {
		t.Errorf("temp files left in the install: %v", m)
	}
}
