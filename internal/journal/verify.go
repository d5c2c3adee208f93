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
	var (
		problems []Problem
		recs     []Record
	)
	add := func(line int, seq int64, kind, format string, a ...any) {
		problems = append(problems, Problem{Line: line, Seq: seq, Kind: kind, Reason: fmt.Sprintf(format, a...)})
	}
	hd, herr := readHead(path)
	var corrupt *CorruptError
	switch {
	case errors.As(herr, &corrupt):
		add(0, 0, ProblemHead, "%s", corrupt.Reason)
		hd = nil
	case herr != nil:
		return nil, nil, herr
	}

	f, _, err := fsutil.OpenRegular(path)
	if errors.Is(err, fs.ErrNotExist) && hd != nil {
		add(0, 0, ProblemTruncated, "the journal is missing but its head records seq %d", hd.Seq)
		return nil, problems, err // Verify reports the problem; ReadChecked, that there is no journal
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose

	var (
		lastSeq      int64  // seq of the last record read
		lastHash     string // its hash
		lastLine     int    // its line
		records      int
		hashAtHead   string // hash of the record with the head's seq, if seen
		headSeqFound bool
	)
	lr := newLineReader(f)
	for {
		line, terminated, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read journal %s: %w", path, err)
		}
		n := lr.n
		rec, kind, perr := parseLine(line)
		switch kind {
		case lineTorn:
			add(n, 0, ProblemTorn, "torn record: a write was interrupted (a crash during an append?); the line is not part of the chain")
			continue
		case lineMalformed:
			add(n, 0, ProblemMalformed, "not a record: %v", perr)
			continue
		}
		records++
		if !terminated {
			add(n, rec.Seq, ProblemTorn, "the last record has no newline: its write was interrupted (a crash during an append?)")
		}
		switch want := lastSeq + 1; {
		case rec.Seq == want:
		case rec.Seq > want && lastLine == 0:
			add(n, rec.Seq, ProblemSeq, "the journal starts at seq %d, not 1: records %s are missing", rec.Seq, seqRange(1, rec.Seq-1))
		case rec.Seq > want:
			add(n, rec.Seq, ProblemSeq, "seq %d follows seq %d on line %d: records %s are missing", rec.Seq, lastSeq, lastLine, seqRange(want, rec.Seq-1))
		default:
			add(n, rec.Seq, ProblemSeq, "seq %d follows seq %d on line %d: records are out of order or duplicated", rec.Seq, lastSeq, lastLine)
		}
		if rec.Prev != lastHash {
			if lastLine == 0 {
				add(n, rec.Seq, ProblemPrev, "prev is %s, but the first record's prev must be empty", short(rec.Prev))
			} else {
				add(n, rec.Seq, ProblemPrev, "prev %s is not the hash %s of the record on line %d: the chain is broken here", short(rec.Prev), short(lastHash), lastLine)
			}
		}
		if keep {
			recs = append(recs, rec)
		}
		canon, err := canonical(rec)
		sum := sha256.Sum256(canon)
		switch want := hex.EncodeToString(sum[:]); {
		case err != nil:
			add(n, rec.Seq, ProblemMalformed, "cannot compute the hash: %v", err)
		case want != rec.Hash:
			add(n, rec.Seq, ProblemHash, "hash %s does not match the content (%s): the record was edited after it was written", short(rec.Hash), short(want))
		case !isWritten(canon, rec.Hash, line):
			add(n, rec.Seq, ProblemCanonical, "the hash matches but the line is not as cfrollback writes it: it was reformatted or given extra fields")
		}
		if hd != nil && rec.Seq == hd.Seq {
			hashAtHead, headSeqFound = rec.Hash, true
		}
		lastSeq, lastHash, lastLine = rec.Seq, rec.Hash, n
	}

	switch {
	case hd == nil && herr == nil && records == 0:
	case hd == nil && herr == nil && lastSeq == 1:
		add(0, 1, ProblemHead, "the head %s is missing: a crash right after the first append (the next run repairs it)", headPath(path))
	case hd == nil && herr == nil:
		add(0, 0, ProblemHead, "the head %s is missing; without it records cut from the end cannot be detected", headPath(path))
	case hd == nil:
	case records == 0:
		add(0, 0, ProblemTruncated, "the journal has no records but its head records seq %d: it was truncated or replaced", hd.Seq)
	case hd.Seq > lastSeq:
		add(0, 0, ProblemTruncated, "the journal ends at seq %d but its head records seq %d: records were removed from the end", lastSeq, hd.Seq)
	case !headSeqFound:
		add(0, 0, ProblemHead, "its head records seq %d, which is not in the journal", hd.Seq)
	case hashAtHead != hd.Hash:
		add(0, 0, ProblemHead, "record seq %d is not the one its head records (hash %s, head says %s): the journal was rewritten", hd.Seq, short(hashAtHead), short(hd.Hash))
	case hd.Seq < lastSeq:
		add(0, hd.Seq+1, ProblemHead, "its head records seq %d but the journal continues to seq %d: either a crash right after an append (the next run repairs the head) or records added by something other than cfrollback", hd.Seq, lastSeq)
	}
	return recs, problems, nil
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
