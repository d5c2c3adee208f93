package journal

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Record is one line of the journal.
type Record struct {
	Seq   int64           `json:"seq"`            // 1-based, contiguous
	Time  time.Time       `json:"time"`           // RFC 3339 with nanoseconds, UTC
	RunID string          `json:"run_id"`         // groups the records of one run
	Event string          `json:"event"`          // intent, step_start, step_done, step_failed, outcome, recovered, note, ...
	Step  string          `json:"step,omitempty"` // the step a step_* event is about
	Data  json.RawMessage `json:"data,omitempty"` // an event-specific JSON object
	Prev  string          `json:"prev"`           // Hash of the record before, "" for seq 1
	Hash  string          `json:"hash"`           // hex SHA-256 of this record's JSON with Hash ""
}

// maxLine bounds one journal line. Append refuses larger records and readers
// treat a longer line as malformed instead of buffering it whole.
const maxLine = 4 << 20

// canonical is the JSON that Hash is computed over.
func canonical(r Record) ([]byte, error) {
	r.Hash = ""
	return json.Marshal(r)
}

// computeHash returns the hash r should carry.
func computeHash(r Record) (string, error) {
	b, err := canonical(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// lineKind is what a journal line turned out to be.
type lineKind int

const (
	lineRecord    lineKind = iota
	lineTorn               // what a crash in the middle of a write leaves
	lineMalformed          // anything else that is not a record
)

// parseLine decodes one line (without its newline). A torn line is a
// strict prefix of a JSON object, optionally followed by NUL bytes (some
// filesystems extend the file before the data reaches the disk), or NULs
// alone, or nothing. Everything else that does not decode into a record
// with a seq and an event is malformed.
func parseLine(line []byte) (Record, lineKind, error) {
	var r Record
	if len(line) > maxLine {
		return r, lineMalformed, fmt.Errorf("line is longer than %d bytes", maxLine)
	}
	trimmed := bytes.TrimLeft(line, " \t\r")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if isTorn(line) {
			return r, lineTorn, errors.New("incomplete record (a write was interrupted)")
		}
		return r, lineMalformed, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(line, &r); err != nil {
		// Only a line that does not decode can be torn: the check is a second
		// parse, so it is not paid for every record.
		if isTorn(line) {
			return Record{}, lineTorn, errors.New("incomplete record (a write was interrupted)")
		}
		return Record{}, lineMalformed, err
	}
	if r.Seq < 1 {
		return Record{}, lineMalformed, errors.New("no seq")
	}
	if r.Event == "" {
		return Record{}, lineMalformed, errors.New("no event")
	}
	return r, lineRecord, nil
}

func isTorn(line []byte) bool {
	b := bytes.TrimRight(line, "\x00")
	if len(b) == 0 {
		return true
	}
	if b[0] != '{' {
		return false
	}
	var v json.RawMessage
	err := json.NewDecoder(bytes.NewReader(b)).Decode(&v)
	return errors.Is(err, io.ErrUnexpectedEOF)
}

// lineReader yields the lines of a journal with their 1-based numbers,
// without holding more than maxLine bytes of any one line.
type lineReader struct {
	r   *bufio.Reader
	n   int   // number of the line last returned
	off int64 // offset of the line last returned, from where the reader began
	pos int64 // bytes consumed
	buf []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline, whether it ended with a
// newline, and io.EOF after the last line. A line longer than maxLine is
// returned cut to maxLine+1 bytes, which parseLine rejects.
func (lr *lineReader) next() (line []byte, terminated bool, err error) {
	lr.buf = lr.buf[:0]
	start := lr.pos
	for {
		chunk, err := lr.r.ReadSlice('\n')
		lr.pos += int64(len(chunk))
		if len(lr.buf) <= maxLine {
			room := maxLine + 1 - len(lr.buf)
			lr.buf = append(lr.buf, chunk[:min(len(chunk), room)]...)
		}
		switch {
		case err == nil:
			lr.n++
			lr.off = start
			return bytes.TrimSuffix(lr.buf, []byte("\n")), true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(lr.buf) == 0 {
				return nil, false, io.EOF
			}
			lr.n++
			lr.off = start
			return lr.buf, false, nil
		default:
			return nil, false, err
		}
	}
}

// The events of a run, in the order they are written. A procedure writes intent first (what
// it is about to do, before it changes anything), then step_start / step_done / step_failed
// per step, then outcome; verify and assess are recorded against a run afterwards. Readers
// (Runs, recovery, history, report) know a run by these names.
const (
	EventIntent     = "intent"
	EventStepStart  = "step_start"
	EventStepDone   = "step_done"
	EventStepFailed = "step_failed"
	EventOutcome    = "outcome"
	EventVerify     = "verify"
	EventAssess     = "assess"
	// EventRecovered closes a run that a later run completed or undid (crash recovery).
	EventRecovered = "recovered"
	// EventGuard is a decision of `cfrollback guard`: under the emergency's run id when guard
	// acted, else under the guard's own session id (a session of its own in history).
	EventGuard = "guard"
)
