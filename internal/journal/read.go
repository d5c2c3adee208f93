package journal

import (
	"errors"
	"fmt"
	"io"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// LineError is a journal line that is not a record.
type LineError struct {
	Path string
	Line int
	Err  error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("journal %s line %d: %v", e.Path, e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// ReadAll returns every record in the journal at path, in file order. It
// checks that each line is a record, not that the chain holds (that is
// Verify). Torn lines, the expected leftovers of a crash, are skipped; any
// other line that is not a record stops the read with a *LineError naming
// its line number. A journal that does not exist is an error matching
// fs.ErrNotExist.
func ReadAll(path string) ([]Record, error) {
	f, _, err := fsutil.OpenRegular(path) // a FIFO or a device in its place is an error, not a hang
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	var recs []Record
	lr := newLineReader(f)
	for {
		line, _, err := lr.next()
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read journal %s: %w", path, err)
		}
		rec, kind, perr := parseLine(line)
		switch kind {
		case lineRecord:
			recs = append(recs, rec)
		case lineTorn:
			continue
		default:
			return nil, &LineError{Path: path, Line: lr.n, Err: fmt.Errorf("malformed record: %w", perr)}
		}
	}
}
