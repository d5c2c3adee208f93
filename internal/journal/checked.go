package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Checked is a journal read together with its hash chain's verdict, for readers that show
// records as fact (history, report): a record the chain no longer vouches for is shown as
// such, never silently.
type Checked struct {
	Records []Record
	// Problems are what Verify found.
	Problems []Problem
	// UntrustedFrom is the first seq the chain does not vouch for (an edited, deleted or
	// reordered record, and everything after it); 0 when every record holds.
	UntrustedFrom int64
	// From is the seq of the first record read: 0 when the whole journal was read,
	// else where ReadRecent began.
	From int64
}

// ReadChecked reads every record of the journal at path and verifies its chain.
func ReadChecked(path string) (Checked, error) {
	recs, problems, err := verify(path, true)
	if errors.Is(err, fs.ErrNotExist) {
		return Checked{}, err
	}
	if err != nil {
		return Checked{}, fmt.Errorf("verify journal %s: %w", path, err)
	}
	for _, p := range problems {
		if p.Kind == ProblemMalformed && p.Seq == 0 {
			// what ReadAll refuses: a line that is not a record (readers that must go
			// on read around it, naming it)
			return Checked{}, &LineError{Path: path, Line: p.Line, Err: fmt.Errorf("malformed record: %s", strings.TrimPrefix(p.Reason, "not a record: "))}
		}
	}
	c := Checked{Records: recs}
	untied := false
	for _, p := range problems {
		c.Problems = append(c.Problems, p)
		switch {
		case p.Seq > 0:
			// the first record the chain (or, for a head behind the end, the head) does
			// not vouch for: a crash right after an append looks like a record appended
			// by someone else, so that record is unverified until the next run's Open
			// repairs the head
			if c.UntrustedFrom == 0 || p.Seq < c.UntrustedFrom {
				c.UntrustedFrom = p.Seq
			}
		case p.Kind == ProblemTorn, p.Kind == ProblemTruncated, p.Kind == ProblemOpen:
			// A torn line is what a crash during an append leaves: it was never part of
			// the chain. Records cut from the end leave the rest vouched for. Either
			// way the records read still hold; the warning says what is missing.
		default:
			// damage Verify could not tie to a record (a malformed line, a head that is
			// missing, unreadable or names another record: the journal rewritten whole)
			untied = true
		}
	}
	if untied && len(recs) > 0 {
		c.UntrustedFrom = recs[0].Seq
	}
	return c, nil
}

// RecordTrusted reports whether the chain vouches for the record with this seq.
func (c Checked) RecordTrusted(seq int64) bool {
	return c.UntrustedFrom == 0 || seq < c.UntrustedFrom
}

// Trusted reports whether the chain vouches for every record of run.
func (c Checked) Trusted(run Run) bool {
	if c.UntrustedFrom == 0 {
		return true
	}
	for _, r := range run.Records {
		if !c.RecordTrusted(r.Seq) {
			return false
		}
	}
	return true
}

// Warning is the one line a reader prints when the chain is broken, or "".
func (c Checked) Warning(path string) string {
	if len(c.Problems) == 0 {
		return ""
	}
	if c.UntrustedFrom == 0 {
		return fmt.Sprintf("the journal %s has %d problem(s) (first: %s); every record it still holds passes its hash chain. 'cfrollback journal verify' lists every problem",
			path, len(c.Problems), c.Problems[0])
	}
	return fmt.Sprintf("the journal %s fails its hash chain (%d problem(s), first: %s): records from seq %d on may have been edited or removed and are marked UNVERIFIED; 'cfrollback journal verify' lists every problem",
		path, len(c.Problems), c.Problems[0], c.UntrustedFrom)
}
