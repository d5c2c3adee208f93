package health

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// Log lines are health evidence too: `cfrollback logs --grep ERROR --since
// 1h --count` is the seed's error count, and verify, monitor and assess count
// error lines. This file reads them from journalctl's JSON output and from
// plain log files; the cli decides which source a service has.

// LogLine is one line of the service's log.
type LogLine struct {
	Time    time.Time // zero when the line carries no time (plain files)
	Source  string    // "journal" or the file's path
	Message string
	PID     int // journal only; 0 when unknown
}

// LogFilter selects lines. A zero filter selects everything.
type LogFilter struct {
	Since time.Time      // zero: no lower bound; undated lines always pass
	Grep  *regexp.Regexp // nil: every line
}

// Match applies the filter.
func (f LogFilter) Match(l LogLine) bool {
	if !f.Since.IsZero() && !l.Time.IsZero() && l.Time.Before(f.Since) {
		return false
	}
	return f.Grep == nil || f.Grep.MatchString(l.Message)
}

// maxLine bounds one log line; a longer one is cut, not an error.
const maxLine = 1 << 20

// ---- journald ----

// JournalctlArgs are the arguments of the journalctl run for unit: JSON
// output, never a pager, and --since as seconds since the epoch (which every
// journalctl understands, in any time zone). Follow adds -f. The filter's
// regexp is applied here, not by journalctl, whose --grep needs PCRE2.
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

type journalEntry struct {
	Realtime string          `json:"__REALTIME_TIMESTAMP"`
	Message  json.RawMessage `json:"MESSAGE"`
	PID      string          `json:"_PID"`
}

// ParseJournalEntry reads one line of `journalctl -o json`. MESSAGE is a
// string, or an array of byte values when it is not valid UTF-8 or holds
// control characters, or null when journald dropped a large field.
func ParseJournalEntry(b []byte) (LogLine, error) {
	var e journalEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return LogLine{}, fmt.Errorf("journal entry: %w", err)
	}
	l := LogLine{Source: "journal"}
	if e.Realtime != "" {
		us, err := strconv.ParseInt(e.Realtime, 10, 64)
		if err != nil {
			return LogLine{}, fmt.Errorf("journal entry: __REALTIME_TIMESTAMP %q: %w", e.Realtime, err)
		}
		l.Time = time.UnixMicro(us)
	}
	l.PID, _ = strconv.Atoi(e.PID)
	switch {
	case len(e.Message) == 0 || string(e.Message) == "null":
	case e.Message[0] == '"':
		if err := json.Unmarshal(e.Message, &l.Message); err != nil {
			return LogLine{}, fmt.Errorf("journal entry: MESSAGE: %w", err)
		}
	case e.Message[0] == '[':
		var bs []byte
		var nums []int
		if err := json.Unmarshal(e.Message, &nums); err != nil {
			return LogLine{}, fmt.Errorf("journal entry: MESSAGE: %w", err)
		}
		for _, n := range nums {
			bs = append(bs, byte(n))
		}
		l.Message = string(bs)
	default:
		return LogLine{}, fmt.Errorf("journal entry: MESSAGE is neither a string nor a byte array: %.40s", e.Message)
	}
	return l, nil
}

// ScanJournal reads journalctl JSON lines from r until EOF, passing the lines
// the filter selects to emit. A line that does not parse is skipped and
// counted, not fatal: one odd entry must not hide the rest of the log.
func ScanJournal(r io.Reader, f LogFilter, emit func(LogLine) error) (bad int, err error) {
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

// ---- plain files ----

// lineTimeRE finds a timestamp at the start of a line, optionally in
// brackets: "2025-01-04T14:00:00Z", "2025-01-04 14:00:00.123", pm2's
// "2025-01-04T14:00:00: msg" (pm2 --time), "[2025-01-04 14:00:00+02:00]".
var lineTimeRE = regexp.MustCompile(`^\[?(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?`)

// LineTime parses the timestamp a plain log line starts with; one without a
// zone is local time.
func LineTime(text string) (time.Time, bool) {
	m := lineTimeRE.FindStringSubmatch(text)
	if m == nil {
		return time.Time{}, false
	}
	s := m[1] + "T" + m[2] + m[3]
	zone := m[4]
	if len(zone) == 5 { // +0200 -> +02:00
		zone = zone[:3] + ":" + zone[3:]
	}
	if zone == "" {
		t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.Local)
		return t, err == nil
	}
	t, err := time.Parse(time.RFC3339Nano, s+zone)
	return t, err == nil
}

