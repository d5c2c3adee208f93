package archive

import (
	"os"
	"sync/atomic"
)

// Writeback. Extract makes the tree durable with one syncfs at the end
// (extractor.sync). Without more, the page cache holds every file's data
// until then: the kernel starts writing dirty pages on its own only past
// vm.dirty_background_ratio (10% of RAM, gigabytes on the test machine) or
// after 30 s, so the disk sits idle while files are created and the final
// syncfs then writes the whole tree at once, the caller waiting for all of
// it.
//
// So after every writebackBatchBytes of file data, a goroutine of its own
// runs a syncfs while the extraction goes on: the disk writes what is
// dirty while the next files are decompressed and created, and nothing in
// the pipeline waits for it. A syncfs writes all dirty inodes in one
// plugged pass, many files per block request. Starting each file's
// writeback with sync_file_range(SYNC_FILE_RANGE_WRITE) instead was
// measured and dropped: one block request and one device notification per
// small file, which on the test machine's virtual disk (a VM exit each)
// made extraction 1.6x slower (docs/BENCHMARKS.md).
//
// This is a head start, not a durability guarantee: the final syncfs is
// unchanged and still what makes the tree durable; it now finds most data
// written and is left with the last batch, the inodes and directories, and
// the cache flush. Its descriptor is opened before the first file is
// written, so it reports any writeback error since then (syncfs reports
// the errors that happened after the open of the descriptor it is given),
// the background syncfs's included: those are ignored where they happen.

// writebackOn: benchmarks turn the background syncfs off to compare.
var writebackOn = true

// writebackBatchBytes is the file data written between two background
// syncfs calls.
var writebackBatchBytes int64 = 64 << 20

// flushFS is the background syncfs (unix.Syncfs through syncfs); tests
// swap it to count the calls or to make them fail.
var flushFS = func(fd int) error { return syncfs(fd) }

// writeback is the background syncfs of one extraction, shared by the
// reader and the writers. A nil *writeback does nothing.
type writeback struct {
	dir      *os.File // dest, for the background syncfs
	pending  atomic.Int64
	kick     chan struct{}
	finished chan struct{}
}

// newWriteback starts the goroutine that runs the background syncfs on
// root's directory, or returns nil when the writeback is off or the
// directory cannot be opened (no head start then; the final syncfs still
// runs). End it with stop.
func newWriteback(root *os.Root) *writeback {
	if !writebackOn {
		return nil
	}
	dir, err := root.Open(".")
	if err != nil {
		return nil
	}
	w := &writeback{dir: dir, kick: make(chan struct{}, 1), finished: make(chan struct{})}
	go w.flush()
	return w
}

// flush runs one syncfs per kick; kicks that come while one runs are
// merged into the next.
func (w *writeback) flush() {
	defer close(w.finished)
	for range w.kick {
		_ = flushFS(int(w.dir.Fd())) // the final syncfs reports errors: its descriptor was opened first
	}
}

// stop ends the background syncfs and waits for the one running, if any:
// it must not outlive the extraction, nor run while a partial tree is
// removed.
func (w *writeback) stop() {
	if w == nil {
		return
	}
	close(w.kick)
	<-w.finished
	_ = w.dir.Close() // opened read-only
}

// wrote counts n bytes of file data written, and kicks the background
// syncfs every writebackBatchBytes.
func (w *writeback) wrote(n int64) {
	if w == nil || n <= 0 {
		return
	}
	if total := w.pending.Add(n); total >= writebackBatchBytes && w.pending.CompareAndSwap(total, 0) {
		select {
		case w.kick <- struct{}{}:
		default: // one is queued already
		}
	}
}

// writebackWriter writes to fd and counts what it wrote in wb as it goes,
// so that a large, streamed file kicks the background syncfs too.
type writebackWriter struct {
	fd int
	wb *writeback
}

func (w writebackWriter) Write(p []byte) (int, error) {
	n, err := fdWriter(w.fd).Write(p)
	w.wb.wrote(int64(n))
	return n, err
}
