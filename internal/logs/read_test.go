package logs

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Captured `journalctl -u claude-flow.service -o json` lines (fields trimmed).
const capturedJournal = `{"__REALTIME_TIMESTAMP":"1736000000000000","_PID":"812","MESSAGE":"INFO listening on :3000"}
{"__REALTIME_TIMESTAMP":"1736000001000000","_PID":"812","MESSAGE":"ERROR agent spawn failed"}
{"__REALTIME_TIMESTAMP":"1736000002000000","_PID":"812","MESSAGE":[69,82,82,79,82,32,27,91,51,49,109,114,101,100]}
garbage
`

func fakeJournal(output string, exitErr error, gotArgs *[]string) JournalFunc {
	return func(_ context.Context, args []string) (io.Reader, func() error, error) {
		*gotArgs = args
		return strings.NewReader(output), func() error { return exitErr }, nil
	}
}

func TestReaderJournal(t *testing.T) {
	var args, warnings []string
	r := Reader{Journal: fakeJournal(capturedJournal, nil, &args), Warn: func(m string) { warnings = append(warnings, m) }}
	emit, got := collect(t)
	since := time.UnixMicro(1736000000500000)
	if err := r.Read(t.Context(), JournalSource("claude-flow"), Filter{Since: since, Grep: mustRE(t, "^ERROR")}, true, emit); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got(), "|") != "ERROR agent spawn failed|ERROR \x1b[31mred" {
		t.Errorf("%q", got())
	}
	if strings.Join(args, " ") != "-u claude-flow.service -o json --no-pager --quiet --since @1736000000 -f" {
		t.Errorf("journalctl args %q", args)
	}
	if strings.Join(warnings, "|") != "1 journal entries could not be parsed and were skipped" {
		t.Errorf("warnings %q", warnings)
	}
	// journalctl failing is an error with its message.
	r.Journal = fakeJournal("", errors.New("journalctl: exit status 1: Failed to open"), &args)
	if err := r.Read(t.Context(), JournalSource("x"), Filter{}, false, emit); err == nil || !strings.Contains(err.Error(), "Failed to open") {
		t.Errorf("err = %v", err)
	}
}

func TestReaderFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	writeFile(t, a, "ERROR one\nINFO two\n")
	var warnings []string
	r := Reader{Warn: func(m string) { warnings = append(warnings, m) }}
	emit, got := collect(t)
	src := Source{Files: []string{a, b}, Desc: "test"}
	if err := r.Read(t.Context(), src, Filter{Grep: mustRE(t, "ERROR")}, false, emit); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got(), "|") != "ERROR one" || len(warnings) != 1 || !strings.Contains(warnings[0], "b.log") {
		t.Errorf("lines %q, warnings %q", got(), warnings)
	}
	if err := r.Read(t.Context(), Source{Files: []string{b}, Desc: "test"}, Filter{}, false, emit); !errors.Is(err, ErrNoFiles) {
		t.Errorf("nothing readable: %v", err)
	}
}

// TestTail: each Read passes only what arrived since the last one; a file rotated away and
// back is read from its start.
func TestTail(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	writeFile(t, p, "before the tail started\n")
	tail := NewTail(Reader{}, Source{Files: []string{p}}, time.Now())
	read := func() string {
		t.Helper()
		emit, got := collect(t)
		if err := tail.Read(t.Context(), time.Now(), emit); err != nil {
			t.Fatal(err)
		}
		return strings.Join(got(), "|")
	}
	if got := read(); got != "" {
		t.Errorf("first read %q", got)
	}
	fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("one\ntwo\n")
	fh.Close()
	if got := read(); got != "one|two" {
		t.Errorf("second read %q", got)
	}
	if got := read(); got != "" {
		t.Errorf("third read %q", got)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "" {
		t.Errorf("rotated away: %q", got)
	}
	writeFile(t, p, "new file\n")
	if got := read(); got != "new file" {
		t.Errorf("after rotation %q", got)
	}

	// The journal is read from the last read's time.
	var args []string
	jt := NewTail(Reader{Journal: fakeJournal("", nil, &args)}, JournalSource("u"), time.Unix(1700000000, 0))
	if err := jt.Read(t.Context(), time.Unix(1700000005, 0), func(Line) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := jt.Read(t.Context(), time.Unix(1700000010, 0), func(Line) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(args, " ") != "-u u.service -o json --no-pager --quiet --since @1700000005" {
		t.Errorf("args %q", args)
	}
}
