package runbook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/journal"
)

// longJournal writes a journal of closed runs (intent, 12 steps, outcome) of n records in
// all, the records of killed (a run with an intent and no outcome) at seq killedAt on, and
// a head as an earlier cfrollback wrote it: straight to the file, since thousands of fsynced
// appends would take minutes. Then it opens the journal and appends one record as any run
// would, which gives the head its pointer to the oldest unfinished run.
func longJournal(t *testing.T, path string, n int, killedAt int64, killed []journal.Record) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	prev, seq := "", int64(0)
	add := func(rec journal.Record) {
		seq++
		rec.Seq, rec.Prev, rec.Hash = seq, prev, ""
		rec.Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Minute)
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		rec.Hash = hex.EncodeToString(sum[:])
		line, _ := json.Marshal(rec)
		buf.Write(line)
		buf.WriteByte('\n')
		prev = rec.Hash
	}
	for run := 0; int(seq) < n; run++ {
		if seq+1 == killedAt {
			for _, rec := range killed {
				add(rec)
			}
		}
		id := fmt.Sprintf("20260101-%06d-backup", run)
		add(journal.Record{RunID: id, Event: journal.EventIntent, Data: json.RawMessage(`{"command":"backup create","user":"ops"}`)})
		for s := 0; s < 6; s++ {
			add(journal.Record{RunID: id, Event: journal.EventStepStart, Step: fmt.Sprint("step", s)})
			add(journal.Record{RunID: id, Event: journal.EventStepDone, Step: fmt.Sprint("step", s), Data: json.RawMessage(`{"duration_ms":3}`)})
		}
		add(journal.Record{RunID: id, Event: journal.EventOutcome, Data: json.RawMessage(`{"outcome":"ok"}`)})
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".head", []byte(fmt.Sprintf(`{"seq":%d,"hash":%q}`+"\n", seq, prev)), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close() //nolint:errcheck // appended records are fsynced
	if _, err := j.Append("20260101-note", "note", "", nil); err != nil {
		t.Fatal(err)
	}
}

