package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func newPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "var", "log", "cfrollback", "journal.jsonl")
}

func openT(t *testing.T, path string) *Journal {
	t.Helper()
	j, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func appendT(t *testing.T, j *Journal, runID, event, step string, data any) Record {
	t.Helper()
	rec, err := j.Append(runID, event, step, data)
	if err != nil {
		t.Fatalf("Append %s: %v", event, err)
	}
	return rec
}

// writeJournal makes a journal of n note records with data {"n": i}.
func writeJournal(t *testing.T, n int) string {
	t.Helper()
	path := newPath(t)
	j := openT(t, path)
	for i := 1; i <= n; i++ {
		appendT(t, j, "run-1", "note", "", map[string]int{"n": i})
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func verifyT(t *testing.T, path string) []Problem {
	t.Helper()
	problems, err := Verify(path)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return problems
}

func TestAppendReadAllRoundTrip(t *testing.T) {
	path := newPath(t)
	j := openT(t, path)
	var want []Record
	want = append(want, appendT(t, j, "r1", "intent", "", map[string]any{"command": "emergency", "note": "<&>"}))
	want = append(want, appendT(t, j, "r1", "step_start", "stop", nil))
	want = append(want, appendT(t, j, "r1", "step_done", "stop", json.RawMessage(`{ "duration_ms" : 12 }`)))

	got, err := ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadAll differs from what Append returned:\ngot  %+v\nwant %+v", got, want)
	}
	for i, r := range got {
		if r.Seq != int64(i+1) {
			t.Errorf("record %d: seq %d", i, r.Seq)
		}
		if r.Time.Location() != time.UTC {
			t.Errorf("record %d: time %v is not UTC", i, r.Time)
		}
		wantPrev := ""
		if i > 0 {
			wantPrev = got[i-1].Hash
		}
		if r.Prev != wantPrev {
			t.Errorf("record %d: prev %q, want %q", i, r.Prev, wantPrev)
		}
	}
	if string(got[2].Data) != `{"duration_ms":12}` {
		t.Errorf("data stored as %s, want compact JSON", got[2].Data)
	}
	if strings.Contains(readLines(t, path)[1], `"data"`) {
		t.Errorf("nil data written as a field: %s", readLines(t, path)[1])
	}
	if p := verifyT(t, path); len(p) != 0 {
		t.Fatalf("fresh journal has problems: %v", p)
	}
}

func TestOpenCreatesPrivateFileAndDirs(t *testing.T) {
	path := newPath(t)
	openT(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("journal dir mode %v, want 0700", di.Mode().Perm())
	}
	if _, err := os.Stat(headPath(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an empty journal has a head: %v", err)
	}
}

func TestReopenContinuesChain(t *testing.T) {
	path := writeJournal(t, 3)
	j := openT(t, path)
	rec := appendT(t, j, "run-2", "note", "", nil)
	recs, err := ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Seq != 4 || rec.Prev != recs[2].Hash {
		t.Fatalf("after reopen got seq %d prev %s, want seq 4 prev %s", rec.Seq, rec.Prev, recs[2].Hash)
	}
	if p := verifyT(t, path); len(p) != 0 {
		t.Fatalf("problems: %v", p)
	}
}

func TestAppendRejectsNonObjectData(t *testing.T) {
	j := openT(t, newPath(t))
	for _, data := range []any{[]int{1}, "text", 3, json.RawMessage(`{bad`), func() {}} {
		if rec, err := j.Append("r", "note", "", data); err == nil {
			t.Errorf("Append(%T) = %+v, want an error", data, rec)
		}
	}
	if _, err := j.Append("r", "", "", nil); err == nil {
		t.Error("Append with an empty event succeeded")
	}
	// Rejected appends leave no trace: the next record is seq 1.
	if rec := appendT(t, j, "r", "note", "", map[string]string{}); rec.Seq != 1 {
		t.Errorf("seq %d after rejected appends, want 1", rec.Seq)
	}
}

func TestAppendAfterClose(t *testing.T) {
	j := openT(t, newPath(t))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append("r", "note", "", nil); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Append after Close: %v, want os.ErrClosed", err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	path := newPath(t)
	j := openT(t, path)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				if _, err := j.Append(fmt.Sprintf("run-%d", g), "note", "", map[string]int{"i": i}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	recs, err := ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 200 {
		t.Fatalf("%d records, want 200", len(recs))
	}
	if p := verifyT(t, path); len(p) != 0 {
		t.Fatalf("problems: %v", p)
	}
}

func TestTornTailIsKeptAndReported(t *testing.T) {
	path := writeJournal(t, 3)
	lines := readLines(t, path)
	// A crash half way through writing record 4.
	torn := lines[2][:len(lines[2])/2]
	appendBytes(t, path, torn)

	if p := verifyT(t, path); !onlyKinds(p, ProblemTorn) || p[0].Line != 4 {
		t.Fatalf("torn tail: problems %v, want one torn problem on line 4", p)
	}
	recs, err := ReadAll(path)
	if err != nil || len(recs) != 3 {
		t.Fatalf("ReadAll with a torn tail: %d records, %v; want 3, nil", len(recs), err)
	}

	j := openT(t, path)
	rec := appendT(t, j, "run-2", "recovered", "", nil)
	if rec.Seq != 4 || rec.Prev != recs[2].Hash {
		t.Fatalf("append after torn tail: seq %d prev %s, want 4 and %s", rec.Seq, rec.Prev, recs[2].Hash)
	}
	after := readLines(t, path)
	if len(after) != 5 || after[3] != torn {
		t.Fatalf("torn line not kept on a line of its own:\n%s", strings.Join(after, "\n"))
	}
	p := verifyT(t, path)
	if !onlyKinds(p, ProblemTorn) || p[0].Line != 4 {
		t.Fatalf("after append: problems %v, want only the torn line 4", p)
	}
	recs, err = ReadAll(path)
	if err != nil || len(recs) != 4 || recs[3].Seq != 4 {
		t.Fatalf("ReadAll after append: %d records, %v", len(recs), err)
	}
}

func TestTornTwice(t *testing.T) {
	path := writeJournal(t, 2)
	appendBytes(t, path, `{"seq":3,"ti`)
	// The append after the first crash tore as well: its newline made it,
	// half of its record did not.
	appendBytes(t, path, "\n"+`{"seq":3,"time":"20`+"\x00\x00\x00")
	j := openT(t, path)
	if rec := appendT(t, j, "r", "note", "", nil); rec.Seq != 3 {
		t.Fatalf("seq %d, want 3", rec.Seq)
	}
	p := verifyT(t, path)
	if !onlyKinds(p, ProblemTorn) || len(p) != 2 || p[0].Line != 3 || p[1].Line != 4 {
		t.Fatalf("problems %v, want torn lines 3 and 4", p)
	}
}

func TestTornOnlyLine(t *testing.T) {
	path := newPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"seq":1,"time":"2026-`), 0o600); err != nil {
		t.Fatal(err)
	}
	j := openT(t, path)
	if rec := appendT(t, j, "r", "intent", "", nil); rec.Seq != 1 || rec.Prev != "" {
		t.Fatalf("got seq %d prev %q, want a fresh chain", rec.Seq, rec.Prev)
	}
	if p := verifyT(t, path); !onlyKinds(p, ProblemTorn) || p[0].Line != 1 {
		t.Fatalf("problems %v", p)
	}
}

func TestUnterminatedCompleteRecord(t *testing.T) {
	path := writeJournal(t, 3)
	b, _ := os.ReadFile(path)
	// The crash came after the record but before its newline and head.
	h, _ := os.ReadFile(headPath(path))
	writeFile(t, path, b[:len(b)-1])
	j0 := openT(t, path)
	_ = j0.Close()
	writeFile(t, headPath(path), h)

	p := verifyT(t, path)
	if !hasKind(p, ProblemTorn) || p[0].Line != 3 {
		t.Fatalf("problems %v, want the missing newline of line 3 reported", p)
	}
	j := openT(t, path)
	if rec := appendT(t, j, "r", "note", "", nil); rec.Seq != 4 {
		t.Fatalf("seq %d, want 4", rec.Seq)
	}
	if p := verifyT(t, path); len(p) != 0 {
		t.Fatalf("after append: %v", p)
	}
}

func TestOpenRepairsHeadOneBehind(t *testing.T) {
	path := writeJournal(t, 3)
	old, err := os.ReadFile(headPath(path))
	if err != nil {
		t.Fatal(err)
	}
	j := openT(t, path)
	appendT(t, j, "r", "note", "", nil)
	_ = j.Close()
	// A crash between record 4 and its head.
	writeFile(t, headPath(path), old)

	if p := verifyT(t, path); !onlyKinds(p, ProblemHead) {
		t.Fatalf("problems %v, want the head reported behind", p)
	}
	openT(t, path)
	if p := verifyT(t, path); len(p) != 0 {
		t.Fatalf("after Open repaired the head: %v", p)
	}
}

func TestOpenRepairsMissingHeadAfterFirstRecord(t *testing.T) {
	path := writeJournal(t, 1)
	if err := os.Remove(headPath(path)); err != nil {
		t.Fatal(err)
	}
	if p := verifyT(t, path); !onlyKinds(p, ProblemHead) {
		t.Fatalf("problems %v", p)
	}
	openT(t, path)
	if p := verifyT(t, path); len(p) != 0 {
		t.Fatalf("after Open: %v", p)
	}
}

func TestOpenRefusesDamagedEnd(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"last record removed", func(t *testing.T, path string) {
			writeLines(t, path, readLines(t, path)[:4])
		}},
		{"all records removed", func(t *testing.T, path string) {
			writeFile(t, path, nil)
		}},
		{"journal deleted", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"head deleted", func(t *testing.T, path string) {
			if err := os.Remove(headPath(path)); err != nil {
				t.Fatal(err)
			}
		}},
		{"head unreadable", func(t *testing.T, path string) {
			writeFile(t, headPath(path), []byte("{\"seq\":5,"))
		}},
		{"last record edited", func(t *testing.T, path string) {
			lines := readLines(t, path)
			lines[4] = strings.Replace(lines[4], `"n":5`, `"n":6`, 1)
			writeLines(t, path, lines)
		}},
		{"last line garbage", func(t *testing.T, path string) {
			appendBytes(t, path, "garbage\n")
		}},
		{"two records appended by hand", func(t *testing.T, path string) {
			recs, _ := ReadAll(path)
			prev := recs[4]
			for seq := int64(6); seq <= 7; seq++ {
				r := forge(t, Record{Seq: seq, Time: prev.Time, RunID: "x", Event: "note", Prev: prev.Hash})
				appendBytes(t, path, mustLine(t, r)+"\n")
				prev = r
			}
		}},
		{"unterminated record off the chain", func(t *testing.T, path string) {
			r := forge(t, Record{Seq: 9, Time: time.Now().UTC(), RunID: "x", Event: "note", Prev: "00"})
			appendBytes(t, path, mustLine(t, r))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeJournal(t, 5)
			tt.damage(t, path)
			before := snapshot(path)
			j, err := Open(path)
			if err == nil {
				_ = j.Close()
				t.Fatal("Open succeeded on a damaged journal")
			}
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Path != path {
				t.Fatalf("Open: %v, want a *CorruptError for %s", err, path)
			}
			t.Logf("Open: %v", err)
			if after := snapshot(path); after != before {
				t.Fatalf("Open changed a damaged journal:\nbefore %s\nafter  %s", before, after)
			}
			if p := verifyT(t, path); len(p) == 0 {
				t.Fatal("Verify found nothing wrong")
			}
		})
	}
}

func TestSetAside(t *testing.T) {
	path := writeJournal(t, 5)
	writeLines(t, path, readLines(t, path)[:3])
	if _, err := Open(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v", err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	aside, err := SetAside(path, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := path + ".damaged-20260102T030405Z"; aside != want {
		t.Fatalf("aside %s, want %s", aside, want)
	}
	if p := verifyT(t, aside); !hasKind(p, ProblemTruncated) {
		t.Fatalf("the set-aside journal lost its evidence: %v", p)
	}
	j := openT(t, path)
	if rec := appendT(t, j, "r", "note", "", nil); rec.Seq != 1 {
		t.Fatalf("new journal starts at seq %d", rec.Seq)
	}
}

func TestReadAllMalformedLine(t *testing.T) {
	path := writeJournal(t, 4)
	lines := readLines(t, path)
	lines[2] = `{"seq":3,"event":"note",` + "garbage}"
	writeLines(t, path, lines)
	_, err := ReadAll(path)
	var le *LineError
	if !errors.As(err, &le) || le.Line != 3 {
		t.Fatalf("ReadAll: %v, want a LineError for line 3", err)
	}
	if !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %q does not name the line", err)
	}
	for _, bad := range []string{"null", "[]", "{}", `{"seq":1}`, "  \t"} {
		writeLines(t, path, []string{lines[0], bad, lines[1]})
		if _, err := ReadAll(path); !errors.As(err, &le) || le.Line != 2 {
			t.Errorf("ReadAll with line %q: %v, want a LineError for line 2", bad, err)
		}
	}
}

