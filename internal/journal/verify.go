package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// Problem kinds, for callers that act on them; Reason is for people.
const (
	ProblemMalformed = "malformed"     // a line that is not a record
	ProblemTorn      = "torn"          // a record whose write was interrupted
	ProblemHash      = "hash_mismatch" // a record changed after it was written
	ProblemCanonical = "not_canonical" // the hash holds but the line is not as cfrollback wrote it
	ProblemSeq       = "seq"           // missing, duplicated or reordered records
	ProblemPrev      = "prev_mismatch" // the chain is broken at this record
	ProblemTruncated = "truncated"     // records gone from the end
	ProblemHead      = "head"          // the head sidecar is missing, unreadable or disagrees
	// ProblemOpen: the head's pointer to the oldest unfinished run is not where that run
	// starts (the records still hold; recovery may miss an interrupted run before it)
	ProblemOpen = "open_pointer"
)

// Problem is one thing Verify found wrong. Line is the 1-based line in the
// journal, or 0 for a problem with the journal as a whole (its head); Seq is
// the record's seq when the line is a record.
type Problem struct {
	Line   int
	Seq    int64
	Kind   string
	Reason string
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.Reason
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Reason)
}

// Verify reads the whole journal at path and its head and reports every
// problem found; none means the journal is intact. It checks that every
// line is a record, that seq counts 1, 2, 3, ... , that each Prev is the
// Hash of the record before, that each Hash matches its record, that each
// line is exactly as Append writes it, and that the journal ends where its
// head says. After a problem the checks resynchronise on the record found,
// so one deletion is reported once, not on every later line.
//
// A crash right after an append leaves the head one record behind; Verify
// reports that (Kind ProblemHead) and Open repairs it. The error is for
// failures to read; a journal that does not exist is an error matching
// fs.ErrNotExist unless its head exists, which is a ProblemTruncated.
func Verify(path string) ([]Problem, error) {
	_, problems, err := verify(path, false)
	if errors.Is(err, fs.ErrNotExist) && len(problems) > 0 {
		err = nil // the head exists: a ProblemTruncated
	}
	return problems, err
}

// verify is Verify in one pass that also returns the records read when keep is set.
func verify(path string, keep bool) ([]Record, []Problem, error) {
	hd, herr := readHead(path)
	var corrupt *CorruptError
	headProblem := ""
	switch {
	case errors.As(herr, &corrupt):
		headProblem = corrupt.Reason
		hd = nil
	case herr != nil:
		return nil, nil, herr
	}
	c := newChainCheck(hd, keep)
	c.headUnreadable = headProblem != ""
	if c.headUnreadable {
		c.add(0, 0, ProblemHead, "%s", headProblem)
	}

	f, _, err := fsutil.OpenRegular(path)
	if errors.Is(err, fs.ErrNotExist) && hd != nil {
		c.add(0, 0, ProblemTruncated, "the journal is missing but its head records seq %d", hd.Seq)
		return nil, c.problems, err // Verify reports the problem; ReadChecked, that there is no journal
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	if err := c.read(f, path); err != nil {
		return nil, nil, err
	}
	return c.recs, c.problems, nil
}

// chainCheck verifies records line by line, from the first record of a journal or (from)
// from one in its middle, and their end against the head.
type chainCheck struct {
	path           string
	hd             *head // nil: none, or unreadable (headUnreadable)
	headUnreadable bool
	keep           bool
	recs           []Record
	problems       []Problem

	lastSeq      int64  // seq of the last record read
	lastHash     string // its hash
	lastLine     int    // its line
	records      int
	hashAtHead   string // hash of the record with the head's seq, if seen
	headSeqFound bool
	// midway: reading starts at a record whose prev is not checked (its record was not read)
	midway  bool
	firstAt int64    // offset of the first record's line from where reading began
	open    openRuns // the runs open at the head's record, to check its pointer
}

func newChainCheck(hd *head, keep bool) *chainCheck {
	return &chainCheck{hd: hd, keep: keep, firstAt: -1, open: newOpenRuns(true)}
}

// from starts the check at the record seq: its prev is taken as it is.
func (c *chainCheck) from(seq int64) {
	c.lastSeq, c.midway = seq-1, true
}

func (c *chainCheck) add(line int, seq int64, kind, format string, a ...any) {
	c.problems = append(c.problems, Problem{Line: line, Seq: seq, Kind: kind, Reason: fmt.Sprintf(format, a...)})
}

// read checks every line of r and then the end against the head; the error is for failures
// to read.
func (c *chainCheck) read(r io.Reader, path string) error {
	c.path = path
	lr := newLineReader(r)
	for {
		line, terminated, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read journal %s: %w", path, err)
		}
		c.line(lr.n, lr.off, line, terminated)
	}
	c.end()
	return nil
}

