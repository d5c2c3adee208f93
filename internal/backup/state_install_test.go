package backup

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/settings"
)

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Two installs share one state file (the same state_dir) and each has a backup of the same
// name: a bad mark made for one must not skip the other's.
func TestStateMarkOfOneInstallDoesNotSkipAnothersSameName(t *testing.T) {
	base := t.TempDir()
	path := filepath.Join(base, "state", "backups.json")
	const name = "backup-20250104-140000.tar.gz"
	a := Store{Path: path, CreateDir: true, Install: "/srv/a", BackupDir: filepath.Join(base, "a")}
	b := Store{Path: path, CreateDir: true, Install: "/srv/b", BackupDir: filepath.Join(base, "b")}
	touch(t, filepath.Join(a.BackupDir, name))
	touch(t, filepath.Join(b.BackupDir, name))
	if err := a.Update(context.Background(), func(s *State) error {
		s.SetMark(name, Mark{Value: MarkBad, By: "manual", Time: time.Now()})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Update(context.Background(), func(s *State) error {
		s.SetVerify(name, VerifyRecord{OK: true, Time: time.Now()})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sa, err := a.Load()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Load()
	if err != nil {
		t.Fatal(err)
	}
	if m := sa.Get(name).Mark; m == nil || m.Value != MarkBad {
		t.Fatalf("install a lost its mark: %+v", sa.Get(name))
	}
	if sa.Get(name).Verify != nil {
		t.Fatalf("install a sees b's verify result: %+v", sa.Get(name).Verify)
	}
	if m := sb.Get(name).Mark; m != nil {
		t.Fatalf("install b sees a's mark: %+v", m)
	}
	if v := sb.Get(name).Verify; v == nil || !v.OK {
		t.Fatalf("install b lost its verify result: %+v", sb.Get(name))
	}
	cands := []Candidate{{Name: name, Path: filepath.Join(b.BackupDir, name), Time: time.Now()}}
	if c, _, err := Choose(cands, sb, Choice{To: "latest"}); err != nil || c.Name != name {
		t.Fatalf("install b's backup was skipped for a's mark: %v", err)
	}
	if _, _, err := Choose([]Candidate{{Name: name, Path: filepath.Join(a.BackupDir, name), Time: time.Now()}}, sa, Choice{To: "latest"}); err == nil {
		t.Fatal("install a's bad backup was chosen")
	}
	// the same backup dir shared by two installs: still apart
	c := Store{Path: path, Install: "/srv/c", BackupDir: a.BackupDir}
	sc, err := c.Load()
	if err != nil {
		t.Fatal(err)
	}
	if m := sc.Get(name).Mark; m != nil {
		t.Fatalf("install c (same backup dir as a) sees a's mark: %+v", m)
	}
	// on disk: version 2, by install, by path
	var raw struct {
		Version  int `json:"version"`
		Installs map[string]struct {
			Backups map[string]json.RawMessage `json:"backups"`
		} `json:"installs"`
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Version != StateVersion || len(raw.Installs) != 2 ||
		raw.Installs["/srv/a"].Backups[filepath.Join(a.BackupDir, name)] == nil ||
		raw.Installs["/srv/b"].Backups[filepath.Join(b.BackupDir, name)] == nil {
		t.Fatalf("state file:\n%s", data)
	}
	// prune forgets only its own install's entry
	if err := a.Update(context.Background(), func(s *State) error { s.Forget(name); return nil }); err != nil {
		t.Fatal(err)
	}
	if sa, _ = a.Load(); sa.Get(name).Mark != nil {
		t.Fatal("forget kept a's entry")
	}
	if sb, _ = b.Load(); sb.Get(name).Verify == nil {
		t.Fatal("forget in a dropped b's entry")
	}
}

// A version 1 file (one map by file name) is read and migrated on the next write: a mark of
// name N moves to the backup named N in the current backup.dir; marks of names not there stay
// for the install they belong to, and nothing is lost.
func TestStateMigratesVersion1(t *testing.T) {
	base := t.TempDir()
	path := filepath.Join(base, "state", "backups.json")
	touch(t, path)
	v1 := `{"version":1,"backups":{
 "backup-20250101-000000.tar.gz":{"mark":{"value":"bad","time":"2025-01-02T00:00:00Z","by":"manual","reason":"broke prod"}},
 "backup-20250102-000000.tar.gz":{"verify":{"ok":true,"time":"2025-01-02T00:00:00Z","deep":false}},
 "backup-20250103-000000.tar.gz":{"mark":{"value":"good","time":"2025-01-03T00:00:00Z","by":"emergency","run_id":"r1"}}}}`
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	a := Store{Path: path, Install: "/srv/a", BackupDir: filepath.Join(base, "a")}
	b := Store{Path: path, Install: "/srv/b", BackupDir: filepath.Join(base, "b")}
	touch(t, filepath.Join(a.BackupDir, "backup-20250101-000000.tar.gz"))
	touch(t, filepath.Join(a.BackupDir, "backup-20250102-000000.tar.gz"))
	touch(t, filepath.Join(b.BackupDir, "backup-20250103-000000.tar.gz"))

	// read before any write: the marks apply already
	s, err := a.Load()
	if err != nil {
		t.Fatal(err)
	}
	if m := s.Get("backup-20250101-000000.tar.gz").Mark; m == nil || m.Value != MarkBad || m.Reason != "broke prod" {
		t.Fatalf("v1 mark not read: %+v", m)
	}
	if s.Get("backup-20250103-000000.tar.gz").Mark != nil {
		t.Fatal("a mark of a name not in a's backup dir applies to a")
	}
	// a's write migrates a's entries and keeps b's
	if err := a.Update(context.Background(), func(s *State) error {
		s.SetVerify("backup-20250101-000000.tar.gz", VerifyRecord{OK: false, Time: time.Now(), Error: "x"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `"version": 2`) || !strings.Contains(string(data), filepath.Join(a.BackupDir, "backup-20250102-000000.tar.gz")) {
		t.Fatalf("not migrated:\n%s", data)
	}
	s, _ = a.Load()
	if m := s.Get("backup-20250101-000000.tar.gz").Mark; m == nil || m.Value != MarkBad {
		t.Fatalf("migration lost a's bad mark:\n%s", data)
	}
	if v := s.Get("backup-20250102-000000.tar.gz").Verify; v == nil || !v.OK {
		t.Fatalf("migration lost a's verify result:\n%s", data)
	}
	// b's mark is still there, then moves to b on b's load
	sb, err := b.Load()
	if err != nil {
		t.Fatal(err)
	}
	if m := sb.Get("backup-20250103-000000.tar.gz").Mark; m == nil || m.Value != MarkGood || m.RunID != "r1" {
		t.Fatalf("b's v1 mark lost after a migrated:\n%s", data)
	}
	if sb.Get("backup-20250101-000000.tar.gz").Mark != nil {
		t.Fatal("b sees a's migrated mark")
	}
	if err := b.Update(context.Background(), func(*State) error { return nil }); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if _, left := raw["backups"]; left {
		t.Fatalf("v1 entries left after both installs migrated:\n%s", data)
	}
}

// A file newer than this cfrollback is not rewritten in a format that would lose its fields.
func TestStateRefusesNewerVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backups.json")
	if err := os.WriteFile(path, []byte(`{"version":3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	st := Store{Path: path, Install: "/srv/a", BackupDir: "/srv/b"}
	if _, err := st.Load(); err == nil || !strings.Contains(err.Error(), "version 3") {
		t.Fatalf("err = %v", err)
	}
	if err := st.Update(context.Background(), func(*State) error { return nil }); err == nil {
		t.Fatal("a newer file was rewritten")
	}
}

// backup.state defaults to <state_dir>/backups.json: changing state_dir moves it; an
// explicit backup.state is kept.
func TestStateDefaultFollowsStateDir(t *testing.T) {
	c := settings.Defaults()
	c.InstallDir, c.Backup.Dir = "/srv/app", "/srv/backups"
	c.StateDir = "/srv/state-a"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Backup.State != "/srv/state-a/backups.json" {
		t.Fatalf("backup.state = %q", c.Backup.State)
	}
	c = settings.Defaults()
	if err := c.Validate(); err != nil || c.Backup.State != "/var/lib/cfrollback/backups.json" {
		t.Fatalf("default backup.state = %q (%v)", c.Backup.State, err)
	}
	c = settings.Defaults()
	c.StateDir, c.Backup.State = "/srv/state-a", "/srv/elsewhere/marks.json"
	if err := c.Validate(); err != nil || c.Backup.State != "/srv/elsewhere/marks.json" {
		t.Fatalf("explicit backup.state = %q (%v)", c.Backup.State, err)
	}
}