func TestReadAllMissing(t *testing.T) {
	if _, err := ReadAll(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadAll of a missing journal: %v", err)
	}
	if _, err := Verify(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Verify of a missing journal: %v", err)
	}
}

func TestReadAllLongLine(t *testing.T) {
	path := writeJournal(t, 1)
	appendBytes(t, path, `{"seq":2,"event":"note","data":{"x":"`+strings.Repeat("a", maxLine)+`"}}`+"\n")
	var le *LineError
	if _, err := ReadAll(path); !errors.As(err, &le) || le.Line != 2 {
		t.Fatalf("ReadAll: %v", err)
	}
	j := openT(t, newPath(t))
	if _, err := j.Append("r", "note", "", map[string]string{"x": strings.Repeat("a", maxLine)}); err == nil {
		t.Fatal("Append accepted a record longer than a line may be")
	}
}

// TestVerifyMatrix damages a five-record journal in the ways a journal gets
// damaged and checks what Verify says.
func TestVerifyMatrix(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   []Problem // Line and Kind; all of them, in order
	}{
		{"intact", func(*testing.T, string) {}, nil},
		{"edited data field", func(t *testing.T, path string) {
			editLine(t, path, 3, func(l string) string { return strings.Replace(l, `"n":3`, `"n":30`, 1) })
		}, []Problem{{Line: 3, Kind: ProblemHash}}},
		{"edited hash", func(t *testing.T, path string) {
			editLine(t, path, 3, func(l string) string {
				i := strings.Index(l, `"hash":"`) + len(`"hash":"`)
				return l[:i] + "0000" + l[i+4:]
			})
		}, []Problem{{Line: 3, Kind: ProblemHash}, {Line: 4, Kind: ProblemPrev}}},
		{"edited and rehashed", func(t *testing.T, path string) {
			editLine(t, path, 3, func(l string) string {
				var r Record
				_ = json.Unmarshal([]byte(l), &r)
				r.Data = json.RawMessage(`{"n":30}`)
				return mustLine(t, forge(t, r))
			})
		}, []Problem{{Line: 4, Kind: ProblemPrev}}},
		{"deleted middle line", func(t *testing.T, path string) {
			lines := readLines(t, path)
			writeLines(t, path, append(lines[:2:2], lines[3:]...))
		}, []Problem{{Line: 3, Kind: ProblemSeq}, {Line: 3, Kind: ProblemPrev}}},
		{"deleted first line", func(t *testing.T, path string) {
			writeLines(t, path, readLines(t, path)[1:])
		}, []Problem{{Line: 1, Kind: ProblemSeq}, {Line: 1, Kind: ProblemPrev}}},
		{"swapped lines", func(t *testing.T, path string) {
			lines := readLines(t, path)
			lines[1], lines[2] = lines[2], lines[1]
			writeLines(t, path, lines)
		}, []Problem{
			{Line: 2, Kind: ProblemSeq}, {Line: 2, Kind: ProblemPrev},
			{Line: 3, Kind: ProblemSeq}, {Line: 3, Kind: ProblemPrev},
			{Line: 4, Kind: ProblemSeq}, {Line: 4, Kind: ProblemPrev},
		}},
		{"duplicated line", func(t *testing.T, path string) {
			lines := readLines(t, path)
			writeLines(t, path, append(lines[:3:3], lines[2:]...))
		}, []Problem{{Line: 4, Kind: ProblemSeq}, {Line: 4, Kind: ProblemPrev}}},
		{"truncated last record", func(t *testing.T, path string) {
			writeLines(t, path, readLines(t, path)[:4])
		}, []Problem{{Line: 0, Kind: ProblemTruncated}}},
		{"truncated to nothing", func(t *testing.T, path string) {
			writeFile(t, path, nil)
		}, []Problem{{Line: 0, Kind: ProblemTruncated}}},
		{"journal deleted", func(t *testing.T, path string) {
			_ = os.Remove(path)
		}, []Problem{{Line: 0, Kind: ProblemTruncated}}},
		{"cut in the middle of the last record", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			writeFile(t, path, b[:len(b)-40])
		}, []Problem{{Line: 5, Kind: ProblemTorn}, {Line: 0, Kind: ProblemTruncated}}},
		{"torn last line", func(t *testing.T, path string) {
			lines := readLines(t, path)
			appendBytes(t, path, lines[4][:30])
		}, []Problem{{Line: 6, Kind: ProblemTorn}}},
		{"torn last line of NULs", func(t *testing.T, path string) {
			appendBytes(t, path, "\x00\x00\x00\x00")
		}, []Problem{{Line: 6, Kind: ProblemTorn}}},
		{"forged record with bad prev appended", func(t *testing.T, path string) {
			r := forge(t, Record{Seq: 6, Time: time.Now().UTC(), RunID: "x", Event: "outcome", Prev: strings.Repeat("ab", 32)})
			appendBytes(t, path, mustLine(t, r)+"\n")
		}, []Problem{{Line: 6, Kind: ProblemPrev}, {Line: 0, Kind: ProblemHead}}},
		{"forged record with good prev appended", func(t *testing.T, path string) {
			recs, _ := ReadAll(path)
			r := forge(t, Record{Seq: 6, Time: time.Now().UTC(), RunID: "x", Event: "outcome", Prev: recs[4].Hash})
			appendBytes(t, path, mustLine(t, r)+"\n")
		}, []Problem{{Line: 0, Kind: ProblemHead}}},
		{"extra field", func(t *testing.T, path string) {
			editLine(t, path, 2, func(l string) string { return strings.Replace(l, `{"seq"`, `{"by":"me","seq"`, 1) })
		}, []Problem{{Line: 2, Kind: ProblemCanonical}}},
		{"malformed middle line", func(t *testing.T, path string) {
			editLine(t, path, 2, func(string) string { return "hello" })
		}, []Problem{{Line: 2, Kind: ProblemMalformed}, {Line: 3, Kind: ProblemSeq}, {Line: 3, Kind: ProblemPrev}}},
		{"head deleted", func(t *testing.T, path string) {
			_ = os.Remove(headPath(path))
		}, []Problem{{Line: 0, Kind: ProblemHead}}},
		{"head rewritten", func(t *testing.T, path string) {
			writeFile(t, headPath(path), []byte(`{"seq":3,"hash":"abc"}`))
		}, []Problem{{Line: 0, Kind: ProblemHead}}},
		{"head garbage", func(t *testing.T, path string) {
			writeFile(t, headPath(path), []byte("x"))
		}, []Problem{{Line: 0, Kind: ProblemHead}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeJournal(t, 5)
			tt.damage(t, path)
			got := verifyT(t, path)
			for _, p := range got {
				t.Logf("%s: %s", p.Kind, p)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d problems, want %d: %v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				if got[i].Line != w.Line || got[i].Kind != w.Kind {
					t.Errorf("problem %d: line %d %s, want line %d %s", i, got[i].Line, got[i].Kind, w.Line, w.Kind)
				}
				if got[i].Reason == "" {
					t.Errorf("problem %d has no reason", i)
				}
			}
		})
	}
}

