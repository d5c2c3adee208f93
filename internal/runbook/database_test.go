package runbook

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// dbEnv is newEnv with a live memory.db ("live") and one database backup ("backup").
func dbEnv(t *testing.T) (*env, string, string) {
	e := newEnv(t)
	live := e.cfg.DatabasePath(e.cfg.Databases[0])
	makeDB(t, live, false, "live")
	bk := filepath.Join(e.cfg.Database.BackupDir, "memory-backup-20250101-000000.db")
	makeDB(t, bk, false, "backup")
	return e, live, bk
}

func (e *env) dbDeps() DBDeps {
	return DBDeps{NewService: func(context.Context) (service.Manager, error) { return e.m, nil }, Probes: nil}
}

func (e *env) restoreOpts(stop bool) DBRestoreOptions {
	return DBRestoreOptions{Config: e.cfg, DB: e.cfg.Databases[0], Latest: true, StopService: stop, Args: []string{"database", "restore"}}
}

func fileHash(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

func runsOf(t *testing.T, path string) []journal.Run {
	t.Helper()
	jc, err := journal.ReadChecked(path)
	if err != nil {
		t.Fatal(err)
	}
	return journal.Runs(jc.Records)
}

func TestDatabaseRestoreIsJournaled(t *testing.T) {
	e, live, bk := dbEnv(t)
	res, err := DatabaseRestore(context.Background(), e.restoreOpts(true), e.dbDeps())
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "ok" || dbRows(t, live) != "backup" {
		t.Fatalf("outcome %s, rows %q", res.Outcome, dbRows(t, live))
	}
	if !slices.Equal(e.m.calls, []string{"stop", "start"}) {
		t.Fatalf("service calls %v", e.m.calls)
	}
	if res.Failed == nil || dbRows(t, res.Failed.Path) != "live" {
		t.Fatalf("the replaced database is not kept: %+v", res.Failed)
	}
	runs := runsOf(t, e.cfg.Journal)
	if len(runs) != 1 {
		t.Fatalf("%d runs", len(runs))
	}
	r := runs[0]
	if r.ID != res.RunID || r.Command != DBRestoreCommand || r.Outcome != "ok" || r.Backup != bk || r.Unfinished() {
		t.Fatalf("journal run %+v", r)
	}
	var steps []string
	for _, s := range r.Steps {
		steps = append(steps, s.Name+":"+s.Status)
	}
	if want := []string{"stop:done", "restore:done", "start:done", "health:done"}; !slices.Equal(steps, want) {
		t.Fatalf("steps %v, want %v", steps, want)
	}
	// typed payloads: the intent names the target and the outcome what was kept
	for _, rec := range r.Records {
		if rec.Event == "outcome" {
			var o dbOutcome
			if err := json.Unmarshal(rec.Data, &o); err != nil || len(o.Kept) != 1 || o.Kept[0] != res.Failed.Path {
				t.Fatalf("outcome %s (%v)", rec.Data, err)
			}
		}
	}
}

func TestDatabaseRestoreDryRunChangesNothing(t *testing.T) {
	e, live, _ := dbEnv(t)
	before := fileHash(t, live)
	opt := e.restoreOpts(true)
	opt.DryRun = true
	res, err := DatabaseRestore(context.Background(), opt, e.dbDeps())
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "planned" || len(res.Plan) != 4 || !strings.HasPrefix(res.Plan[0], "stop: would stop") {
		t.Fatalf("outcome %s plan %q", res.Outcome, res.Plan)
	}
	if fileHash(t, live) != before || len(e.m.calls) != 0 || !e.m.active {
		t.Fatalf("a dry run changed something: calls %v", e.m.calls)
	}
	for _, p := range []string{e.cfg.Journal, e.cfg.Lock} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s written by a dry run (%v)", p, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(live))
	if len(entries) != 1 {
		t.Fatalf("a dry run left files next to the database: %v", entries)
	}
}

// failingJournal lets ok records through, then fails every write.
type failingJournal struct {
	journalWriter
	ok int
}

func (f *failingJournal) Append(runID, event, step string, data any) (journal.Record, error) {
	if f.ok == 0 {
		return journal.Record{}, fmt.Errorf("append %s: %w", event, syscall.ENOSPC)
	}
	f.ok--
	return f.journalWriter.Append(runID, event, step, data)
}

// A journal that cannot be written in the middle of a restore stops it, and the error
// says what was changed by then; a service the run stopped is started again.
func TestDatabaseRestoreJournalFails(t *testing.T) {
	for _, tc := range []struct {
		ok        int // records written before the journal fails
		restored  bool
		afterStop bool
		calls     []string
		msg       string
		hint      string
	}{
		{ok: 0, calls: nil, msg: "journal: write intent to the journal ", hint: "nothing was changed; fix the journal"},
		{ok: 2, afterStop: true, calls: []string{"stop", "start"}, msg: "stop: write step_done to the journal ",
			hint: "the database was not touched and the service was started again; fix the journal"},
		{ok: 4, restored: true, afterStop: true, calls: []string{"stop", "start"}, msg: "restore: write step_done to the journal ",
			hint: "the database WAS restored from "},
	} {
		t.Run(fmt.Sprint(tc.ok), func(t *testing.T) {
			e, live, _ := dbEnv(t)
			deps := e.dbDeps()
			deps.wrapJournal = func(j journalWriter) journalWriter { return &failingJournal{journalWriter: j, ok: tc.ok} }
			res, err := DatabaseRestore(context.Background(), e.restoreOpts(true), deps)
			if !errors.Is(err, ErrJournal) || !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), tc.msg) {
				t.Fatalf("err %v, want it to start with %q", err, tc.msg)
			}
			if errors.Is(err, ErrAfterStop) != tc.afterStop || errors.Is(err, ErrPreflight) == tc.afterStop {
				t.Fatalf("err %v: after stop %v, want %v", err, errors.Is(err, ErrAfterStop), tc.afterStop)
			}
			var se *StepError
			if !errors.As(err, &se) || !strings.Contains(se.Hint, tc.hint) {
				t.Fatalf("hint %q, want %q", se.Hint, tc.hint)
			}
			t.Logf("the user is told: cfrollback: %v\nhint: %s", err, se.Hint)
			if got := dbRows(t, live); (got == "backup") != tc.restored {
				t.Fatalf("rows %q, restored %v", got, tc.restored)
			}
			if !slices.Equal(e.m.calls, tc.calls) || !e.m.active {
				t.Fatalf("service calls %v, active %v", e.m.calls, e.m.active)
			}
			if res.Outcome != "failed" && res.Outcome != "preflight_failed" {
				t.Fatalf("outcome %s", res.Outcome)
			}
		})
	}
}

