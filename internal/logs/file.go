package logs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// ErrForeignLink is returned for a log file reached through a symbolic link that a user
// other than root or cfrollback's own owns: it is not followed.
var ErrForeignLink = errors.New("reached through a symbolic link owned by another user")

// errReplaced: the path named another file after the open than before (a rotation, or a
// link swapped around the open).
var errReplaced = errors.New("replaced while being opened; not read")

// OpenFile opens the plain log file path for reading. Like fsutil.OpenRegular it refuses,
// without blocking, anything but a regular file (a FIFO, a device, a directory:
// fsutil.ErrNotRegular); and it refuses a path that resolves through a symbolic link owned
// by another user (ErrForeignLink). The links are checked again after the open and the
// opened file must be the one the path names then, so a link swapped in and out around the
// open is caught too.
func OpenFile(path string) (*os.File, os.FileInfo, error) {
	if err := checkLinks(path); err != nil {
		return nil, nil, err
	}
	fh, fi, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, nil, err
	}
	if err := checkLinks(path); err != nil {
		_ = fh.Close()
		return nil, nil, err
	}
	if now, err := os.Stat(path); err != nil || !os.SameFile(now, fi) {
		_ = fh.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, errReplaced)
	}
	return fh, fi, nil
}

func checkLinks(path string) error {
	err := fsutil.CheckLinks(path)
	var ue *fsutil.UntrustedDirError
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w (%s, uid %d); not followed", path, ErrForeignLink, ue.Dir, ue.UID)
	}
	return err
}

// lineTimeRE finds a timestamp at the start of a line, optionally in brackets:
// "2025-01-04T14:00:00Z", "2025-01-04 14:00:00.123", pm2's "2025-01-04T14:00:00: msg"
// (pm2 --time), "[2025-01-04 14:00:00+02:00]".
var lineTimeRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\[?(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?`)
})

// LineTime parses the timestamp a plain log line starts with; one without a zone is local
// time.
func LineTime(text string) (time.Time, bool) {
	m := lineTimeRE().FindStringSubmatch(text)
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

// ScanFile reads the plain log file path from offset, dating each line by its leading
// timestamp; a line without one (a stack trace, a continuation) takes the time of the
// line above it. Lines before the first dated line are undated and pass any Since. A file
// last modified before f.Since is skipped without reading: nothing in it can be newer. It
// returns the offset after the last complete line, for FollowFile. The file is opened with
// OpenFile.
func ScanFile(ctx context.Context, path string, offset int64, f Filter, emit func(Line) error) (int64, error) {
	fh, fi, err := OpenFile(path)
	if err != nil {
		return offset, err
	}
	defer fh.Close() //nolint:errcheck // opened read-only: nothing to lose
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
			// A last line without a newline may still be being written; FollowFile reads
			// it once it is complete.
			return offset, nil
		}
		if err != nil {
			return offset, err
		}
		offset += int64(line.n)
		if t, ok := LineTime(line.text); ok {
			last = t
		}
		l := Line{Time: last, Source: path, Message: line.text}
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

// readLine returns the next complete line (without "\n" or "\r\n"), cut at maxLine;
// io.EOF when no complete line is left.
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

// FollowFile keeps reading path from offset every poll until ctx ends, starting again from
// the top when the file shrinks (truncated or replaced by rotation). It returns nil when
// ctx ends.
func FollowFile(ctx context.Context, path string, offset int64, poll time.Duration, f Filter, emit func(Line) error) error {
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
		case errors.Is(err, errReplaced):
			next = offset // rotated while being opened: again at the next poll
		case err != nil:
			return err
		}
		offset = next
	}
}
