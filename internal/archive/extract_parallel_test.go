package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// parallelEntries is an archive that exercises every path of the pipeline:
// small files (writers), empty ones, files over smallFileMax (the reader),
// symlinks (writers), hard links to files of both kinds (made last), missing
// parents, and a read-only directory with children.
func parallelEntries() []tEntry {
	es := []tEntry{{name: "./", typ: tar.TypeDir, mode: 0o750}, {name: "./ro/", typ: tar.TypeDir, mode: 0o555}, {name: "./a/", typ: tar.TypeDir, mode: 0o700}}
	for i := range 300 {
		dir := []string{"a", "b/c", "ro", "d/e/f"}[i%4]
		es = append(es, tEntry{name: fmt.Sprintf("./%s/f%03d", dir, i), body: strings.Repeat(string(rune('a'+i%26)), i*37%5000), mode: 0o640 + int64(i%2)})
	}
	es = append(es,
		tEntry{name: "./a/group-writable", body: "x", mode: 0o666}, // under a 022 umask: created 0600, then chmod
		tEntry{name: "./big", body: strings.Repeat("0123456789", smallFileMax/10+1000)},
		tEntry{name: "./a/link", typ: tar.TypeSymlink, link: "f000"},
		tEntry{name: "./ro/up", typ: tar.TypeSymlink, link: "../big"},
		tEntry{name: "./hard-small", typ: tar.TypeLink, link: "./a/f004"},
		tEntry{name: "./ro/hard-big", typ: tar.TypeLink, link: "./big"},
		tEntry{name: "./hard-hard", typ: tar.TypeLink, link: "./hard-small"},
	)
	// Named after their children: the parents they imply are created first
	// with default modes, and these entries then set mode and mtime.
	for _, d := range []string{"b", "b/c", "d", "d/e", "d/e/f"} {
		es = append(es, tEntry{name: "./" + d + "/", typ: tar.TypeDir, mode: 0o751})
	}
	return es
}

func withWriters(t *testing.T, n int) {
	saved := extractWriters
	extractWriters = n
	t.Cleanup(func() { extractWriters = saved })
}

// TestExtractParallelMatchesSequential: the pipeline restores exactly the
// tree that one goroutine doing everything in order restores, and reports
// every entry to AfterEntry once.
func TestExtractParallelMatchesSequential(t *testing.T) {
	tmp := t.TempDir()
	archivePath := writeTemp(t, tmp, "a.tar.gz", tgz(t, parallelEntries()...))
	extract := func(writers int) (string, Summary, int) {
		withWriters(t, writers)
		dest := filepath.Join(tmp, fmt.Sprint("w", writers))
		var calls, last atomic.Int64
		sum, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1, AfterEntry: func(n int) {
			calls.Add(1)
			last.Store(int64(n))
		}})
		if err != nil {
			t.Fatalf("%d writers: %v", writers, err)
		}
		if calls.Load() != int64(sum.Entries) || last.Load() != int64(sum.Entries) {
			t.Errorf("%d writers: AfterEntry called %d times, last with %d; want %d", writers, calls.Load(), last.Load(), sum.Entries)
		}
		return dest, sum, int(calls.Load())
	}
	seq, seqSum, _ := extract(0)
	par, parSum, _ := extract(8)
	if fmt.Sprint(seqSum) != fmt.Sprint(parSum) {
		t.Errorf("summaries differ: sequential %+v, parallel %+v", seqSum, parSum)
	}
	compareTrees(t, seq, par, compareOpts{})
	fi, err := os.Stat(filepath.Join(par, "ro/hard-big"))
	must(t, err)
	if fi.Size() != int64(smallFileMax/10+1000)*10 {
		t.Errorf("ro/hard-big is %d bytes", fi.Size())
	}
	for name, want := range map[string]fs.FileMode{"ro": 0o555, "a/group-writable": 0o666, "b/c/f001": 0o641, "a/f000": 0o640} {
		if fi, err := os.Stat(filepath.Join(par, name)); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %v", name, fi, err, want)
		}
	}
}

// TestExtractWriterError: the first writer that fails stops the reader and
// the other writers, its error is the one returned, and dest is removed.
func TestExtractWriterError(t *testing.T) {
	for _, writers := range []int{1, 8} { // with 0, files do not go through placeEntry
		t.Run(fmt.Sprint(writers, "writers"), func(t *testing.T) {
			withWriters(t, writers)
			tmp := t.TempDir()
			es := []tEntry{{name: "./", typ: tar.TypeDir}}
			for i := range 3000 {
				es = append(es, tEntry{name: fmt.Sprintf("./d%02d/f%04d", i/100, i), body: "0123456789"})
			}
			archivePath := writeTemp(t, tmp, "a.tar.gz", tgz(t, es...))
			injected := errors.New("injected failure")
			var placed atomic.Int64
			saved := placeEntry
			placeEntry = func(x *extractor, e entry, data []byte) error {
				if e.name == "d00/f0050" {
					return injected
				}
				placed.Add(1)
				return saved(x, e, data)
			}
			t.Cleanup(func() { placeEntry = saved })
			dest := filepath.Join(tmp, "dest")
			_, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1})
			if !errors.Is(err, injected) {
				t.Fatalf("Extract: %v, want the injected error", err)
			}
			if !strings.Contains(err.Error(), archivePath) {
				t.Errorf("error %q does not name the archive", err)
			}
			if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("dest survived a writer's failure: %v", err)
			}
			// The reader stops at its next entry and the writers drop what
			// is queued (at most writerQueue each), so most of the 3000
			// files must never be placed.
			if n := placed.Load(); n > int64(50+(writerQueue+1)*writers) {
				t.Errorf("%d entries placed after the failure was due; the failure should stop the pipeline", n)
			}
		})
	}
}

// TestExtractParallelCorrupt: a truncated archive fails as ErrCorrupt with
// writers busy, and leaves nothing.
func TestExtractParallelCorrupt(t *testing.T) {
	withWriters(t, 8)
	tmp := t.TempDir()
	data := tgz(t, parallelEntries()...)
	archivePath := writeTemp(t, tmp, "a.tar.gz", data[:len(data)*2/3])
	dest := filepath.Join(tmp, "dest")
	if _, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Extract: %v, want ErrCorrupt", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dest survived: %v", err)
	}
}

func TestReadUmask(t *testing.T) {
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	if got := readUmask(); got != 0o027 {
		t.Errorf("readUmask() = %#o, want 027", got)
	}
}
