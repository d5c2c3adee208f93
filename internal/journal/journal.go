package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// ErrCorrupt means the end of the journal does not agree with its head or
// is not a record, so appending would bury the damage. Open returns it as a
// *CorruptError.
var ErrCorrupt = errors.New("journal is damaged")

// CorruptError says what Open found wrong with the end of a journal.
type CorruptError struct {
	Path   string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("journal %s is damaged: %s", e.Path, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Journal appends records to one journal file.
type Journal struct {
	mu   sync.Mutex
	path string
	f    *os.File // nil once closed
	seq  int64    // seq of the last record, 0 for none
	prev string   // hash of the last record
	// needNewline is set while the file ends in an unterminated line (a
	// torn write, or a record whose newline never made it): the next Append
	// writes a newline first so that line keeps a line of its own.
	needNewline bool
	// broken is set when an fsync failed: what reached the disk is unknown,
	// so nothing more is appended.
	broken error
	now    func() time.Time
	head   headWriter
	// open is what the head's pointer to the oldest unfinished run is computed from.
	open openRuns
}

// Open opens the journal at path for appending, creating it (mode 0600) and
// its missing parent directories (mode 0700) if needed; a new file and new
// directories are made durable by fsyncing their parents.
//
// Open reads only the end of the file, to continue the chain from the last
// record:
//   - Torn lines at the end are passed over, never truncated; Append starts
//     with a newline so they stay visible to Verify.
//   - A complete record missing only its newline is kept as the last record
//     if it continues the chain; Append then supplies the newline.
//   - The records from the head's pointer on (where a run can still be
//     unfinished, see ReadRecent) are parsed to learn the open runs, whose
//     oldest start every head Append writes names; all of them when the head
//     has no pointer.
//   - A head one record behind the journal (a crash between writing a record
//     and its head) is rewritten. A missing head is treated the same way when
//     the journal holds at most one record.
//
// Anything else (the last complete line not a record, its hash wrong, the
// journal shorter than its head, a different record where the head points,
// a missing journal with a head left behind) returns a *CorruptError
// (errors.Is ErrCorrupt) and leaves both files untouched.
func Open(path string) (*Journal, error) {
	if err := mkdirAllSynced(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("journal directory: %w", fsutil.WithKey(err, "journal"))
	}
	hd, err := readHead(path)
	if err != nil {
		return nil, err
	}
	f, created, err := openOrCreate(path, hd)
	if err != nil {
		return nil, err
	}
	j, err := resume(f, path, hd)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if created {
		if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
			_ = j.Close()
			return nil, fmt.Errorf("sync journal directory: %w", err)
		}
	}
	return j, nil
}

// openOrCreate never opens the journal through a symlink (O_NOFOLLOW: one
// planted at the path would make root append to, or create, any file) and
// only a regular file.
func openOrCreate(path string, hd *head) (f *os.File, created bool, err error) {
	defer func() {
		if errors.Is(err, syscall.ELOOP) {
			err = fmt.Errorf("journal %s %w; remove it and retry", path, fsutil.ErrSymlink)
		}
		if err == nil {
			if fi, serr := f.Stat(); serr != nil || !fi.Mode().IsRegular() {
				_ = f.Close()
				f, created = nil, false
				err = serr
				if err == nil {
					err = fmt.Errorf("journal %s: %w", path, fsutil.ErrNotRegular)
				}
			}
		}
	}()
	for range 2 {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err == nil {
			return f, false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, err
		}
		if hd != nil {
			return nil, false, &CorruptError{Path: path, Reason: fmt.Sprintf(
				"the journal is missing but its head %s records seq %d: it was deleted or moved", headPath(path), hd.Seq)}
		}
		f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err == nil {
			return f, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
		// Created between our two opens; open it as an existing journal.
	}
	return nil, false, err
}

// resume reads the end of f and checks it against the head.
func resume(f *os.File, path string, hd *head) (*Journal, error) {
	last, needNewline, err := readTail(f, path)
	if err != nil {
		return nil, err
	}
	j := &Journal{path: path, f: f, needNewline: needNewline, now: time.Now, head: headWriter{journal: path}}
	if last != nil {
		j.seq, j.prev = last.Seq, last.Hash
	}
	repair, err := checkEnd(path, hd, last)
	if err != nil {
		return nil, err
	}
	j.loadOpen(hd)
	if !repair {
		return j, nil
	}
	if err := j.head.write(j.open.head(*last)); err != nil {
		return nil, fmt.Errorf("repair journal head: %w", err)
	}
	return j, nil
}

// checkEnd compares the last record with the head: nil when they agree, repair when the
// head is to be rewritten (one record behind, or missing after the first record), a
// *CorruptError for anything else.
func checkEnd(path string, hd *head, last *Record) (repair bool, err error) {
	corrupt := func(format string, a ...any) error {
		return &CorruptError{Path: path, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case last == nil && hd == nil:
		return false, nil
	case last == nil:
		return false, corrupt("the journal has no records but its head records seq %d: it was truncated or replaced", hd.Seq)
	case hd == nil && last.Seq == 1:
		// Crashed after the first record, before its head.
		return true, nil
	case hd == nil:
		return false, corrupt("its head %s is missing but the journal ends at seq %d", headPath(path), last.Seq)
	case hd.Seq == last.Seq && hd.Hash == last.Hash:
		return false, nil
	case hd.Seq == last.Seq-1 && hd.Hash == last.Prev:
		// Crashed after a record, before its head.
		return true, nil
	case hd.Seq > last.Seq:
		return false, corrupt("the journal ends at seq %d but its head records seq %d: records were removed from the end", last.Seq, hd.Seq)
	case hd.Seq < last.Seq:
		return false, corrupt("its head records seq %d but the journal continues to seq %d: records were added by something other than cfrollback", hd.Seq, last.Seq)
	default:
		return false, corrupt("record seq %d is not the one its head records: the end of the journal was rewritten", last.Seq)
	}
}

// readTail finds the last record of f by reading backwards from the end.
func readTail(f *os.File, path string) (last *Record, needNewline bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	size := fi.Size()
	if size == 0 {
		return nil, false, nil
	}
	corrupt := func(format string, a ...any) error {
		return &CorruptError{Path: path, Reason: fmt.Sprintf(format, a...)}
	}
	lastByte, err := readRange(f, size-1, size)
	if err != nil {
		return nil, false, err
	}
	// end is the end of the complete lines: f[end-1] is '\n' when end > 0.
	end := size
	var unterminated *Record
	if lastByte[0] != '\n' {
		needNewline = true
		nl, err := lastIndexByte(f, size, '\n')
		if err != nil {
			return nil, false, err
		}
		end = nl + 1
		if size-end <= maxLine {
			frag, err := readRange(f, end, size)
			if err != nil {
				return nil, false, err
			}
			if rec, kind, _ := parseLine(frag); kind == lineRecord {
				unterminated = &rec
			}
		}
	}
	for end > 0 && last == nil {
		nl, err := lastIndexByte(f, end-1, '\n')
		if err != nil {
			return nil, false, err
		}
		start := nl + 1
		if end-1-start > maxLine {
			return nil, false, corrupt("the line at byte %d is longer than %d bytes", start, maxLine)
		}
		line, err := readRange(f, start, end-1)
		if err != nil {
			return nil, false, err
		}
		rec, kind, perr := parseLine(line)
		switch kind {
		case lineRecord:
			last = &rec
		case lineTorn:
			end = start
		default:
			return nil, false, corrupt("the last complete line (at byte %d) is not a record: %v", start, perr)
		}
	}
	if unterminated != nil {
		var seq int64
		var prev string
		if last != nil {
			seq, prev = last.Seq, last.Hash
		}
		if unterminated.Seq != seq+1 || unterminated.Prev != prev {
			return nil, false, corrupt("the unterminated last line (seq %d) does not continue the chain from seq %d", unterminated.Seq, seq)
		}
		last = unterminated
	}
	if last != nil {
		if h, err := computeHash(*last); err != nil || h != last.Hash {
			return nil, false, corrupt("the hash of the last record (seq %d) does not match its content: it was edited", last.Seq)
		}
	}
	return last, needNewline, nil
}

func readRange(f io.ReaderAt, start, end int64) ([]byte, error) {
	b := make([]byte, end-start)
	n, err := f.ReadAt(b, start)
	if n == len(b) {
		return b, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

// lastIndexByte returns the offset of the last c in f[0:end], or -1.
func lastIndexByte(f io.ReaderAt, end int64, c byte) (int64, error) {
	const chunk = 64 << 10
	for end > 0 {
		start := max(end-chunk, 0)
		b, err := readRange(f, start, end)
		if err != nil {
			return -1, err
		}
		if i := bytes.LastIndexByte(b, c); i >= 0 {
			return start + int64(i), nil
		}
		end = start
	}
	return -1, nil
}

// Append writes one record and returns it once it is on disk: the line is
// one write(2) on the O_APPEND descriptor followed by fsync, then the head
// is rewritten. data is marshalled with encoding/json and must be a JSON
// object, or nil for none.
//
// An error with a zero Record means nothing was appended. An error with a
// non-zero Record means the record is durable but its head could not be
// rewritten; do not append it again. After a failed fsync every later
// Append fails, because what reached the disk is unknown.
func (j *Journal) Append(runID, event, step string, data any) (Record, error) {
	if event == "" {
		return Record{}, errors.New("append to journal: empty event")
	}
	raw, err := marshalData(data)
	if err != nil {
		return Record{}, fmt.Errorf("append %s to journal: %w", event, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return Record{}, fmt.Errorf("append %s to journal %s: %w", event, j.path, os.ErrClosed)
	}
	if j.broken != nil {
		return Record{}, fmt.Errorf("append %s to journal %s: an earlier fsync failed: %w", event, j.path, j.broken)
	}
	rec := Record{
		Seq:   j.seq + 1,
		Time:  j.now().UTC().Round(0),
		RunID: runID,
		Event: event,
		Step:  step,
		Data:  raw,
		Prev:  j.prev,
	}
	if rec.Hash, err = computeHash(rec); err != nil {
		return Record{}, fmt.Errorf("append %s to journal: %w", event, err)
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return Record{}, fmt.Errorf("append %s to journal: %w", event, err)
	}
	if len(line) > maxLine {
		return Record{}, fmt.Errorf("append %s to journal: record is %d bytes, more than the %d a line may hold", event, len(line), maxLine)
	}
	buf := make([]byte, 0, len(line)+2)
	if j.needNewline {
		buf = append(buf, '\n')
	}
	buf = append(buf, line...)
	buf = append(buf, '\n')
	n, err := j.f.Write(buf)
	if err != nil {
		if n > 0 {
			// Whatever part made it ends the file now.
			j.needNewline = buf[n-1] != '\n'
		}
		return Record{}, fmt.Errorf("append %s to journal %s: %w", event, j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		j.broken = err
		return Record{}, fmt.Errorf("append %s to journal %s: fsync: %w", event, j.path, err)
	}
	j.seq, j.prev, j.needNewline = rec.Seq, rec.Hash, false
	// The line ends where the O_APPEND write left the file offset.
	if pos, err := j.f.Seek(0, io.SeekCurrent); err == nil && pos > int64(len(line)) {
		j.open.note(rec, pos-int64(len(line))-1)
	} else {
		j.open.known = false
	}
	if err := j.head.write(j.open.head(rec)); err != nil {
		return rec, fmt.Errorf("journal %s: record seq %d is written but its head is not: %w", j.path, rec.Seq, err)
	}
	return rec, nil
}

func marshalData(data any) (json.RawMessage, error) {
	if data == nil {
		return nil, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("marshal data: %w", err)
	}
	if string(b) == "null" {
		return nil, nil
	}
	if b[0] != '{' {
		return nil, fmt.Errorf("data must be a JSON object, not %s", b)
	}
	return b, nil
}

// Close closes the journal file. Records are already durable; Close exists
// to release the descriptor.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	j.head.close()
	return err
}

// Path returns the journal's file name.
func (j *Journal) Path() string { return j.path }

// SetAside renames a damaged journal and its head to
// "<path>.damaged-<UTC time>" (and ".head"), so that Open starts a new
// journal while the old one is kept for inspection. It returns the new name
// of the journal.
func SetAside(path string, now time.Time) (string, error) {
	aside := path + ".damaged-" + now.UTC().Format("20060102T150405Z")
	moved := false
	if err := os.Rename(path, aside); err == nil {
		moved = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("set journal aside: %w", err)
	}
	if err := os.Rename(headPath(path), headPath(aside)); err == nil {
		moved = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("set journal head aside: %w", err)
	}
	if !moved {
		return "", fmt.Errorf("set journal aside: %w", fs.ErrNotExist)
	}
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("set journal aside: sync directory: %w", err)
	}
	return aside, nil
}
