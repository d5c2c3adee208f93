package runbook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/health"
)

func newMarksEnv(t *testing.T) (*env, backup.Store) {
	e := newEnv(t)
	e.cfg.Backup.State = filepath.Join(filepath.Dir(e.cfg.Backup.Dir), "state", "backups.json")
	if err := os.MkdirAll(filepath.Dir(e.cfg.Backup.State), 0o700); err != nil {
		t.Fatal(err)
	}
	return e, backup.Store{Path: e.cfg.Backup.State}
}

func mark(t *testing.T, st backup.Store, name, value, by string) {
	t.Helper()
	if err := st.Update(context.Background(), func(s *backup.State) error {
		s.SetMark(name, backup.Mark{Value: value, By: by, Time: time.Now(), Reason: "test"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func markOf(t *testing.T, st backup.Store, name string) *backup.Mark {
	t.Helper()
	s, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	return s.Get(name).Mark
}

func TestEmergencySkipsBackupMarkedBadAndMarksUsedOneGood(t *testing.T) {
	e, st := newMarksEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	e.backup("20250102-000000", map[string]string{"app.txt": "v1.1 bad"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	mark(t, st, "backup-20250102-000000.tar.gz", backup.MarkBad, "manual")

	res, err := e.run(false)
	if err != nil {
		t.Fatalf("emergency: %v", err)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1" {
		t.Fatalf("restored %q, want the older backup not marked bad", got)
	}
	if len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "marked bad") {
		t.Fatalf("skipped %+v, want the bad one listed", res.Skipped)
	}
	m := markOf(t, st, "backup-20250101-000000.tar.gz")
	if m == nil || m.Value != backup.MarkGood || m.RunID != res.RunID || m.By != "emergency" {
		t.Fatalf("mark of the used backup = %+v, want good by run %s", m, res.RunID)
	}
}

func TestEmergencyUnhealthyMarksBackupBadAndNextRunSkipsIt(t *testing.T) {
	e, st := newMarksEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	e.backup("20250102-000000", map[string]string{"app.txt": "v1.1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	never := health.FuncProbe{Name: "app", F: func(context.Context) health.Result {
		return health.Result{OK: false, Detail: "HTTP 500"}
	}}
	e.cfg.Health.WaitTimeout = 200 * time.Millisecond
	res, err := Emergency(context.Background(), Options{Config: e.cfg}, Deps{Service: e.m, Probes: []health.Prober{never}})
	if !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("err = %v, want ErrUnhealthy", err)
	}
	m := markOf(t, st, "backup-20250102-000000.tar.gz")
	if m == nil || m.Value != backup.MarkBad || m.RunID != res.RunID {
		t.Fatalf("mark = %+v, want bad by run %s", m, res.RunID)
	}
	// The next emergency takes the older backup and marks it good; the bad
	// mark of the newer one stays (no flip-flop).
	res2, err := e.run(false)
	if err != nil {
		t.Fatalf("second emergency: %v", err)
	}
	if res2.Backup == nil || res2.Backup.Name != "backup-20250101-000000.tar.gz" {
		t.Fatalf("second run used %+v", res2.Backup)
	}
	if m := markOf(t, st, "backup-20250102-000000.tar.gz"); m == nil || m.Value != backup.MarkBad {
		t.Fatalf("bad mark flipped: %+v", m)
	}
	// Asked for by name, a bad backup is used (with a warning), and a
	// healthy outcome does not clear a bad mark.
	res3, err := Emergency(context.Background(), Options{Config: e.cfg, BackupPath: "backup-20250102-000000.tar.gz"}, Deps{Service: e.m})
	if err != nil || res3.Backup.Name != "backup-20250102-000000.tar.gz" {
		t.Fatalf("explicit bad backup: %v %+v", err, res3.Backup)
	}
	if m := markOf(t, st, "backup-20250102-000000.tar.gz"); m == nil || m.Value != backup.MarkBad {
		t.Fatalf("a healthy run cleared a bad mark: %+v", m)
	}
}

func TestEmergencyAllBadIsPreflightFailure(t *testing.T) {
	e, st := newMarksEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	mark(t, st, "backup-20250101-000000.tar.gz", backup.MarkBad, "manual")
	_, err := e.run(false)
	if !errors.Is(err, ErrPreflight) || !strings.Contains(err.Error(), "marked bad") {
		t.Fatalf("err = %v, want preflight failure naming the marks", err)
	}
	if len(e.m.calls) != 0 {
		t.Fatalf("service touched: %v", e.m.calls)
	}
}

func TestEmergencyUnreadableStateIsOnlyAWarning(t *testing.T) {
	e, _ := newMarksEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2"})
	if err := os.WriteFile(e.cfg.Backup.State, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	res, err := Emergency(context.Background(), Options{Config: e.cfg}, Deps{Service: e.m, Events: func(ev Event) {
		if ev.Kind == "warn" {
			warnings = append(warnings, ev.Message)
		}
	}})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("emergency with a damaged state file: %v %+v", err, res)
	}
	if len(warnings) == 0 || !strings.Contains(strings.Join(warnings, "\n"), "damaged") {
		t.Fatalf("warnings %v, want the damaged state named", warnings)
	}
	// and a state path that cannot be written (its "dir" is a file): still
	// ok, a warning that the mark is lost
	notADir := filepath.Join(t.TempDir(), "file")
	write(t, filepath.Dir(notADir), map[string]string{"file": "x"})
	e.cfg.Backup.State = filepath.Join(notADir, "backups.json")
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v3"})
	warnings = nil
	if _, err := Emergency(context.Background(), Options{Config: e.cfg}, Deps{Service: e.m, Events: func(ev Event) {
		if ev.Kind == "warn" {
			warnings = append(warnings, ev.Message)
		}
	}}); err != nil {
		t.Fatalf("emergency with an unwritable state path: %v", err)
	}
	if !strings.Contains(strings.Join(warnings, "\n"), "could not mark") {
		t.Fatalf("warnings %v, want the unrecorded mark named", warnings)
	}
}