func TestRunsSummary(t *testing.T) {
	path := newPath(t)
	j := openT(t, path)
	base := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	tick := 0
	j.now = func() time.Time { tick++; return base.Add(time.Duration(tick) * time.Second) }

	appendT(t, j, "a", "intent", "", map[string]any{"command": "emergency", "user": "root", "host": "h1", "backup": "b1.tar.gz"})
	appendT(t, j, "a", "step_start", "stop", nil)
	appendT(t, j, "b", "intent", "", map[string]any{"command": "rollback"})
	appendT(t, j, "a", "step_done", "stop", nil)   // computed: 2s
	appendT(t, j, "a", "step_start", "start", nil) //
	appendT(t, j, "a", "step_failed", "start", map[string]any{"error": "boom", "duration_ms": 7})
	appendT(t, j, "a", "step_start", "start", nil) // retried
	appendT(t, j, "a", "step_done", "start", map[string]any{"duration_ms": "oops"})
	appendT(t, j, "a", "outcome", "", map[string]any{"outcome": "ok", "downtime_ms": 1234, "backup": "b2.tar.gz"})
	appendT(t, j, "c", "intent", "", map[string]any{"command": "emergency"})
	appendT(t, j, "c", "step_start", "stop", nil)
	appendT(t, j, "", "note", "", map[string]any{"text": "hello"})

	recs, err := ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	runs := Runs(recs)
	if len(runs) != 4 || runs[0].ID != "a" || runs[1].ID != "b" || runs[2].ID != "c" || runs[3].ID != "" {
		t.Fatalf("runs %+v", runs)
	}
	a := runs[0]
	if a.Command != "emergency" || a.User != "root" || a.Host != "h1" || a.Outcome != "ok" ||
		a.Backup != "b2.tar.gz" || a.DowntimeMS != 1234 || a.Unfinished() || len(a.Records) != 8 {
		t.Errorf("run a: %+v", a)
	}
	if !a.Started.Equal(base.Add(1*time.Second)) || !a.Ended.Equal(base.Add(9*time.Second)) {
		t.Errorf("run a: started %v ended %v", a.Started, a.Ended)
	}
	wantSteps := []StepRecord{
		{Name: "stop", Status: StepDone, Started: base.Add(2 * time.Second), Ended: base.Add(4 * time.Second), DurationMS: 2000},
		{Name: "start", Status: StepFailed, Started: base.Add(5 * time.Second), Ended: base.Add(6 * time.Second), DurationMS: 7, Error: "boom"},
		{Name: "start", Status: StepDone, Started: base.Add(7 * time.Second), Ended: base.Add(8 * time.Second), DurationMS: 1000},
	}
	if !reflect.DeepEqual(a.Steps, wantSteps) {
		t.Errorf("steps\ngot  %+v\nwant %+v", a.Steps, wantSteps)
	}
	if !runs[1].Unfinished() || !runs[2].Unfinished() || runs[3].Unfinished() {
		t.Errorf("unfinished: b %v c %v note %v", runs[1].Unfinished(), runs[2].Unfinished(), runs[3].Unfinished())
	}
	if c := runs[2]; len(c.Steps) != 1 || c.Steps[0].Status != StepStarted || !c.Ended.IsZero() || c.Outcome != "" {
		t.Errorf("run c: %+v", c)
	}

	if r, ok := LastUnfinished(runs, "emergency"); !ok || r.ID != "c" {
		t.Errorf("LastUnfinished(emergency) = %s, %v", r.ID, ok)
	}
	if r, ok := LastUnfinished(runs, "rollback"); !ok || r.ID != "b" {
		t.Errorf("LastUnfinished(rollback) = %s, %v", r.ID, ok)
	}
	if r, ok := LastUnfinished(runs, ""); !ok || r.ID != "c" {
		t.Errorf("LastUnfinished(any) = %s, %v", r.ID, ok)
	}
	if _, ok := LastUnfinished(runs, "undo"); ok {
		t.Error("LastUnfinished(undo) found a run")
	}

	appendT(t, j, "c", "recovered", "", map[string]any{"by": "d"})
	recs, _ = ReadAll(path)
	runs = Runs(recs)
	if r, ok := LastUnfinished(runs, "emergency"); ok {
		t.Errorf("a recovered run is still unfinished: %s", r.ID)
	}
	if !runs[2].Recovered {
		t.Error("run c not marked recovered")
	}
}

