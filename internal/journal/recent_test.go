package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fillJournal writes closed runs of 14 records each (intent, steps, outcome) until the
// journal holds n records (the last run's outcome the last of them), with the run "killed" (an intent and a step, no outcome) as
// records killedAt and killedAt+1 when killedAt > 0, straight to the file (an Append is an
// fsync: thousands would take minutes), and a head as an earlier cfrollback wrote it (no
// pointer). It returns the path.
func fillJournal(tb testing.TB, path string, n, killedAt int) string {
	tb.Helper()
	if err := mkdirAllSynced(path[:strings.LastIndex(path, "/")], 0o700); err != nil {
		tb.Fatal(err)
	}
	if killedAt > 0 && ((killedAt-1)%14 == 0 || (killedAt-1)%14 >= 12) {
		tb.Fatalf("record %d is the intent or outcome of a closed run, or precedes it", killedAt)
	}
	var buf bytes.Buffer
	prev := ""
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var last Record
	for seq := int64(1); seq <= int64(n); seq++ {
		i := int(seq - 1)
		run, event, step := fmt.Sprintf("run-%d", i/14), "step_done", "swap"
		data := json.RawMessage(fmt.Sprintf(`{"n":%d,"backup":"/var/backups/claude-flow/backup-20250104-140000.tar.gz"}`, i))
		switch {
		case killedAt > 0 && int(seq) == killedAt:
			run, event, step = "killed", EventIntent, ""
			data = json.RawMessage(`{"command":"emergency","install_dir":"/opt/claude-flow"}`)
		case killedAt > 0 && int(seq) == killedAt+1:
			run, event, step = "killed", EventStepStart, "stop"
		case i%14 == 0:
			event, step = EventIntent, ""
			data = json.RawMessage(`{"command":"backup create"}`)
		case i%14 == 13, int(seq) == n:
			event, step = EventOutcome, ""
			data = json.RawMessage(`{"outcome":"ok"}`)
		}
		rec := Record{Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second), RunID: run, Event: event, Step: step, Data: data, Prev: prev}
		h, err := computeHash(rec)
		if err != nil {
			tb.Fatal(err)
		}
		rec.Hash = h
		line, _ := json.Marshal(rec)
		buf.Write(line)
		buf.WriteByte('\n')
		prev, last = h, rec
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(headPath(path), []byte(fmt.Sprintf(`{"seq":%d,"hash":%q}`+"\n", last.Seq, last.Hash)), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// lineAt is the record whose line starts at byte at.
func lineAt(t *testing.T, path string, at int64) Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 || at >= int64(len(b)) || (at > 0 && b[at-1] != '\n') {
		t.Fatalf("byte %d does not start a line of %s", at, path)
	}
	line, _, _ := bytes.Cut(b[at:], []byte("\n"))
	rec, kind, err := parseLine(line)
	if kind != lineRecord {
		t.Fatalf("the line at byte %d is not a record: %v", at, err)
	}
	return rec
}

// After every append the head names the intent of the oldest run without an outcome, or the
// last record when every run has one, and the byte where that record's line starts.
func TestHeadPointsAtOldestUnfinishedRun(t *testing.T) {
	path := newPath(t)
	j := openT(t, path)
	steps := []struct {
		run, event string
		want       int64 // the seq the head must point at
	}{
		{"a", EventIntent, 1},
		{"a", EventStepStart, 1},
		{"a", EventOutcome, 3}, // closed: nothing open, the last record
		{"g", EventGuard, 4},   // no intent: never unfinished
		{"b", EventIntent, 5},
		{"c", EventIntent, 5},
		{"b", EventStepStart, 5},
		{"c", EventIntent, 5},  // a second intent does not move c's start
		{"b", EventOutcome, 6}, // b closed: c is the oldest open run
		{"a", EventVerify, 6},  // a record of a closed run reopens nothing
		{"c", EventRecovered, 11},
		{"d", EventIntent, 12},
	}
	for i, s := range steps {
		rec := appendT(t, j, s.run, s.event, "", nil)
		hd, err := readHead(path)
		if err != nil {
			t.Fatal(err)
		}
		if hd.Seq != rec.Seq || hd.Open != s.want {
			t.Fatalf("after append %d (%s %s): head %+v, want seq %d open %d", i+1, s.run, s.event, hd, rec.Seq, s.want)
		}
		if got := lineAt(t, path, hd.At); got.Seq != s.want {
			t.Fatalf("after append %d: the head's byte %d starts record %d, want %d", i+1, hd.At, got.Seq, s.want)
		}
		if p := verifyT(t, path); len(p) != 0 {
			t.Fatalf("after append %d: verify: %v", i+1, p)
		}
	}
	// a new Journal continues from the head: d is open, its intent is where reading starts
	_ = j.Close()
	j = openT(t, path)
	appendT(t, j, "e", EventIntent, "", nil)
	appendT(t, j, "d", EventOutcome, "", nil)
	if hd, _ := readHead(path); hd.Open != 13 {
		t.Fatalf("after reopening: head %+v, want open 13 (e's intent)", hd)
	}
	if p := verifyT(t, path); len(p) != 0 {
		t.Fatalf("verify: %v", p)
	}
}

// The reason for the pointer: a journal of thousands of records is read from the oldest
// unfinished run on. The old records are damaged on purpose (a line that is no record, a
// record edited): ReadRecent does not read them, finds the run killed long ago, and
// verifies what it reads; journal verify (ReadChecked) still reads everything and reports
// the damage.
func TestReadRecentReadsFromTheOldestUnfinishedRun(t *testing.T) {
	const n, killedAt = 5000, 4190
	path := fillJournal(t, newPath(t), n, killedAt)
	j := openT(t, path) // an earlier cfrollback's head: Open reads everything, once
	appendT(t, j, "now", EventIntent, "", map[string]string{"command": "emergency"})
	_ = j.Close()
	hd, err := readHead(path)
	if err != nil || hd.Open != killedAt {
		t.Fatalf("head %+v, %v: want open %d (the killed run's intent)", hd, err, killedAt)
	}

	// damage far back: line 100 no longer a record, line 2000 edited (same length: the
	// pointer's byte still starts its line)
	lines := readLines(t, path)
	lines[99] = strings.Repeat("x", len(lines[99]))
	lines[1999] = strings.Replace(lines[1999], `"n":1999`, `"n":9999`, 1)
	writeLines(t, path, lines)

	jc, err := ReadRecent(path)
	if err != nil {
		t.Fatalf("ReadRecent: %v", err)
	}
	if jc.From != killedAt || len(jc.Records) != n+1-killedAt+1 || len(jc.Problems) != 0 {
		t.Fatalf("ReadRecent: from %d, %d records, problems %v; want from %d, %d records, none", jc.From, len(jc.Records), jc.Problems, killedAt, n+1-killedAt+1)
	}
	run, ok := LastUnfinished(Runs(jc.Records), "emergency")
	if !ok || run.ID != "now" {
		t.Fatalf("newest unfinished emergency %q %v", run.ID, ok)
	}
	var killed *Run
	for _, r := range Runs(jc.Records) {
		if r.Unfinished() && r.ID != "now" {
			if killed != nil || r.ID != "killed" {
				t.Fatalf("unfinished runs %q and %q, want only the killed one besides this run", killed.ID, r.ID)
			}
			killed = &r
		}
	}
	if killed == nil || killed.Command != "emergency" || len(killed.Records) != 2 {
		t.Fatalf("the killed run %+v", killed)
	}

	// the full read still sees the damage
	if _, err := ReadChecked(path); err == nil {
		t.Fatal("ReadChecked read a journal with a line that is no record")
	}
	if p := verifyT(t, path); len(p) < 2 {
		t.Fatalf("verify reported %v, want the malformed line and the edited record", p)
	}
	// and Open, which reads only from the pointer, continues the journal
	j = openT(t, path)
	appendT(t, j, "now", EventOutcome, "", nil)
	if hd, _ := readHead(path); hd.Open != killedAt {
		t.Fatalf("head %+v after the next append, want open %d still", hd, killedAt)
	}
}

// Damage after the pointer, or a pointer that does not check out, makes ReadRecent what
// ReadChecked is: the whole journal read and its problems reported, never fewer records.
func TestReadRecentFallsBackToTheWholeJournal(t *testing.T) {
	build := func(t *testing.T) string {
		path := fillJournal(t, newPath(t), 300, 100)
		j := openT(t, path)
		appendT(t, j, "now", EventIntent, "", nil)
		_ = j.Close()
		if hd, _ := readHead(path); hd.Open != 100 {
			t.Fatalf("head %+v, want open 100", hd)
		}
		return path
	}
	setHead := func(t *testing.T, path string, edit func(h *head)) {
		hd, err := readHead(path)
		if err != nil {
			t.Fatal(err)
		}
		edit(hd)
		b, err := encodeHead(*hd)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, headPath(path), b)
	}
	tests := []struct {
		name     string
		damage   func(t *testing.T, path string)
		problems bool // ReadChecked reports problems (a damaged journal, not only a pointer)
	}{
		{"a record after the pointer edited", func(t *testing.T, path string) {
			lines := readLines(t, path)
			lines[199] = strings.Replace(lines[199], `"n":199`, `"n":7`, 1)
			writeLines(t, path, lines)
		}, true},
		{"the pointer moved to a record that is no intent", func(t *testing.T, path string) {
			setHead(t, path, func(h *head) {
				rec := lineAt(t, path, h.At)
				h.Open, h.At = rec.Seq+1, h.At+int64(len(readLines(t, path)[rec.Seq-1]))+1
			})
		}, false},
		{"the pointer's byte inside a line", func(t *testing.T, path string) {
			setHead(t, path, func(h *head) { h.At += 5 })
		}, false},
		{"the pointer past the end", func(t *testing.T, path string) {
			setHead(t, path, func(h *head) { h.At = 1 << 40 })
		}, false},
		{"the pointer after the head's record", func(t *testing.T, path string) {
			setHead(t, path, func(h *head) { h.Open = h.Seq + 1 })
		}, false},
		{"the head one record behind (a crash before the head was written)", func(t *testing.T, path string) {
			old, _ := os.ReadFile(headPath(path))
			j := openT(t, path)
			appendT(t, j, "now", EventStepStart, "", nil)
			_ = j.Close()
			writeFile(t, headPath(path), old)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := build(t)
			tt.damage(t, path)
			jc, err := ReadRecent(path)
			if err != nil {
				t.Fatal(err)
			}
			all, err := ReadChecked(path)
			if err != nil {
				t.Fatal(err)
			}
			if jc.From != 0 || len(jc.Records) != len(all.Records) || len(jc.Problems) != len(all.Problems) {
				t.Fatalf("ReadRecent: from %d, %d records, %d problems; want the whole journal as ReadChecked reads it (%d records, %d problems)",
					jc.From, len(jc.Records), len(jc.Problems), len(all.Records), len(all.Problems))
			}
			if tt.problems && len(all.Problems) == 0 {
				t.Fatal("no problem reported")
			}
		})
	}
}

