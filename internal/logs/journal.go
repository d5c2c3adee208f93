package logs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// JournalctlArgs are the arguments of the journalctl run for unit: JSON output, never a
// pager, and since as seconds since the epoch (which every journalctl understands, in any
// time zone). Follow adds -f. A Filter's regexp is applied by ScanJournal, not by
// journalctl, whose --grep needs PCRE2.
func JournalctlArgs(unit string, since time.Time, follow bool) []string {
	args := []string{"-u", unit, "-o", "json", "--no-pager", "--quiet"}
	if !since.IsZero() {
		args = append(args, "--since", "@"+strconv.FormatInt(since.Unix(), 10))
	}
	if follow {
		args = append(args, "-f")
	}
	return args
}

// JournalFunc runs journalctl with args and streams its stdout; wait reports its exit once
// the stream is drained (or ctx ended). Journalctl is the real one; tests pass a fake.
type JournalFunc func(ctx context.Context, args []string) (stdout io.Reader, wait func() error, err error)

var _ JournalFunc = Journalctl

// Journalctl runs the real journalctl in its own process group, killed with its group
// when ctx ends.
func Journalctl(ctx context.Context, args []string) (io.Reader, func() error, error) {
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	KillGroupOnCancel(cmd)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("journalctl: %w", err)
	}
	return stdout, func() error {
		err := cmd.Wait()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("journalctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}, nil
}

// KillGroupOnCancel runs cmd in its own process group (the operator's Ctrl-C reaches
// cfrollback, which then ends it) and, when its context ends, kills the whole group; output
// a leftover holds open is given up after 2 s.
func KillGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
}

type journalEntry struct {
	Realtime string          `json:"__REALTIME_TIMESTAMP"`
	Message  json.RawMessage `json:"MESSAGE"`
	PID      string          `json:"_PID"`
}

// ParseJournalEntry reads one line of `journalctl -o json`. MESSAGE is a string, or an
// array of byte values when it is not valid UTF-8 or holds control characters, or null
// when journald dropped a large field.
func ParseJournalEntry(b []byte) (Line, error) {
	var e journalEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return Line{}, fmt.Errorf("journal entry: %w", err)
	}
	l := Line{Source: "journal"}
	if e.Realtime != "" {
		us, err := strconv.ParseInt(e.Realtime, 10, 64)
		if err != nil {
			return Line{}, fmt.Errorf("journal entry: __REALTIME_TIMESTAMP %q: %w", e.Realtime, err)
		}
		l.Time = time.UnixMicro(us)
	}
	l.PID, _ = strconv.Atoi(e.PID)
	switch {
	case len(e.Message) == 0 || string(e.Message) == "null":
	case e.Message[0] == '"':
		if err := json.Unmarshal(e.Message, &l.Message); err != nil {
			return Line{}, fmt.Errorf("journal entry: MESSAGE: %w", err)
		}
	case e.Message[0] == '[':
		var nums []int
		if err := json.Unmarshal(e.Message, &nums); err != nil {
			return Line{}, fmt.Errorf("journal entry: MESSAGE: %w", err)
		}
		bs := make([]byte, 0, len(nums))
		for _, n := range nums {
			bs = append(bs, byte(n)) //nolint:gosec // journald writes a binary MESSAGE as an array of bytes (0-255)
		}
		l.Message = string(bs)
	default:
		return Line{}, fmt.Errorf("journal entry: MESSAGE is neither a string nor a byte array: %.40s", e.Message)
	}
	return l, nil
}

// ScanJournal reads journalctl JSON lines from r until EOF, passing the lines the filter
// selects to emit. A line that does not parse is skipped and counted, not fatal: one odd
// entry must not hide the rest of the log.
func ScanJournal(r io.Reader, f Filter, emit func(Line) error) (bad int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4*maxLine)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		l, err := ParseJournalEntry(sc.Bytes())
		if err != nil {
			bad++
			continue
		}
		if f.Match(l) {
			if err := emit(l); err != nil {
				return bad, err
			}
		}
	}
	return bad, sc.Err()
}
