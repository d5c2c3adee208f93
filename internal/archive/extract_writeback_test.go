package archive

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// syncCalls swaps flushFS and syncfs for counting versions (the real
// syscalls underneath unless flushErr is set) and returns the counters.
type syncCalls struct {
	mu         sync.Mutex
	background int   // flushFS calls
	final      int   // syncfs calls from extractor.sync
	bgAfter    []int // final calls made before each background one (must stay 0)
	flushed    chan struct{}
}

func countSyncs(t *testing.T, flushErr error) *syncCalls {
	t.Helper()
	c := &syncCalls{flushed: make(chan struct{}, 1)}
	savedFlush, savedSync := flushFS, syncfs
	t.Cleanup(func() { flushFS, syncfs = savedFlush, savedSync })
	flushFS = func(fd int) error {
		c.mu.Lock()
		c.background++
		c.bgAfter = append(c.bgAfter, c.final)
		c.mu.Unlock()
		select {
		case c.flushed <- struct{}{}:
		default:
		}
		if flushErr != nil {
			return flushErr
		}
		return unix.Syncfs(fd)
	}
	syncfs = func(fd int) error {
		c.mu.Lock()
		c.final++
		c.mu.Unlock()
		return unix.Syncfs(fd)
	}
	return c
}

func withBatch(t *testing.T, on bool, bytes int64) {
	t.Helper()
	savedOn, savedBytes := writebackOn, writebackBatchBytes
	writebackOn, writebackBatchBytes = on, bytes
	t.Cleanup(func() { writebackOn, writebackBatchBytes = savedOn, savedBytes })
}

// TestExtractFlushesWhileExtracting: with the writeback on, a background
// syncfs runs while entries are still being written (AfterEntry waits,
// bounded, for one in the middle of the archive), every one of them before
// the final syncfs, which runs exactly once; with it off, only the final
// one runs. The trees are the same.
func TestExtractFlushesWhileExtracting(t *testing.T) {
	tmp := t.TempDir()
	archivePath := writeTemp(t, tmp, "a.tar.gz", tgz(t, parallelEntries()...))
	for _, on := range []bool{true, false} {
		withBatch(t, on, 32<<10) // parallelEntries has ~1.7 MB of file data
		c := countSyncs(t, nil)
		dest := filepath.Join(tmp, map[bool]string{true: "on", false: "off"}[on])
		var waited atomic.Bool
		_, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1, AfterEntry: func(n int) {
			if !on || n != 250 {
				return
			}
			// 250 entries hold far more than 32 KiB: a flush was kicked.
			select {
			case <-c.flushed:
				waited.Store(true)
			case <-time.After(20 * time.Second):
				t.Errorf("no background syncfs within 20 s of entry %d", n)
			}
		}})
		must(t, err)
		c.mu.Lock()
		if c.final != 1 {
			t.Errorf("writeback on=%v: the final syncfs ran %d times, want 1", on, c.final)
		}
		if !on && c.background != 0 {
			t.Errorf("writeback off: %d background syncfs calls, want none", c.background)
		}
		if on && (c.background == 0 || !waited.Load()) {
			t.Errorf("writeback on: %d background syncfs calls, one during the extraction: %v", c.background, waited.Load())
		}
		for i, finals := range c.bgAfter {
			if finals != 0 {
				t.Errorf("background syncfs %d ran after the final one", i)
			}
		}
		c.mu.Unlock()
	}
	compareTrees(t, filepath.Join(tmp, "off"), filepath.Join(tmp, "on"), compareOpts{})
}

// TestExtractIgnoresBackgroundFlushErrors: a background syncfs that fails
// (as it would where syncfs is refused) changes nothing: the extraction
// completes with the same tree, and the final syncfs, which decides, runs.
// A final syncfs that fails still fails the extraction and removes dest.
func TestExtractIgnoresBackgroundFlushErrors(t *testing.T) {
	tmp := t.TempDir()
	archivePath := writeTemp(t, tmp, "a.tar.gz", tgz(t, parallelEntries()...))
	withBatch(t, false, 0)
	ref := filepath.Join(tmp, "ref")
	_, err := Extract(context.Background(), archivePath, ref, ExtractOptions{UID: -1, GID: -1})
	must(t, err)

	for name, flushErr := range map[string]error{"enosys": unix.ENOSYS, "eio": unix.EIO} {
		withBatch(t, true, 16<<10)
		c := countSyncs(t, flushErr)
		dest := filepath.Join(tmp, name)
		if _, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1}); err != nil {
			t.Fatalf("background syncfs failing with %v: %v", flushErr, err)
		}
		if c.background == 0 || c.final != 1 {
			t.Errorf("%v: %d background and %d final syncfs calls, want some and 1", flushErr, c.background, c.final)
		}
		compareTrees(t, ref, dest, compareOpts{})
	}

	injected := errors.New("injected syncfs failure")
	saved := syncfs
	syncfs = func(int) error { return injected }
	t.Cleanup(func() { syncfs = saved })
	dest := filepath.Join(tmp, "final-fails")
	if _, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1}); !errors.Is(err, injected) {
		t.Fatalf("Extract with a failing final syncfs: %v, want the injected error", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dest survived a failed final syncfs: %v", err)
	}
}