// A pointer moved forward past a run that never ended is the one edit ReadRecent cannot see
// (it does not read what lies before); journal verify reads everything and reports it.
func TestVerifyReportsAPointerPastAnUnfinishedRun(t *testing.T) {
	path := newPath(t)
	j := openT(t, path)
	appendT(t, j, "killed", EventIntent, "", nil)
	appendT(t, j, "b", EventIntent, "", nil)
	appendT(t, j, "b", EventOutcome, "", nil)
	appendT(t, j, "c", EventIntent, "", nil)
	_ = j.Close()
	hd, _ := readHead(path)
	if hd.Open != 1 {
		t.Fatalf("head %+v, want open 1", hd)
	}
	lines := readLines(t, path)
	hd.Open, hd.At = 4, int64(len(lines[0])+len(lines[1])+len(lines[2])+3)
	b, _ := encodeHead(*hd)
	writeFile(t, headPath(path), b)
	if got := lineAt(t, path, hd.At); got.RunID != "c" {
		t.Fatalf("test setup: the edited pointer names %+v", got)
	}
	p := verifyT(t, path)
	if len(p) != 1 || p[0].Kind != ProblemOpen || !strings.Contains(p[0].Reason, "only from seq 1") {
		t.Fatalf("verify: %v, want the head's pointer reported", p)
	}
	jc, err := ReadChecked(path)
	if err != nil || jc.UntrustedFrom != 0 || !strings.Contains(jc.Warning(path), "open") {
		t.Fatalf("ReadChecked: %v, untrusted from %d, warning %q: the records still hold, the warning names the head", err, jc.UntrustedFrom, jc.Warning(path))
	}
}

