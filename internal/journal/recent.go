package journal

import (
	"errors"
	"io"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// mark is a record's place: its seq and the byte offset where its line starts.
type mark struct{ Seq, At int64 }

// openRuns is what a Journal knows of the runs that can still be unfinished (Run.Unfinished:
// an intent, and no outcome or recovered record yet), so that the head can say from where a
// reader of unfinished runs must read. It errs only towards reading more: a run is open from
// its first intent until an outcome or recovered record carries its id.
type openRuns struct {
	known bool            // false: the head says nothing (readers read everything)
	runs  map[string]mark // run id -> its intent
	last  mark            // the last record
}

func newOpenRuns(known bool) openRuns {
	return openRuns{known: known, runs: map[string]mark{}}
}

// note takes in the record at offset at, the journal's new last record.
func (o *openRuns) note(rec Record, at int64) {
	switch rec.Event {
	case EventIntent:
		if _, ok := o.runs[rec.RunID]; !ok {
			o.runs[rec.RunID] = mark{Seq: rec.Seq, At: at}
		}
	case EventOutcome, EventRecovered:
		delete(o.runs, rec.RunID)
	}
	o.last = mark{Seq: rec.Seq, At: at}
}

// from is the intent of the oldest open run, else the last record: no run that starts
// before it is unfinished.
func (o *openRuns) from() mark {
	m := o.last
	for _, r := range o.runs {
		if r.Seq < m.Seq {
			m = r
		}
	}
	return m
}

// head is the head naming rec, with the pointer when it is known.
func (o *openRuns) head(rec Record) head {
	h := head{Seq: rec.Seq, Hash: rec.Hash}
	if o.known && o.last.Seq == rec.Seq {
		m := o.from()
		h.Open, h.At = m.Seq, m.At
	}
	return h
}

// loadOpen learns the open runs of f, whose last record is j.seq, for Append to keep the
// head's pointer: it reads from where the head points (usually the last few records), and
// reads everything when the head has no pointer (written by an earlier cfrollback) or the
// pointer does not lead to the last record. When even that fails (a line that is not a
// record, a gap in the seqs) the pointer stays unknown and heads are written without it.
func (j *Journal) loadOpen(hd *head) {
	j.open = newOpenRuns(j.seq == 0)
	if j.seq == 0 {
		return
	}
	if m, ok := hd.from(); ok && j.scanOpen(m) {
		return
	}
	j.open = newOpenRuns(false)
	j.scanOpen(mark{})
}

// scanOpen reads the records from start (the whole file for a zero mark) into j.open and
// reports whether they lead, seq by seq, from start to the last record.
func (j *Journal) scanOpen(start mark) bool {
	o := newOpenRuns(false)
	if !lineStartsAt(j.f, start.At) {
		return false
	}
	lr := newLineReader(io.NewSectionReader(j.f, start.At, 1<<62))
	var seq int64
	for {
		line, _, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false
		}
		rec, kind, _ := parseLine(line)
		switch {
		case kind == lineTorn:
			continue
		case kind != lineRecord:
			return false
		case seq == 0 && start.Seq != 0 && (rec.Seq != start.Seq || lr.off != 0):
			return false
		case seq != 0 && rec.Seq != seq+1:
			return false
		}
		seq = rec.Seq
		o.note(rec, start.At+lr.off)
	}
	if seq != j.seq {
		return false
	}
	o.known = true
	j.open = o
	return true
}

// lineStartsAt reports whether a line of f starts at offset at.
func lineStartsAt(f io.ReaderAt, at int64) bool {
	if at == 0 {
		return true
	}
	b := make([]byte, 1)
	_, err := f.ReadAt(b, at-1)
	return err == nil && b[0] == '\n'
}

// ReadRecent reads the part of the journal at path where a run can still be unfinished
// (Run.Unfinished): from the record its head names (the intent of the oldest run without an
// outcome when Append wrote the head, else the last record) to the end. It verifies those
// records as ReadChecked does (each hash, each prev from that record on, seq by seq, the
// end against the head), so what it returns is what ReadChecked would return from that seq
// on, with Checked.From set. Records before it are not read: runs that start before it
// ended, and runs that start after it are whole, so the unfinished runs in Runs of what
// ReadRecent returns are the unfinished runs of the journal. A run that started earlier
// shows only its later records (an outcome written for it, a verify): never unfinished,
// since its intent is not among them.
//
// When the head has no such pointer (a head of an earlier cfrollback, or one Open could not
// work out), or the pointer or anything after it does not check out, ReadRecent is
// ReadChecked: it reads and verifies everything, with the same errors and problems.
func ReadRecent(path string) (Checked, error) {
	if c, ok := readRecent(path); ok {
		return c, nil
	}
	return ReadChecked(path)
}

func readRecent(path string) (Checked, bool) {
	hd, err := readHead(path)
	if err != nil {
		return Checked{}, false
	}
	start, ok := hd.from()
	if !ok {
		return Checked{}, false
	}
	f, _, err := fsutil.OpenRegular(path)
	if err != nil {
		return Checked{}, false
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	if fi, err := f.Stat(); err != nil || start.At >= fi.Size() || !lineStartsAt(f, start.At) {
		return Checked{}, false
	}
	if _, err := f.Seek(start.At, io.SeekStart); err != nil {
		return Checked{}, false
	}
	c := newChainCheck(hd, true)
	c.from(start.Seq)
	if err := c.read(f, path); err != nil || len(c.problems) > 0 || len(c.recs) == 0 {
		return Checked{}, false
	}
	if first := c.recs[0]; first.Seq != start.Seq || c.firstAt != 0 ||
		(first.Event != EventIntent && first.Seq != hd.Seq) {
		// the head points at a record no Journal would name: a run's intent, or the last
		// record when no run was open
		return Checked{}, false
	}
	return Checked{Records: c.recs, From: start.Seq}, true
}
