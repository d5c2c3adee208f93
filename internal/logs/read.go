package logs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Reader reads a Source.
type Reader struct {
	Journal JournalFunc   // nil: Journalctl
	Poll    time.Duration // how often a followed file is read again; 0: 250ms
	Warn    func(string)  // an unreadable file, unparsable journal entries; nil drops them
}

func (r Reader) warn(msg string) {
	if r.Warn != nil {
		r.Warn(msg)
	}
}

// Read passes the lines of src that f selects to emit, one call at a time; with follow it
// keeps reading new lines until ctx ends (and then returns nil). A file that cannot be read
// is skipped with a warning; none readable is an error.
func (r Reader) Read(ctx context.Context, src Source, f Filter, follow bool, emit func(Line) error) error {
	var mu sync.Mutex
	one := func(l Line) error {
		mu.Lock()
		defer mu.Unlock()
		return emit(l)
	}
	if src.Unit != "" {
		return r.readJournal(ctx, src, f, follow, one)
	}
	return r.readFiles(ctx, src, f, follow, one)
}

func (r Reader) readJournal(ctx context.Context, src Source, f Filter, follow bool, emit func(Line) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	journal := r.Journal
	if journal == nil {
		journal = Journalctl
	}
	stdout, wait, err := journal(ctx, JournalctlArgs(src.Unit, f.Since, follow))
	if err != nil {
		return fmt.Errorf("read %s: %w", src.Desc, err)
	}
	bad, scanErr := ScanJournal(stdout, f, emit)
	if scanErr != nil {
		cancel() // a failed write (closed pipe): stop journalctl too
	}
	waitErr := wait()
	if bad > 0 {
		r.warn(fmt.Sprintf("%d journal entries could not be parsed and were skipped", bad))
	}
	if scanErr != nil && ctx.Err() == nil {
		return fmt.Errorf("read %s: %w", src.Desc, scanErr)
	}
	return waitErr
}

func (r Reader) readFiles(ctx context.Context, src Source, f Filter, follow bool, emit func(Line) error) error {
	offsets := make([]int64, len(src.Files))
	readable := 0
	for i, p := range src.Files {
		off, err := ScanFile(ctx, p, 0, f, emit)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.warn(err.Error())
			continue
		}
		readable++
		offsets[i] = off
	}
	if readable == 0 {
		return fmt.Errorf("%w: none of the log files of %s could be read", ErrNoFiles, src.Desc)
	}
	if !follow {
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(src.Files))
	for i, p := range src.Files {
		wg.Go(func() { errs[i] = FollowFile(ctx, p, offsets[i], r.Poll, f, emit) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Tail reads only what a Source gained since the last Read: files from where the last
// read ended, the journal from the time of the last read. monitor counts error lines per
// sample with it.
type Tail struct {
	reader  Reader
	src     Source
	offsets map[string]int64
	since   time.Time
}

// NewTail starts a Tail at now: only lines written from now on are read.
func NewTail(r Reader, src Source, now time.Time) *Tail {
	t := &Tail{reader: r, src: src, offsets: map[string]int64{}, since: now}
	for _, p := range src.Files {
		if fi, err := os.Stat(p); err == nil {
			t.offsets[p] = fi.Size()
		}
	}
	return t
}

// Source is what the Tail reads.
func (t *Tail) Source() Source { return t.src }

// Read passes every line that arrived since the last Read (or NewTail) to emit; now is
// where this read ends for the journal. An error says the count is incomplete: the
// journal could not be read, or a file could not (a file that is gone is not an error:
// it was rotated away and is read again from its start when it comes back).
func (t *Tail) Read(ctx context.Context, now time.Time, emit func(Line) error) error {
	defer func() { t.since = now }()
	if t.src.Unit != "" {
		return t.reader.readJournal(ctx, t.src, Filter{Since: t.since}, false, emit)
	}
	var errs []error
	for _, p := range t.src.Files {
		off, err := ScanFile(ctx, p, t.offsets[p], Filter{}, emit)
		switch {
		case err == nil:
			t.offsets[p] = off
		case errors.Is(err, os.ErrNotExist):
			t.offsets[p] = 0
		default:
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