func (c *chainCheck) line(n int, off int64, line []byte, terminated bool) {
	rec, kind, perr := parseLine(line)
	switch kind {
	case lineTorn:
		c.add(n, 0, ProblemTorn, "torn record: a write was interrupted (a crash during an append?); the line is not part of the chain")
		return
	case lineMalformed:
		c.add(n, 0, ProblemMalformed, "not a record: %v", perr)
		return
	}
	c.records++
	if c.records == 1 {
		c.firstAt = off
	}
	if !terminated {
		c.add(n, rec.Seq, ProblemTorn, "the last record has no newline: its write was interrupted (a crash during an append?)")
	}
	switch want := c.lastSeq + 1; {
	case rec.Seq == want:
	case rec.Seq > want && c.lastLine == 0:
		c.add(n, rec.Seq, ProblemSeq, "the journal starts at seq %d, not %d: records %s are missing", rec.Seq, want, seqRange(want, rec.Seq-1))
	case rec.Seq > want:
		c.add(n, rec.Seq, ProblemSeq, "seq %d follows seq %d on line %d: records %s are missing", rec.Seq, c.lastSeq, c.lastLine, seqRange(want, rec.Seq-1))
	default:
		c.add(n, rec.Seq, ProblemSeq, "seq %d follows seq %d on line %d: records are out of order or duplicated", rec.Seq, c.lastSeq, c.lastLine)
	}
	switch {
	case rec.Prev == c.lastHash, c.midway && c.records == 1:
	case c.lastLine == 0:
		c.add(n, rec.Seq, ProblemPrev, "prev is %s, but the first record's prev must be empty", short(rec.Prev))
	default:
		c.add(n, rec.Seq, ProblemPrev, "prev %s is not the hash %s of the record on line %d: the chain is broken here", short(rec.Prev), short(c.lastHash), c.lastLine)
	}
	if c.keep {
		c.recs = append(c.recs, rec)
	}
	canon, err := canonical(rec)
	sum := sha256.Sum256(canon)
	switch want := hex.EncodeToString(sum[:]); {
	case err != nil:
		c.add(n, rec.Seq, ProblemMalformed, "cannot compute the hash: %v", err)
	case want != rec.Hash:
		c.add(n, rec.Seq, ProblemHash, "hash %s does not match the content (%s): the record was edited after it was written", short(rec.Hash), short(want))
	case !isWritten(canon, rec.Hash, line):
		c.add(n, rec.Seq, ProblemCanonical, "the hash matches but the line is not as cfrollback writes it: it was reformatted or given extra fields")
	}
	if c.hd != nil && rec.Seq == c.hd.Seq {
		c.hashAtHead, c.headSeqFound = rec.Hash, true
	}
	if c.hd != nil && rec.Seq <= c.hd.Seq {
		c.open.note(rec, off)
	}
	c.lastSeq, c.lastHash, c.lastLine = rec.Seq, rec.Hash, n
}

// end checks that the journal ends where its head says, and (reading the whole of an
// otherwise intact journal) that the head's pointer names where its oldest unfinished run
// starts.
func (c *chainCheck) end() {
	hd, clean := c.hd, len(c.problems) == 0
	switch {
	case hd == nil && !c.headUnreadable && c.records == 0:
	case hd == nil && !c.headUnreadable && c.lastSeq == 1:
		c.add(0, 1, ProblemHead, "the head %s is missing: a crash right after the first append (the next run repairs it)", headPath(c.path))
	case hd == nil && !c.headUnreadable:
		c.add(0, 0, ProblemHead, "the head %s is missing; without it records cut from the end cannot be detected", headPath(c.path))
	case hd == nil:
	case c.records == 0:
		c.add(0, 0, ProblemTruncated, "the journal has no records but its head records seq %d: it was truncated or replaced", hd.Seq)
	case hd.Seq > c.lastSeq:
		c.add(0, 0, ProblemTruncated, "the journal ends at seq %d but its head records seq %d: records were removed from the end", c.lastSeq, hd.Seq)
	case !c.headSeqFound:
		c.add(0, 0, ProblemHead, "its head records seq %d, which is not in the journal", hd.Seq)
	case c.hashAtHead != hd.Hash:
		c.add(0, 0, ProblemHead, "record seq %d is not the one its head records (hash %s, head says %s): the journal was rewritten", hd.Seq, short(c.hashAtHead), short(hd.Hash))
	case hd.Seq < c.lastSeq:
		c.add(0, hd.Seq+1, ProblemHead, "its head records seq %d but the journal continues to seq %d: either a crash right after an append (the next run repairs the head) or records added by something other than cfrollback", hd.Seq, c.lastSeq)
		c.checkOpen(clean)
	default:
		c.checkOpen(clean)
	}
}

// checkOpen compares the head's pointer with the one Append computes from the records up
// to the head's, when the journal was read whole and nothing else was wrong.
func (c *chainCheck) checkOpen(clean bool) {
	if c.midway || !clean || c.hd.Open == 0 {
		return
	}
	want := c.open.from()
	if got, ok := c.hd.from(); !ok || got != want {
		c.add(0, 0, ProblemOpen, "its head says no run before seq %d (byte %d) can be unfinished, but that is true only from seq %d (byte %d): the head was edited, and recovery, which reads from there on, may miss an interrupted run. Remove `open` and `at` from the head (keep its seq and hash): the next run reads the whole journal and writes them again",
			c.hd.Open, c.hd.At, want.Seq, want.At)
	}
}

// isWritten reports whether line is exactly what Append writes for the record whose
// canonical JSON (Hash "") is canon: Hash is the last field, so the written line is canon
// with its empty hash filled in (a valid hash is hex: nothing to escape). This saves the
// second json.Marshal per record.
func isWritten(canon []byte, hash string, line []byte) bool {
	const empty = `"hash":""}`
	if !bytes.HasSuffix(canon, []byte(empty)) {
		return false
	}
	prefix := canon[:len(canon)-len(empty)]
	return len(line) == len(prefix)+len(`"hash":"`)+len(hash)+len(`"}`) &&
		bytes.HasPrefix(line, prefix) &&
		string(line[len(prefix):]) == `"hash":"`+hash+`"}`
}

func seqRange(from, to int64) string {
	if from == to {
		return fmt.Sprint(from)
	}
	return fmt.Sprintf("%d-%d", from, to)
}

func short(hash string) string {
	if hash == "" {
		return `""`
	}
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}
