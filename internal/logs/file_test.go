package logs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// Captured from `journalctl -u echoer -o json` (systemd 252) in the systemd
// sandbox, trimmed to the fields that matter plus a few that do not; the
// byte-array and null MESSAGE forms are what journalctl writes for a
// message with control characters and for a dropped large field.
const journalSample = `{"__MONOTONIC_TIMESTAMP":"3048005830","_HOSTNAME":"vm","__REALTIME_TIMESTAMP":"1795805266033081","_TRANSPORT":"stdout","_SYSTEMD_UNIT":"echoer.service","_PID":"47","SYSLOG_IDENTIFIER":"sh","MESSAGE":"hello-one","PRIORITY":"6"}
{"_UID":"0","PRIORITY":"6","_SYSTEMD_UNIT":"echoer.service","_PID":"47","__REALTIME_TIMESTAMP":"1795805266033090","MESSAGE":"ERROR two","_TRANSPORT":"stdout"}
{"__REALTIME_TIMESTAMP":"1795805267000000","_PID":"47","MESSAGE":[69,82,82,79,82,27,91,48,109,32,99,111,108,111,117,114]}
{"__REALTIME_TIMESTAMP":"1795805268000000","_PID":"47","MESSAGE":null}
not json at all

{"__REALTIME_TIMESTAMP":"1795805269000000","MESSAGE":{"odd":1}}
{"__REALTIME_TIMESTAMP":"1795805270000000","_PID":"48","MESSAGE":"ERROR after restart"}
`

func TestParseJournalEntry(t *testing.T) {
	lines := strings.Split(journalSample, "\n")
	l, err := ParseJournalEntry([]byte(lines[0]))
	if err != nil || l.Message != "hello-one" || l.PID != 47 || l.Source != "journal" ||
		!l.Time.Equal(time.UnixMicro(1795805266033081)) {
		t.Fatalf("%+v, %v", l, err)
	}
	l, err = ParseJournalEntry([]byte(lines[2]))
	if err != nil || l.Message != "ERROR\x1b[0m colour" {
		t.Fatalf("byte array: %q, %v", l.Message, err)
	}
	l, err = ParseJournalEntry([]byte(lines[3]))
	if err != nil || l.Message != "" {
		t.Fatalf("null: %+v, %v", l, err)
	}
	if _, err := ParseJournalEntry([]byte(lines[4])); err == nil {
		t.Fatal("not JSON parsed")
	}
	if _, err := ParseJournalEntry([]byte(lines[6])); err == nil {
		t.Fatal("object MESSAGE parsed")
	}
	if _, err := ParseJournalEntry([]byte(`{"__REALTIME_TIMESTAMP":"soon"}`)); err == nil {
		t.Fatal("bad timestamp parsed")
	}
}

func TestScanJournal(t *testing.T) {
	var got []string
	f := Filter{Grep: regexp.MustCompile(`^ERROR`), Since: time.UnixMicro(1795805266033085)}
	bad, err := ScanJournal(strings.NewReader(journalSample), f, func(l Line) error {
		got = append(got, l.Message)
		return nil
	})
	if err != nil || bad != 2 {
		t.Fatalf("bad %d, err %v", bad, err)
	}
	if strings.Join(got, "|") != "ERROR two|ERROR\x1b[0m colour|ERROR after restart" {
		t.Fatalf("%q", got)
	}
}

func TestJournalctlArgs(t *testing.T) {
	got := strings.Join(JournalctlArgs("claude-flow.service", time.Unix(1700000000, 0), true), " ")
	if got != "-u claude-flow.service -o json --no-pager --quiet --since @1700000000 -f" {
		t.Errorf("%s", got)
	}
	if got := strings.Join(JournalctlArgs("x.service", time.Time{}, false), " "); got != "-u x.service -o json --no-pager --quiet" {
		t.Errorf("%s", got)
	}
}

func TestLineTime(t *testing.T) {
	local := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for line, want := range map[string]time.Time{
		"2025-01-04T14:00:00Z ERROR x":            time.Date(2025, 1, 4, 14, 0, 0, 0, time.UTC),
		"2025-01-04T14:00:00.250+02:00 msg":       time.Date(2025, 1, 4, 12, 0, 0, 250e6, time.UTC),
		"2025-01-04 14:00:00 msg":                 local("2025-01-04 14:00:00"),
		"2025-01-04T14:00:00: pm2 --time line":    local("2025-01-04 14:00:00"),
		"[2025-01-04 14:00:00+0100] bracketed":    time.Date(2025, 1, 4, 13, 0, 0, 0, time.UTC),
		"    at Object.<anonymous> (/app/x.js:1)": {},
		"ERROR 2025-01-04T14:00:00Z not leading":  {},
	} {
		got, ok := LineTime(line)
		if ok != !want.IsZero() || !got.Equal(want) {
			t.Errorf("LineTime(%q) = %s, %v; want %s", line, got, ok, want)
		}
	}
}