// ScanFile reads the plain log file path from offset, dating each line by
// its leading timestamp; a line without one (a stack trace, a continuation)
// takes the time of the line above it. Lines before the first dated line are
// undated and pass any --since. A file last modified before f.Since is
// skipped without reading: nothing in it can be newer. It returns the offset
// after the last complete line, for FollowFile.
func ScanFile(ctx context.Context, path string, offset int64, f LogFilter, emit func(LogLine) error) (int64, error) {
	// A FIFO or device given as a log is refused, not waited on or read forever.
	fh, fi, err := fsutil.OpenRegular(path)
	if err != nil {
		return offset, err
	}
	defer fh.Close()
	if !f.Since.IsZero() && fi.ModTime().Before(f.Since) {
		return fi.Size(), nil
	}
	if offset > fi.Size() {
		offset = 0 // truncated or rotated in place: start again
	}
	if _, err := fh.Seek(offset, io.SeekStart); err != nil {
		return offset, err
	}
	br := bufio.NewReaderSize(fh, 64<<10)
	var last time.Time
	for {
		if ctx.Err() != nil {
			return offset, ctx.Err()
		}
		line, err := readLine(br)
		if errors.Is(err, io.EOF) {
			// A last line without a newline may still be being written;
			// FollowFile reads it once it is complete.
			return offset, nil
		}
		if err != nil {
			return offset, err
		}
		offset += int64(line.n)
		if t, ok := LineTime(line.text); ok {
			last = t
		}
		l := LogLine{Time: last, Source: path, Message: line.text}
		if f.Match(l) {
			if err := emit(l); err != nil {
				return offset, err
			}
		}
	}
}

type rawLine struct {
	text string
	n    int // bytes consumed, newline included
}

// readLine returns the next complete line (without "\n" or "\r\n"), cut at
// maxLine; io.EOF when no complete line is left.
func readLine(br *bufio.Reader) (rawLine, error) {
	var buf []byte
	n := 0
	for {
		chunk, err := br.ReadSlice('\n')
		n += len(chunk)
		if len(buf) < maxLine {
			buf = append(buf, chunk[:min(len(chunk), maxLine-len(buf))]...)
		}
		switch {
		case err == nil:
			s := string(buf)
			s = s[:len(s)-len(trailingNewline(s))]
			return rawLine{text: s, n: n}, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			if n > 0 {
				// Put nothing back: the caller re-reads from its offset.
				return rawLine{}, io.EOF
			}
			return rawLine{}, err
		}
	}
}

func trailingNewline(s string) string {
	switch {
	case len(s) >= 2 && s[len(s)-2:] == "\r\n":
		return "\r\n"
	case len(s) >= 1 && s[len(s)-1] == '\n':
		return "\n"
	}
	return ""
}

// FollowFile keeps reading path from offset every poll until ctx ends,
// starting again from the top when the file shrinks (truncated or replaced
// by rotation). It returns nil when ctx ends.
func FollowFile(ctx context.Context, path string, offset int64, poll time.Duration, f LogFilter, emit func(LogLine) error) error {
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	f.Since = time.Time{} // everything that arrives now is new
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
		next, err := ScanFile(ctx, path, offset, f, emit)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, os.ErrNotExist):
			next = 0 // rotated away; wait for the new file
		case err != nil:
			return err
		}
		offset = next
	}
}
