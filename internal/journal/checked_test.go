package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadCheckedTrust: which records the chain still vouches for after each kind of damage.
func TestReadCheckedTrust(t *testing.T) {
	cases := []struct {
		name          string
		damage        func(t *testing.T, path string)
		untrustedFrom int64 // 0: every record holds; -1: ReadChecked fails
		warning       string
	}{
		{"intact", func(*testing.T, string) {}, 0, ""},
		{"torn tail (a crash during an append)", func(t *testing.T, path string) {
			appendRaw(t, path, `{"seq":6,"run_id":"run-1","ev`)
		}, 0, "every record it still holds passes"},
		{"last record cut", func(t *testing.T, path string) {
			lines := readLines(t, path)
			writeLines(t, path, lines[:4])
		}, 0, "records were removed from the end"},
		{"a forged record appended with a good prev", func(t *testing.T, path string) {
			recs, _ := ReadAll(path)
			r := forge(t, Record{Seq: 6, Time: time.Now().UTC(), RunID: "x", Event: "outcome", Prev: recs[4].Hash})
			appendRaw(t, path, mustLine(t, r)+"\n")
		}, 6, "UNVERIFIED"},
		{"the whole journal rewritten (head names another record)", func(t *testing.T, path string) {
			writeFile(t, headPath(path), []byte(`{"seq":3,"hash":"abc"}`))
		}, 1, "UNVERIFIED"},
		{"head garbage", func(t *testing.T, path string) {
			writeFile(t, headPath(path), []byte("x"))
		}, 1, "UNVERIFIED"},
		{"record 3 edited", func(t *testing.T, path string) {
			editLine(t, path, 3, func(l string) string { return strings.Replace(l, `"n":3`, `"n":33`, 1) })
		}, 3, "UNVERIFIED"},
		{"record 2 deleted", func(t *testing.T, path string) {
			lines := readLines(t, path)
			writeLines(t, path, append(lines[:1:1], lines[2:]...))
		}, 3, "UNVERIFIED"},
		{"a line that is not a record", func(t *testing.T, path string) {
			lines := readLines(t, path)
			writeLines(t, path, append(append(lines[:2:2], "not json at all"), lines[2:]...))
		}, -1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeJournal(t, 5)
			c.damage(t, path)
			jc, err := ReadChecked(path)
			if c.untrustedFrom < 0 {
				// ReadAll refuses a malformed line (callers that must go on read leniently:
				// runbook.readLenient); the error names the line.
				if err == nil || !strings.Contains(err.Error(), "line 3") {
					t.Fatalf("err = %v, want one naming line 3", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if jc.UntrustedFrom != c.untrustedFrom {
				t.Fatalf("UntrustedFrom = %d, want %d (problems %v)", jc.UntrustedFrom, c.untrustedFrom, jc.Problems)
			}
			for _, r := range jc.Records {
				want := c.untrustedFrom == 0 || r.Seq < c.untrustedFrom
				if jc.RecordTrusted(r.Seq) != want {
					t.Errorf("RecordTrusted(%d) = %v, want %v", r.Seq, !want, want)
				}
			}
			w := jc.Warning(path)
			if (c.warning == "") != (w == "") || !strings.Contains(w, c.warning) {
				t.Fatalf("Warning = %q, want it to contain %q", w, c.warning)
			}
		})
	}
}

// TestReadersRefuseAFIFOWithoutBlocking: a FIFO planted at the journal path is an error
// for ReadAll and Verify, at once (no writer ever opens it).
func TestReadersRefuseAFIFOWithoutBlocking(t *testing.T) {
	path := newPath(t)
	if err := os.MkdirAll(strings.TrimSuffix(path, "/journal.jsonl"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { _, err := ReadAll(path); done <- err }()
	go func() { _, err := Verify(path); done <- err }()
	for i := 0; i < 2; i++ {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "FIFO") && !strings.Contains(err.Error(), "not a regular file") {
				t.Fatalf("err = %v, want a not-a-regular-file error", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a reader blocked on a FIFO journal")
		}
	}
}

func appendRaw(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkReadChecked: the cost of verifying the chain on every read (history, report,
// emergency recovery, undo, prune). Per record it is one JSON decode, one encode and one
// SHA-256; the cost grows linearly with the journal.
func BenchmarkReadChecked(b *testing.B) {
	path := filepath.Join(b.TempDir(), "journal.jsonl")
	j, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	const records = 3000 // ~200 runs of ~14 records (creating it appends with fsync: ~30 s)
	for i := 0; i < records; i++ {
		if _, err := j.Append(fmt.Sprintf("run-%d", i/14), "step_done", "swap", map[string]any{"n": i, "backup": "/var/backups/claude-flow/backup-20250104-140000.tar.gz"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b.ReportMetric(float64(fi.Size())/1e6, "MB")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		jc, err := ReadChecked(path)
		if err != nil || len(jc.Records) != records || jc.UntrustedFrom != 0 {
			b.Fatalf("%v %d %d", err, len(jc.Records), jc.UntrustedFrom)
		}
	}
}
