package journal

import (
	"errors"
	"fmt"
	"io/fs"
)

// Checked is a journal read together with its hash chain's verdict, for readers that show
// records as fact (history, report): a record the chain no longer vouches for is shown as
// such, never silently.
type Checked struct {
	Records []Record
	// Problems are what Verify found, except a head one record behind (a crash right after
	// an append; the next Open repairs it).
	Problems []Problem
	// UntrustedFrom is the first seq the chain does not vouch for (an edited, deleted or
	// reordered record, and everything after it); 0 when every record holds.
	UntrustedFrom int64
}

// ReadChecked reads every record of the journal at path and verifies its chain.
func ReadChecked(path string) (Checked, error) {
	recs, err := ReadAll(path)
	if err != nil {
		return Checked{}, err
	}
	c := Checked{Records: recs}
	problems, verr := Verify(path)
	if verr != nil && !errors.Is(verr, fs.ErrNotExist) {
		return c, fmt.Errorf("verify journal %s: %w", path, verr)
	}
	for _, p := range problems {
		if p.Kind == ProblemHead {
			continue
		}
		c.Problems = append(c.Problems, p)
		if p.Seq > 0 && (c.UntrustedFrom == 0 || p.Seq < c.UntrustedFrom) {
			c.UntrustedFrom = p.Seq
		}
	}
	if len(c.Problems) > 0 && c.UntrustedFrom == 0 && len(recs) > 0 {
		c.UntrustedFrom = recs[0].Seq // a damage Verify could not tie to a record: trust none
	}
	return c, nil
}

// Trusted reports whether the chain vouches for every record of run.
func (c Checked) Trusted(run Run) bool {
	if c.UntrustedFrom == 0 {
		return true
	}
	for _, r := range run.Records {
		if r.Seq >= c.UntrustedFrom {
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
	return fmt.Sprintf("the journal %s fails its hash chain (%d problem(s), first: %s): records from seq %d on may have been edited or removed and are marked UNVERIFIED; 'cfrollback journal verify' lists every problem",
		path, len(c.Problems), c.Problems[0], c.UntrustedFrom)
}