// An earlier cfrollback's head has no pointer: ReadRecent reads the whole journal, and the
// first append after Open (which reads the whole journal once to find the open runs)
// writes a head with it.
func TestHeadWithoutPointerIsUpgraded(t *testing.T) {
	path := fillJournal(t, newPath(t), 100, 50)
	if jc, err := ReadRecent(path); err != nil || jc.From != 0 || len(jc.Records) != 100 {
		t.Fatalf("ReadRecent on an earlier head: from %d, %d records, %v", jc.From, len(jc.Records), err)
	}
	j := openT(t, path)
	appendT(t, j, "r", "note", "", nil)
	hd, err := readHead(path)
	if err != nil || hd.Open != 50 || lineAt(t, path, hd.At).Seq != 50 {
		t.Fatalf("head %+v, %v: want open 50", hd, err)
	}
	if jc, err := ReadRecent(path); err != nil || jc.From != 50 || len(jc.Records) != 52 {
		t.Fatalf("ReadRecent: from %d, %d records, %v; want from 50, 52 records", jc.From, len(jc.Records), err)
	}
}

// A journal whose runs Open cannot tell (a line in the middle that is no record: it may have
// been an intent) gets heads without a pointer, so readers keep reading everything.
func TestNoPointerWhenOpenCannotTellTheRuns(t *testing.T) {
	path := fillJournal(t, newPath(t), 100, 0)
	lines := readLines(t, path)
	lines[49] = "garbage"
	writeLines(t, path, lines)
	j := openT(t, path)
	appendT(t, j, "r", "note", "", nil)
	hd, err := readHead(path)
	if err != nil || hd.Seq != 101 || hd.Open != 0 {
		t.Fatalf("head %+v, %v: want seq 101 and no pointer", hd, err)
	}
}

