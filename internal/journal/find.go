package journal

import (
	"errors"
	"fmt"
	"io/fs"
)

// NoRunError means the journal holds no such run (a usage error for the callers), as opposed
// to a journal that cannot be read.
type NoRunError struct{ error }

// RunCheck is what the journal's hash chain says about one run.
type RunCheck struct {
	Warning    string // the journal's problems, "" when it is intact
	Unverified bool   // the chain does not vouch for the run's records
}

// FindRun is run id, or (id "") the last emergency, rollback or undo run, with the journal's
// hash chain checked. The warning is set when the chain does not vouch for the run's records,
// and for the journal's last run when the journal has any problem (records cut from its end
// are that run's: its outcome may be gone). A journal that does not exist or holds no such
// run is a NoRunError.
func FindRun(journalPath, id string) (run Run, check RunCheck, err error) {
	jc, err := ReadChecked(journalPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Run{}, check, NoRunError{fmt.Errorf("no journal at %s: no rollback has run here", journalPath)}
	}
	if err != nil {
		return Run{}, check, fmt.Errorf("read journal %s: %w", journalPath, err)
	}
	runs := Runs(jc.Records)
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if (id != "" && r.ID == id) || (id == "" && (r.Command == "emergency" || r.Command == "rollback" || r.Command == "undo")) {
			check.Unverified = !jc.Trusted(r)
			if check.Unverified || i == len(runs)-1 {
				check.Warning = jc.Warning(journalPath)
			}
			return r, check, nil
		}
	}
	if id != "" {
		return Run{}, check, NoRunError{fmt.Errorf("run %s is not in the journal %s; 'cfrollback history' lists the runs", id, journalPath)}
	}
	return Run{}, check, NoRunError{fmt.Errorf("no emergency, rollback or undo run in the journal %s", journalPath)}
}
