package logs

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// journaldSandbox boots a systemd sandbox and starts journald inside it.
// The sandbox does not run journald by itself; with a Storage=volatile
// drop-in in the sandbox's private /run, journald keeps its files in the
// sandbox's /run/log/journal and never writes to the host's /var/log/journal.
func journaldSandbox(t *testing.T) *testenv.SystemdSandbox {
	t.Helper()
	sb := testenv.Systemd(t)
	root := fmt.Sprintf("/proc/%d/root", sb.PID)
	for _, u := range []string{"systemd-journald.socket", "systemd-journald.service"} {
		b, err := os.ReadFile(filepath.Join("/lib/systemd/system", u))
		testenv.Require(t, err == nil, u, "apt-get install systemd")
		if err := os.WriteFile(filepath.Join(sb.UnitDir, u), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	confDir := filepath.Join(root, "run/systemd/journald.conf.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "volatile.conf"), []byte("[Journal]\nStorage=volatile\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Exec("systemctl", "daemon-reload"); err != nil {
		t.Fatal(err)
	}
	if out, err := sb.Exec("systemctl", "start", "systemd-journald.socket", "systemd-journald.service"); err != nil {
		t.Fatalf("start journald in the sandbox: %v\n%s", err, out)
	}
	return sb
}

// sandboxJournalctl runs journalctl inside the sandbox, reading only the
// sandbox's own journal directory (never the host's journal).
func sandboxJournalctl(ctx context.Context, sb *testenv.SystemdSandbox, args []string) (io.ReadCloser, *exec.Cmd, error) {
	full := append([]string{"-t", fmt.Sprint(sb.PID), "-m", "-p", "-u", "journalctl", "--directory=/run/log/journal"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	return out, cmd, cmd.Start()
}

// TestJournalRealSystemd reads a real unit's lines through journalctl -o
// json, as `cfrollback logs` does for a systemd service, then follows it.
func TestJournalRealSystemd(t *testing.T) {
	testenv.RequireTool(t, "nsenter")
	sb := journaldSandbox(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	const unit = "cfr-logs-echo.service"
	if err := sb.WriteUnit(unit, "[Service]\nExecStart=/bin/sh -c 'echo INFO starting; echo \"ERROR db locked\"; printf \"ERROR \\\\033[1mbold\\\\033[0m\\\\n\"; sleep 60'\n"); err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Minute)
	if out, err := sb.Exec("systemctl", "start", unit); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	var got []string
	var lines []Line
	for attempt := 0; attempt < 50 && len(got) < 2; attempt++ {
		time.Sleep(100 * time.Millisecond)
		got, lines = nil, nil
		out, cmd, err := sandboxJournalctl(ctx, sb, JournalctlArgs(unit, since, false))
		if err != nil {
			t.Fatal(err)
		}
		f := Filter{Since: since, Grep: mustRE(t, "^ERROR")}
		bad, err := ScanJournal(out, f, func(l Line) error {
			got = append(got, l.Message)
			lines = append(lines, l)
			return nil
		})
		if werr := cmd.Wait(); err != nil || werr != nil || bad != 0 {
			t.Fatalf("journalctl: scan %v, exit %v, %d bad entries", err, werr, bad)
		}
	}
	// The line with escape codes comes as a byte array; ScanJournal turns it back into text.
	if strings.Join(got, "|") != "ERROR db locked|ERROR \x1b[1mbold\x1b[0m" {
		t.Fatalf("lines: %q", got)
	}
	for _, l := range lines {
		if l.PID == 0 || l.Time.Before(since) || time.Since(l.Time) > time.Minute {
			t.Errorf("entry: %+v", l)
		}
	}

	// Follow: lines written after journalctl -f started arrive, and
	// cancelling the context ends it.
	fctx, fcancel := context.WithCancel(ctx)
	out, cmd, err := sandboxJournalctl(fctx, sb, JournalctlArgs("cfr-logs-late.service", time.Time{}, true))
	if err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 8)
	go func() {
		_, _ = ScanJournal(out, Filter{Grep: mustRE(t, "late")}, func(l Line) error {
			found <- l.Message
			return nil
		})
		close(found)
	}()
	if err := sb.WriteUnit("cfr-logs-late.service", "[Service]\nType=oneshot\nExecStart=/bin/echo a late line\n"); err != nil {
		t.Fatal(err)
	}
	if out, err := sb.Exec("systemctl", "start", "cfr-logs-late.service"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	select {
	case msg := <-found:
		if msg != "a late line" {
			t.Errorf("followed %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("journalctl -f did not deliver the late line within 10s")
	}
	fcancel()
	_ = cmd.Wait()
	for range found {
	}
}