func collect(t *testing.T) (func(Line) error, func() []string) {
	var mu sync.Mutex
	var got []string
	return func(l Line) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, l.Message)
			return nil
		}, func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), got...)
		}
}

func TestScanFileSince(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	writeFile(t, p, "preamble without time\n"+
		"2025-01-04T12:00:00Z ERROR old\n"+
		"    at old stack\n"+
		"2025-01-04T14:00:00Z ERROR new\n"+
		"    at new stack\r\n"+
		"2025-01-04T14:05:00Z INFO fine\n"+
		"partial line still being writ")
	emit, got := collect(t)
	f := Filter{Since: time.Date(2025, 1, 4, 13, 0, 0, 0, time.UTC), Grep: regexp.MustCompile(`ERROR|stack|preamble`)}
	off, err := ScanFile(t.Context(), p, 0, f, emit)
	if err != nil {
		t.Fatal(err)
	}
	// The undated preamble passes; the old line's stack trace is as old as it is.
	if strings.Join(got(), "|") != "preamble without time|2025-01-04T14:00:00Z ERROR new|    at new stack" {
		t.Errorf("%q", got())
	}
	if fi, _ := os.Stat(p); off != fi.Size()-int64(len("partial line still being writ")) {
		t.Errorf("offset %d stops after the last complete line", off)
	}

	// A file last modified before --since is not read.
	old := time.Date(2025, 1, 4, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	emit2, got2 := collect(t)
	if _, err := ScanFile(t.Context(), p, 0, f, emit2); err != nil || len(got2()) != 0 {
		t.Errorf("old file: %q, %v", got2(), err)
	}
	if _, err := ScanFile(t.Context(), filepath.Join(dir, "missing.log"), 0, Filter{}, emit2); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

func TestScanFileLongLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, p, strings.Repeat("x", maxLine+100)+"\nnext\n")
	emit, got := collect(t)
	if _, err := ScanFile(t.Context(), p, 0, Filter{}, emit); err != nil {
		t.Fatal(err)
	}
	if g := got(); len(g) != 2 || len(g[0]) != maxLine || g[1] != "next" {
		t.Errorf("%d lines, first %d bytes", len(g), len(g[0]))
	}
}

func TestFollowFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, p, "old line\n")
	emit, got := collect(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- FollowFile(ctx, p, int64(len("old line\n")), 5*time.Millisecond, Filter{Grep: regexp.MustCompile("ERROR")}, emit)
	}()
	waitFor := func(want string) {
		t.Helper()
		for ctx.Err() == nil {
			if strings.Join(got(), "|") == want {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("got %q, want %q", got(), want)
	}
	fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("ERROR one\nINFO two\nERROR thr")
	waitFor("ERROR one")
	fh.WriteString("ee\n")
	waitFor("ERROR one|ERROR three")
	fh.Close()
	// Truncated in place (copytruncate rotation): read again from the top.
	writeFile(t, p, "ERROR after rotation\n")
	waitFor("ERROR one|ERROR three|ERROR after rotation")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func mustRE(t *testing.T, s string) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return re
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// foreignLink makes a symbolic link at link to target owned by another user (nobody);
// only root can, so the test needs root.
func foreignLink(t *testing.T, target, link string) {
	t.Helper()
	testenv.RequireRoot(t) // to make a link owned by another user
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
}

func TestOpenFileRefusesForeignLinksAndSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	writeFile(t, secret, "root only\n")
	own := filepath.Join(dir, "own.log")
	if err := os.Symlink(secret, own); err != nil {
		t.Fatal(err)
	}
	// A link of our own is followed.
	if fh, _, err := OpenFile(own); err != nil {
		t.Fatalf("own link: %v", err)
	} else {
		fh.Close()
	}
	fifo := filepath.Join(dir, "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// O_NONBLOCK: returns at once, no writer needed.
	if _, _, err := OpenFile(fifo); !errors.Is(err, fsutil.ErrNotRegular) {
		t.Errorf("fifo: %v", err)
	}
	foreignLink(t, secret, filepath.Join(dir, "app.log"))
	_, _, err := OpenFile(filepath.Join(dir, "app.log"))
	if !errors.Is(err, ErrForeignLink) || !strings.Contains(err.Error(), "uid 65534") {
		t.Errorf("foreign link: %v", err)
	}
	// ScanFile reads nothing through it.
	emit, got := collect(t)
	if _, err := ScanFile(t.Context(), filepath.Join(dir, "app.log"), 0, Filter{}, emit); !errors.Is(err, ErrForeignLink) || len(got()) != 0 {
		t.Errorf("ScanFile through a foreign link: %q, %v", got(), err)
	}
}