func TestDatabaseRestoreInterruptedBeforeAnyChange(t *testing.T) {
	e, live, _ := dbEnv(t)
	before := fileHash(t, live)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&Interrupt{Signal: syscall.SIGINT})
	_, err := DatabaseRestore(ctx, e.restoreOpts(true), e.dbDeps())
	if !errors.Is(err, ErrPreflight) || !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err %v", err)
	}
	if fileHash(t, live) != before || len(e.m.calls) != 0 {
		t.Fatalf("changed: calls %v", e.m.calls)
	}
}

// killedRun journals a database restore that was killed after the given records.
func killedRun(t *testing.T, cfg settings.Config, steps ...[2]string) string {
	t.Helper()
	j, err := journal.Open(cfg.Journal)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	id := "20250101-000000-killed"
	target := cfg.DatabasePath(cfg.Databases[0])
	if _, err := j.Append(id, "intent", "", dbIntent{Command: DBRestoreCommand, Target: target, Backup: "/b.db", StopService: true}); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if _, err := j.Append(id, s[0], s[1], nil); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func TestDatabaseRestoreRecoversKilledRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		steps  [][2]string
		action string
		calls  []string
	}{
		{"killed after stop", [][2]string{{"step_start", "stop"}, {"step_done", "stop"}}, "service_started", []string{"start"}},
		{"killed after restore", [][2]string{{"step_start", "stop"}, {"step_done", "stop"}, {"step_start", "restore"}, {"step_done", "restore"}}, "service_started", []string{"start"}},
		{"killed during restore", [][2]string{{"step_start", "stop"}, {"step_done", "stop"}, {"step_start", "restore"}}, "service_left_stopped", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, live, _ := dbEnv(t)
			e.m.active = false
			killed := killedRun(t, e.cfg, tc.steps...)
			// a restore without --stop-service: the recovery still sees the stopped service
			res, err := DatabaseRestore(context.Background(), e.restoreOpts(false), e.dbDeps())
			if err != nil {
				t.Fatal(err)
			}
			if res.Recovered == nil || res.Recovered.RunID != killed || res.Recovered.Action != tc.action {
				t.Fatalf("recovered %+v", res.Recovered)
			}
			if !slices.Equal(e.m.calls, tc.calls) {
				t.Fatalf("service calls %v, want %v", e.m.calls, tc.calls)
			}
			if dbRows(t, live) != "backup" {
				t.Fatal("not restored")
			}
			for _, r := range runsOf(t, e.cfg.Journal) {
				if r.Unfinished() {
					t.Fatalf("run %s still unfinished", r.ID)
				}
				if r.ID == killed && r.Outcome != tc.action+" by "+res.RunID {
					t.Fatalf("killed run's outcome %q", r.Outcome)
				}
			}
		})
	}
}