// damageBefore makes the journal's lines before line n unreadable to a whole read (a line
// that is no record, a record edited), keeping each line's length: what recovery no longer
// reads must not matter to it.
func damageBefore(t *testing.T, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(b, []byte("\n"))
	if n < 40 {
		t.Fatalf("damageBefore %d: too few lines", n)
	}
	lines[2] = bytes.Repeat([]byte("#"), len(lines[2]))
	lines[n-20] = bytes.Replace(lines[n-20], []byte(`"duration_ms":3`), []byte(`"duration_ms":9`), 1)
	if err := os.WriteFile(path, bytes.Join(lines, []byte("\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A host's journal only grows. Recovery reads it from the oldest run without an outcome on
// (the head's pointer), so it still finds an emergency killed far back, after thousands of
// records, and what came before is not read at all: the lines made unreadable there draw
// no warning (before, each run read and hash-checked the whole journal, and warned).
func TestFindInterruptedReadsFromTheOldestUnfinishedRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	const killedAt = 1401
	longJournal(t, path, 4000, killedAt, []journal.Record{
		{RunID: "20260101-killed", Event: journal.EventIntent, Data: json.RawMessage(`{"command":"emergency","install_dir":"/opt/claude-flow","staging_dir":"/opt/claude-flow.staging-20260101-killed"}`)},
		{RunID: "20260101-killed", Event: journal.EventStepStart, Step: "preflight"},
		{RunID: "20260101-killed", Event: journal.EventStepDone, Step: "preflight", Data: json.RawMessage(`{"data":{"backup":"/b/backup-1.tar.gz"}}`)},
		{RunID: "20260101-killed", Event: journal.EventStepStart, Step: "stop"},
	})
	damageBefore(t, path, killedAt)
	var warns []string
	warn := func(format string, a ...any) { warns = append(warns, fmt.Sprintf(format, a...)) }

	it, unread, err := findInterrupted("20260101-now", warn, "", path)
	if err != nil {
		t.Fatal(err)
	}
	if it == nil || it.runID != "20260101-killed" || !it.stopped || it.staged == nil || it.staged.Backup != "/b/backup-1.tar.gz" ||
		it.intent.StagingDir != "/opt/claude-flow.staging-20260101-killed" {
		t.Fatalf("interrupted run %+v, want the emergency killed at seq %d with its stop and staging", it, killedAt)
	}
	if len(warns) != 0 {
		t.Fatalf("recovery read the damaged records before the oldest unfinished run: %q", warns)
	}
	if len(unread) != 1 || unread[0] != (unreadPart{path: path, from: killedAt}) {
		t.Fatalf("unread parts %+v, want the journal before seq %d", unread, killedAt)
	}
	// what recovery passed over is read whole after the run, and the damage said
	checkUnread(warn, unread)
	if len(warns) != 1 || !strings.Contains(warns[0], "cannot be read whole") || !strings.Contains(warns[0], "line 3") ||
		!strings.Contains(warns[0], fmt.Sprintf("from seq %d on", killedAt)) {
		t.Fatalf("checkUnread warned %q, want the unreadable line named", warns)
	}
	// journal verify still reads everything
	if p, err := journal.Verify(path); err != nil || len(p) < 2 {
		t.Fatalf("verify: %v %v, want the damage reported", p, err)
	}
}

// Damage where a run can still be unfinished makes recovery read the whole journal, as
// before: the run is found and the damage said before the preflight.
func TestFindInterruptedReadsWholeWhenTheRecentPartIsDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	const killedAt = 701
	longJournal(t, path, 1000, killedAt, []journal.Record{
		{RunID: "20260101-killed", Event: journal.EventIntent, Data: json.RawMessage(`{"command":"emergency","install_dir":"/opt/claude-flow"}`)},
	})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(b, []byte("\n"))
	edited := 900 // a step_done of a closed run after the killed one's intent
	for !bytes.Contains(lines[edited], []byte(`"duration_ms":3`)) {
		edited++
	}
	lines[edited] = bytes.Replace(lines[edited], []byte(`"duration_ms":3`), []byte(`"duration_ms":7`), 1)
	if err := os.WriteFile(path, bytes.Join(lines, []byte("\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	var warns []string
	it, unread, err := findInterrupted("20260101-now", func(format string, a ...any) { warns = append(warns, fmt.Sprintf(format, a...)) }, "", path)
	if err != nil || it == nil || it.runID != "20260101-killed" {
		t.Fatalf("interrupted run %+v, %v", it, err)
	}
	if len(unread) != 0 || len(warns) != 1 || !strings.Contains(warns[0], "fails its hash chain") || !strings.Contains(warns[0], fmt.Sprintf("seq %d", edited+1)) {
		t.Fatalf("unread %+v, warnings %q: want the whole journal read and the edited record named", unread, warns)
	}
}

// The same through Emergency: a run killed long ago before its swap (its staging dir left
// behind) is abandoned by the next emergency, which then rolls back; the journal before that
// run is damaged and nobody reads it.
func TestEmergencyRecoversARunKilledLongAgo(t *testing.T) {
	e := newEnv(t)
	e.cfg.Standby.Enabled = false
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken"})
	staging := e.cfg.InstallDir + ".staging-20260101-killed"
	write(t, staging, map[string]string{"app.txt": "half extracted"})
	intent, _ := json.Marshal(intentData{Command: "emergency", InstallDir: e.cfg.InstallDir, StagingDir: staging, FailedDir: e.cfg.InstallDir + ".failed-x"})
	const killedAt = 2801
	longJournal(t, e.cfg.Journal, 3500, killedAt, []journal.Record{
		{RunID: "20260101-killed", Event: journal.EventIntent, Data: intent},
		{RunID: "20260101-killed", Event: journal.EventStepStart, Step: "preflight"},
	})
	damageBefore(t, e.cfg.Journal, killedAt)
	var events []Event
	res, err := Emergency(context.Background(), Options{Config: e.cfg, Command: "emergency"}, Deps{
		Service: e.m,
		Events:  func(ev Event) { events = append(events, ev) },
	})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("emergency: %v", err)
	}
	if res.Recovered == nil || res.Recovered.RunID != "20260101-killed" || res.Recovered.Action != "abandoned" {
		t.Fatalf("recovered %+v, want the run killed at seq %d abandoned", res.Recovered, killedAt)
	}
	if _, err := os.Stat(staging); !os.IsNotExist(err) {
		t.Errorf("the killed run's staging dir is still there: %v", err)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1" {
		t.Errorf("app.txt = %q after the rollback", got)
	}
	// the damage is said once, after the service is healthy (before, recovery read it all
	// before its preflight)
	healthy, said := -1, -1
	for i, ev := range events {
		switch {
		case ev.Kind == "step_done" && ev.Step == "health":
			healthy = i
		case ev.Kind == "warn" && strings.Contains(ev.Message, "journal"):
			if said >= 0 || !strings.Contains(ev.Message, "line 3") || !strings.Contains(ev.Message, fmt.Sprintf("from seq %d on", killedAt)) {
				t.Errorf("warning about the journal: %q", ev.Message)
			}
			said = i
		}
	}
	if healthy < 0 || said < healthy {
		t.Errorf("the damaged journal was said at event %d, the service healthy at %d: want it said after", said, healthy)
	}
	// the killed run is closed: the head now points past it
	jc, err := journal.ReadRecent(e.cfg.Journal)
	if err != nil || jc.From <= killedAt {
		t.Fatalf("ReadRecent after the run: from %d, %v; want past seq %d", jc.From, err, killedAt)
	}
	for _, r := range journal.Runs(jc.Records) {
		if r.Unfinished() {
			t.Errorf("run %s still unfinished", r.ID)
		}
	}
}
