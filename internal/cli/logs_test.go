package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/logs"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// Captured `journalctl -u claude-flow.service -o json` lines (fields trimmed).
const capturedJournal = `{"__REALTIME_TIMESTAMP":"1736000000000000","_PID":"812","MESSAGE":"INFO listening on :3000"}
{"__REALTIME_TIMESTAMP":"1736000001000000","_PID":"812","MESSAGE":"ERROR agent spawn failed"}
{"__REALTIME_TIMESTAMP":"1736000002000000","_PID":"812","MESSAGE":[69,82,82,79,82,32,27,91,51,49,109,114,101,100]}
garbage
`

func testIO() (*ui.IO, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &ui.IO{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, NoColor: true}, &out, &errOut
}

func fakeJournal(output string, exitErr error, gotArgs *[]string) logs.JournalFunc {
	return func(_ context.Context, args []string) (io.Reader, func() error, error) {
		*gotArgs = args
		return strings.NewReader(output), func() error { return exitErr }, nil
	}
}

func TestRunLogsJournal(t *testing.T) {
	f, err := parseLogFilter("^ERROR", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	io, out, errOut := testIO()
	opts := &logsOptions{IO: io, Source: logs.JournalSource("claude-flow"), Filter: f, Count: true,
		Reader: logs.Reader{Journal: fakeJournal(capturedJournal, nil, &args), Warn: warner(io)}}
	if err := runLogs(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	if out.String() != "2\n" || !strings.Contains(errOut.String(), "1 journal entries could not be parsed") {
		t.Errorf("stdout %q stderr %q", out, errOut)
	}
	if strings.Join(args, " ") != "-u claude-flow.service -o json --no-pager --quiet" {
		t.Errorf("journalctl args %q", args)
	}

	io, out, _ = testIO()
	opts = &logsOptions{IO: io, JSON: true, Source: logs.JournalSource("claude-flow.service"), Filter: f,
		Reader: logs.Reader{Journal: fakeJournal(capturedJournal, nil, &args)}}
	if err := runLogs(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	want := `{"time":"` + time.UnixMicro(1736000001000000).Format(time.RFC3339Nano) + `","source":"journal","pid":812,"message":"ERROR agent spawn failed"}` + "\n" +
		`{"time":"` + time.UnixMicro(1736000002000000).Format(time.RFC3339Nano) + `","source":"journal","pid":812,"message":"ERROR \u001b[31mred"}` + "\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}

	// journalctl failing is exit 1 with its message.
	io, _, _ = testIO()
	opts = &logsOptions{IO: io, Source: logs.JournalSource("x"), Reader: logs.Reader{Journal: fakeJournal("", errors.New("journalctl: exit status 1: Failed to open"), &args)}}
	if err := runLogs(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "Failed to open") {
		t.Errorf("err = %v", err)
	}
}

func TestParseLogFilter(t *testing.T) {
	now := time.Date(2025, 1, 4, 15, 0, 0, 0, time.UTC)
	f, err := parseLogFilter("", "90m", now)
	if err != nil || !f.Since.Equal(now.Add(-90*time.Minute)) || f.Grep != nil {
		t.Errorf("%+v %v", f, err)
	}
	f, err = parseLogFilter("", "2025-01-04T14:00:00Z", now)
	if err != nil || !f.Since.Equal(time.Date(2025, 1, 4, 14, 0, 0, 0, time.UTC)) {
		t.Errorf("%+v %v", f, err)
	}
	if f, err = parseLogFilter("", "2025-01-04 14:00", now); err != nil || f.Since.Hour() != 14 {
		t.Errorf("%+v %v", f, err)
	}
	for _, bad := range [][2]string{{"(", ""}, {"", "yesterday"}, {"", "-1h"}} {
		if _, err := parseLogFilter(bad[0], bad[1], now); exitCode(err) != ExitUsage {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