// BenchmarkRecovery is what each run's recovery reads before its preflight: before, the
// whole journal with its chain verified (ReadChecked); now ReadRecent, from the oldest
// unfinished run on. The journal holds closed runs and, ending it, the current run's intent.
func BenchmarkRecovery(b *testing.B) {
	for _, n := range []int{100, 10000} {
		path := fillJournal(b, b.TempDir()+"/journal.jsonl", n, 0)
		j, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := j.Append("now", EventIntent, "", map[string]string{"command": "emergency"}); err != nil {
			b.Fatal(err)
		}
		_ = j.Close()
		for _, r := range []struct {
			name string
			read func(string) (Checked, error)
		}{{"ReadChecked", ReadChecked}, {"ReadRecent", ReadRecent}} {
			b.Run(fmt.Sprintf("%s/%d", r.name, n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					jc, err := r.read(path)
					if err != nil || len(jc.Records) == 0 || jc.Records[len(jc.Records)-1].RunID != "now" {
						b.Fatalf("%v %d", err, len(jc.Records))
					}
				}
			})
		}
		b.Run(fmt.Sprintf("Open/%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				j, err := Open(path)
				if err != nil {
					b.Fatal(err)
				}
				_ = j.Close()
			}
		})
	}
}

// FuzzReadRecent: whatever the journal's bytes under a head with a pointer, ReadRecent
// either reads from the pointer exactly the records ReadChecked reads from there, with no
// problem, or is ReadChecked.
func FuzzReadRecent(f *testing.F) {
	seed := filepath.Join(f.TempDir(), "j.jsonl")
	j, err := Open(seed)
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range []struct{ run, event string }{
		{"a", EventIntent}, {"a", EventOutcome}, {"b", EventIntent}, {"c", EventIntent}, {"c", EventStepStart}, {"c", EventOutcome},
	} {
		if _, err := j.Append(r.run, r.event, "", map[string]int{"n": 1}); err != nil {
			f.Fatal(err)
		}
	}
	_ = j.Close()
	good, _ := os.ReadFile(seed)
	hd, _ := os.ReadFile(headPath(seed))
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"n":1`), []byte(`"n":2`), 1))
	f.Add(append([]byte("x\n"), good...))
	f.Add(good[:len(good)-9])
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "j.jsonl")
		writeFile(t, path, data)
		writeFile(t, headPath(path), hd)
		jc, err := ReadRecent(path)
		all, aerr := ReadChecked(path)
		if (err == nil) != (aerr == nil) {
			t.Fatalf("ReadRecent: %v; ReadChecked: %v", err, aerr)
		}
		if err != nil || jc.From == 0 {
			if len(jc.Records) != len(all.Records) || len(jc.Problems) != len(all.Problems) {
				t.Fatalf("ReadRecent read the whole journal but not as ReadChecked: %d/%d records, %d/%d problems",
					len(jc.Records), len(all.Records), len(jc.Problems), len(all.Problems))
			}
			return
		}
		var tail []Record
		for _, r := range all.Records {
			if r.Seq >= jc.From {
				tail = append(tail, r)
			}
		}
		if len(jc.Problems) != 0 || !reflect.DeepEqual(jc.Records, tail) {
			t.Fatalf("ReadRecent from %d: %d records, problems %v; ReadChecked has %d from there", jc.From, len(jc.Records), jc.Problems, len(tail))
		}
	})
}

// A crash between a record and its head, when that record closed the oldest open run: the
// next Open reads from the pointer of the head left behind (which includes the record), so
// the repaired head points past the closed run, and readers read from there.
func TestOpenRepairsHeadBehindWithItsPointer(t *testing.T) {
	path := newPath(t)
	j := openT(t, path)
	appendT(t, j, "a", EventIntent, "", nil)
	appendT(t, j, "b", EventIntent, "", nil)
	appendT(t, j, "a", EventStepStart, "stop", nil)
	old, err := os.ReadFile(headPath(path))
	if err != nil {
		t.Fatal(err)
	}
	appendT(t, j, "a", EventOutcome, "", nil)
	_ = j.Close()
	writeFile(t, headPath(path), old) // the crash: the head still names record 3, pointing at a's intent
	if hd, _ := readHead(path); hd.Seq != 3 || hd.Open != 1 {
		t.Fatalf("test setup: head %+v", hd)
	}
	openT(t, path)
	hd, err := readHead(path)
	if err != nil || hd.Seq != 4 || hd.Open != 2 || lineAt(t, path, hd.At).RunID != "b" {
		t.Fatalf("repaired head %+v, %v: want seq 4, open 2 (b's intent)", hd, err)
	}
	if p := verifyT(t, path); len(p) != 0 {
		t.Fatalf("verify: %v", p)
	}
	if jc, err := ReadRecent(path); err != nil || jc.From != 2 || len(jc.Records) != 3 {
		t.Fatalf("ReadRecent: from %d, %d records, %v", jc.From, len(jc.Records), err)
	}
}