func TestRunsStepEndWithoutStart(t *testing.T) {
	now := time.Now().UTC()
	runs := Runs([]Record{{Seq: 1, Time: now, RunID: "x", Event: "step_done", Step: "s"}})
	if len(runs) != 1 || len(runs[0].Steps) != 1 || runs[0].Steps[0].Status != StepDone || runs[0].Steps[0].DurationMS != 0 {
		t.Fatalf("%+v", runs)
	}
	if runs[0].Unfinished() {
		t.Error("a run without intent is unfinished")
	}
}

// A guard session has no intent: history names it by its decisions. A guard record under an
// emergency's run id (guard acted) leaves the emergency's command, before or after its intent.
func TestRunsGuardSession(t *testing.T) {
	now := time.Now().UTC()
	intent := json.RawMessage(`{"command":"emergency"}`)
	runs := Runs([]Record{
		{Seq: 1, Time: now, RunID: "g", Event: EventGuard},
		{Seq: 2, Time: now, RunID: "e1", Event: EventGuard},
		{Seq: 3, Time: now, RunID: "e1", Event: EventIntent, Data: intent},
		{Seq: 4, Time: now, RunID: "e2", Event: EventIntent, Data: intent},
		{Seq: 5, Time: now, RunID: "e2", Event: EventGuard},
		{Seq: 6, Time: now, RunID: "g", Event: EventGuard},
	})
	want := map[string]string{"g": "guard", "e1": "emergency", "e2": "emergency"}
	if len(runs) != 3 {
		t.Fatalf("%d runs, want 3", len(runs))
	}
	for _, r := range runs {
		if r.Command != want[r.ID] {
			t.Errorf("run %s: command %q, want %q", r.ID, r.Command, want[r.ID])
		}
	}
	if runs[0].Unfinished() || len(runs[0].Records) != 2 {
		t.Errorf("guard session: unfinished %v, %d records", runs[0].Unfinished(), len(runs[0].Records))
	}
}