// corruptDB overwrites pages in the middle of a database of many rows.
func corruptDB(t *testing.T, path string) {
	t.Helper()
	rows := make([]string, 3000)
	for i := range rows {
		rows[i] = strings.Repeat(fmt.Sprint(i), 40)
	}
	makeDB(t, path, false, rows...)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(strings.Repeat("garbage!", 4096)), 4096*20); err != nil {
		t.Fatal(err)
	}
}

func TestDatabaseRepairJournaledAndDryRun(t *testing.T) {
	e := newEnv(t)
	live := e.cfg.DatabasePath(e.cfg.Databases[0])
	corruptDB(t, live)
	before := fileHash(t, live)
	opt := DBCheckOptions{Config: e.cfg, Databases: e.cfg.Databases, All: true, Repair: true, DryRun: true}

	res, err := CheckDatabases(context.Background(), opt, e.dbDeps())
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.Outcome != "planned" || len(res.Plan) != 1 || res.Databases[0].Repair.Action != "planned" {
		t.Fatalf("dry run: %+v", res)
	}
	if fileHash(t, live) != before {
		t.Fatal("a dry run changed the database")
	}
	if _, err := os.Stat(e.cfg.Journal); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a dry run wrote the journal (%v)", err)
	}

	opt.DryRun = false
	res, err = CheckDatabases(context.Background(), opt, e.dbDeps())
	if err != nil {
		t.Fatal(err)
	}
	runs := runsOf(t, e.cfg.Journal)
	if len(runs) != 1 || runs[0].Command != DBRepairCommand || runs[0].ID != res.RunID || runs[0].Outcome != res.Outcome {
		t.Fatalf("journal %+v, result outcome %s", runs, res.Outcome)
	}
	if len(runs[0].Steps) != 1 || runs[0].Steps[0].Name != "repair memory" || runs[0].Steps[0].Status != journal.StepDone {
		t.Fatalf("steps %+v", runs[0].Steps)
	}

	// nothing corrupt: no run is journaled
	e2 := newEnv(t)
	makeDB(t, e2.cfg.DatabasePath(e2.cfg.Databases[0]), false, "fine")
	res, err = CheckDatabases(context.Background(), DBCheckOptions{Config: e2.cfg, Databases: e2.cfg.Databases, Repair: true}, e2.dbDeps())
	if err != nil || !res.OK || res.RunID != "" {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := os.Stat(e2.cfg.Journal); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a check that repaired nothing wrote the journal")
	}
}

func TestDatabaseRepairInterruptedChangesNothing(t *testing.T) {
	e := newEnv(t)
	live := e.cfg.DatabasePath(e.cfg.Databases[0])
	corruptDB(t, live)
	before := fileHash(t, live)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&Interrupt{Signal: syscall.SIGINT})
	_, err := CheckDatabases(ctx, DBCheckOptions{Config: e.cfg, Databases: e.cfg.Databases, Repair: true}, e.dbDeps())
	if !errors.Is(err, ErrPreflight) || !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err %v", err)
	}
	if fileHash(t, live) != before {
		t.Fatal("an interrupted repair changed the database")
	}
	if _, err := os.Stat(e.cfg.Journal); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal written (%v)", err)
	}
}