func FuzzReadAll(f *testing.F) {
	seedDir := f.TempDir()
	seed := filepath.Join(seedDir, "j.jsonl")
	j, err := Open(seed)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		if _, err := j.Append("r", "step_done", "s", map[string]int{"duration_ms": i}); err != nil {
			f.Fatal(err)
		}
	}
	_ = j.Close()
	good, _ := os.ReadFile(seed)
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add([]byte("\n\n\x00{"))
	f.Add([]byte(`{"seq":1,"event":"intent","data":[1,2]}` + "\n"))
	f.Add([]byte(`{"seq":1,"event":"outcome","data":{"downtime_ms":"x","outcome":3}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "j.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		recs, err := ReadAll(path)
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("ReadAll error without a line number: %v", err)
			}
		}
		for _, r := range Runs(recs) {
			_ = r.Unfinished()
		}
		problems, err := Verify(path)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if len(problems) == 0 && len(data) > 0 && !bytes.Equal(data, good) {
			// Any non-empty journal without a head is reported, so a clean
			// result is only possible for the seed's exact bytes.
			t.Fatalf("Verify found nothing wrong with %q", data)
		}
		if j, err := Open(path); err == nil {
			if _, err := j.Append("r", "note", "", nil); err != nil {
				t.Fatalf("Append after a successful Open: %v", err)
			}
			_ = j.Close()
		}
	})
}

// helpers

func appendBytes(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func editLine(t *testing.T, path string, n int, edit func(string) string) {
	t.Helper()
	lines := readLines(t, path)
	lines[n-1] = edit(lines[n-1])
	writeLines(t, path, lines)
}

// forge gives r a correct hash, as someone who knows the format would.
func forge(t *testing.T, r Record) Record {
	t.Helper()
	h, err := computeHash(r)
	if err != nil {
		t.Fatal(err)
	}
	r.Hash = h
	return r
}

func mustLine(t *testing.T, r Record) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func snapshot(path string) string {
	j, jerr := os.ReadFile(path)
	h, herr := os.ReadFile(headPath(path))
	return fmt.Sprintf("journal %q (%v) head %q (%v)", j, jerr, h, herr)
}

func hasKind(ps []Problem, kind string) bool {
	for _, p := range ps {
		if p.Kind == kind {
			return true
		}
	}
	return false
}

func onlyKinds(ps []Problem, kind string) bool {
	if len(ps) == 0 {
		return false
	}
	for _, p := range ps {
		if p.Kind != kind {
			return false
		}
	}
	return true
}
