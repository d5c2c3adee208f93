package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// TestRoundTrip backs up a rich tree with Create and restores it with
// Extract: modes (set-id bits dropped), nanosecond mtimes of files, dirs and
// symlinks, symlink targets, hard links and empty dirs must all come back.
func TestRoundTrip(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	must(t, os.Mkdir(src, 0o755))
	makeRichTree(t, src, true)
	archivePath := filepath.Join(tmp, "backup.tar.gz")

	created, err := Create(context.Background(), src, archivePath, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	verified, err := Verify(context.Background(), archivePath, Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(tmp, "dest")
	extracted, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	compareTrees(t, src, dest, compareOpts{dropSetID: true})

	data, err := os.ReadFile(archivePath)
	must(t, err)
	sum := sha256.Sum256(data)
	want := Summary{Entries: 28, Files: 11, Dirs: 10, Symlinks: 5, Hardlinks: 2, CompressedSize: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	want.Bytes = created.Bytes
	for name, got := range map[string]Summary{"Create": created, "Verify": verified, "Extract": extracted} {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s summary %+v, want %+v", name, got, want)
		}
	}
	if created.Bytes < 1_000_000 {
		t.Errorf("Bytes = %d, want the sum of file sizes (over 1 MB)", created.Bytes)
	}
	fi, err := os.Stat(filepath.Join(dest, "bin/setuid-tool"))
	must(t, err)
	if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("setuid-tool restored as %v, want -rwxr-xr-x (set-id bits dropped)", fi.Mode())
	}
	fi, err = os.Stat(filepath.Join(dest, "shared"))
	must(t, err)
	if fi.Mode()&(fs.ModeSetgid|fs.ModeSticky) != 0 || fi.Mode().Perm() != 0o775 {
		t.Errorf("shared restored as %v, want drwxrwxr-x (setgid and sticky dropped)", fi.Mode())
	}
	fi, err = os.Stat(dest)
	must(t, err)
	if fi.Mode().Perm() != 0o750 {
		t.Errorf("dest mode %v, want the archive root's 0750", fi.Mode().Perm())
	}
}

// TestExtractHandWritten covers what Create never writes: missing parents,
// no root entry, a read-only dir with children, mode 0000, and atimes.
func TestExtractHandWritten(t *testing.T) {
	tmp := t.TempDir()
	mt := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	archivePath := writeTemp(t, tmp, "a.tar.gz", tgz(t,
		tEntry{name: "implied/parent/file", body: "x", mode: 0o640, mtime: mt},
		tEntry{name: "ro/", typ: tar.TypeDir, mode: 0o555, mtime: mt},
		tEntry{name: "ro/sub/", typ: tar.TypeDir, mode: 0o500, mtime: mt},
		tEntry{name: "ro/sub/f", body: "in a read-only dir", mode: -1, mtime: mt},
		tEntry{name: "implied/", typ: tar.TypeDir, mode: 0o711, mtime: mt}, // named after its child
	))
	dest := filepath.Join(tmp, "dest")
	sum, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Entries != 5 || sum.Files != 2 || sum.Dirs != 3 {
		t.Errorf("summary %+v", sum)
	}
	tree := readTree(t, dest)
	for name, want := range map[string]fs.FileMode{".": 0o755, "implied": 0o711, "implied/parent": 0o755, "implied/parent/file": 0o640, "ro": 0o555, "ro/sub": 0o500, "ro/sub/f": 0} {
		if got := tree[name].perm; got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
	for _, name := range []string{"implied", "implied/parent/file", "ro", "ro/sub", "ro/sub/f"} {
		if !tree[name].mtime.Equal(mt) {
			t.Errorf("%s: mtime %v, want %v", name, tree[name].mtime, mt)
		}
	}
	// dest is chmodded read-only dirs and all; it must still be removable by
	// its owner (the caller's cleanup).
	must(t, removeTree(dest))
}

func TestExtractOwner(t *testing.T) {
	testenv.RequireRoot(t)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	must(t, os.Mkdir(src, 0o755))
	makeRichTree(t, src, false)
	archivePath := filepath.Join(tmp, "b.tar.gz")
	if _, err := Create(context.Background(), src, archivePath, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(tmp, "dest")
	if _, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: 4242, GID: 4343}); err != nil {
		t.Fatal(err)
	}
	for name, e := range readTree(t, dest) {
		if e.uid != 4242 || e.gid != 4343 {
			t.Errorf("%s (%s) owned by %d:%d, want 4242:4343", name, e.typ, e.uid, e.gid)
		}
	}
	compareTrees(t, src, dest, compareOpts{})
}

func TestExtractDestination(t *testing.T) {
	tmp := t.TempDir()
	archivePath := writeTemp(t, tmp, "a.tar.gz", tgz(t, tEntry{name: "f", body: "x"}))

	existing := filepath.Join(tmp, "existing")
	must(t, os.Mkdir(existing, 0o755))
	writeTemp(t, existing, "keep", []byte("mine"))
	if _, err := Extract(context.Background(), archivePath, existing, ExtractOptions{UID: -1, GID: -1}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Extract into an existing dir: %v, want ErrExist", err)
	}
	if data, err := os.ReadFile(filepath.Join(existing, "keep")); err != nil || string(data) != "mine" {
		t.Errorf("existing dest was touched: %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(existing, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("extracted into an existing dest")
	}
	if _, err := Extract(context.Background(), archivePath, filepath.Join(tmp, "no/such/parent"), ExtractOptions{UID: -1, GID: -1}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Extract with a missing parent: %v, want ErrNotExist", err)
	}
	if _, err := Extract(context.Background(), filepath.Join(tmp, "missing.tar.gz"), filepath.Join(tmp, "d"), ExtractOptions{UID: -1, GID: -1}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Extract of a missing archive: %v, want ErrNotExist", err)
	}
	if _, err := os.Lstat(filepath.Join(tmp, "d")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dest left behind after a missing archive")
	}
}

// TestConcatenatedMembers: gzip -t and GNU tar accept a file of several gzip
// members, so a backup written that way (pigz, or cat a.gz b.gz) is valid.
func TestConcatenatedMembers(t *testing.T) {
	tmp := t.TempDir()
	raw := tarBytes(t, tEntry{name: "./", typ: tar.TypeDir}, tEntry{name: "./a", body: strings.Repeat("a", 5000)}, tEntry{name: "./b", body: "b"})
	data := concat(gzipBytes(t, raw[:1536]), gzipBytes(t, nil), gzipBytes(t, raw[1536:]))
	archivePath := writeTemp(t, tmp, "multi.tar.gz", data)
	var calls, last, total atomic.Int64
	sum, err := Verify(context.Background(), archivePath, Limits{}, func(n, tot int64) { calls.Add(1); last.Store(n); total.Store(tot) })
	if err != nil {
		t.Fatal(err)
	}
	if sum.Files != 2 || sum.Bytes != 5001 || sum.CompressedSize != int64(len(data)) || sum.SHA256 != sha(data) {
		t.Errorf("summary %+v (file is %d bytes, sha %s)", sum, len(data), sha(data))
	}
	if calls.Load() == 0 || last.Load() != int64(len(data)) || total.Load() != int64(len(data)) {
		t.Errorf("progress: %d calls, last %d/%d, want a final %d/%d", calls.Load(), last.Load(), total.Load(), len(data), len(data))
	}
	dest := filepath.Join(tmp, "dest")
	if _, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "a")); len(got) != 5000 {
		t.Errorf("a has %d bytes, want 5000", len(got))
	}
}

// cancelAfter is a context whose Err turns to Canceled after n calls, so a
// test can cancel at a precise point in the middle of an extraction.
type cancelAfter struct {
	context.Context
	n        atomic.Int64
	onCancel func()
}

func (c *cancelAfter) Err() error {
	if n := c.n.Add(-1); n == 0 && c.onCancel != nil {
		c.onCancel()
	} else if n < 0 {
		return context.Canceled
	}
	return nil
}

func TestExtractCancel(t *testing.T) {
	tmp := t.TempDir()
	var entries []tEntry
	entries = append(entries, tEntry{name: "./", typ: tar.TypeDir})
	for i := range 100 {
		entries = append(entries, tEntry{name: fmt.Sprintf("./d%d/f%03d", i%5, i), body: strings.Repeat("x", 100_000)})
	}
	archivePath := writeTemp(t, tmp, "a.tar.gz", tgz(t, entries...))
	dest := filepath.Join(tmp, "dest")

	var extractedBeforeCancel int
	ctx := &cancelAfter{Context: context.Background(), onCancel: func() {
		_ = filepath.WalkDir(dest, func(string, fs.DirEntry, error) error { extractedBeforeCancel++; return nil })
	}}
	ctx.n.Store(150)
	_, err := Extract(ctx, archivePath, dest, ExtractOptions{UID: -1, GID: -1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Extract: %v, want context.Canceled", err)
	}
	if extractedBeforeCancel < 10 {
		t.Errorf("only %d paths existed when the context was cancelled; the test should cancel mid-way", extractedBeforeCancel)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dest survived cancellation: %v", err)
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Extract(cancelled, archivePath, dest, ExtractOptions{UID: -1, GID: -1}); !errors.Is(err, context.Canceled) {
		t.Errorf("Extract with a cancelled context: %v", err)
	}
	if _, err := Verify(cancelled, archivePath, Limits{}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with a cancelled context: %v", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dest left after a cancelled start: %v", err)
	}
}

// TestReadErrorIsNotCorruption: a file that cannot be read (here a directory
// passed as the archive) is an I/O problem, not a corrupt backup.
func TestReadErrorIsNotCorruption(t *testing.T) {
	tmp := t.TempDir()
	_, err := Verify(context.Background(), tmp, Limits{}, nil)
	if err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("Verify of a directory: %v, want a non-corruption error", err)
	}
	f, err := os.Open("/proc/self/mem") // reads fail with EIO at offset 0
	if err == nil {
		f.Close()
		if _, err := Verify(context.Background(), "/proc/self/mem", Limits{}, nil); err == nil || errors.Is(err, ErrCorrupt) {
			t.Errorf("Verify of /proc/self/mem: %v, want a non-corruption error", err)
		}
	}
}

func TestUnsafeEntryError(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", unsafeEntry("../etc/x", "escapes the archive root"))
	if got, want := err.Error(), `wrapped: entry "../etc/x" escapes the archive root`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrUnsafe) || errors.Is(err, ErrCorrupt) {
		t.Errorf("errors.Is: unsafe %v, corrupt %v", errors.Is(err, ErrUnsafe), errors.Is(err, ErrCorrupt))
	}
	// Terminal escapes in a hostile name must come out quoted, not raw.
	if msg := unsafeEntry("\x1b[2Jx", "r").Error(); strings.ContainsRune(msg, 0x1b) {
		t.Errorf("escape character printed raw: %q", msg)
	}
	if msg := unsafeEntry(strings.Repeat("n", 10000), "r").Error(); len(msg) > 400 {
		t.Errorf("a 10000-byte name gives a %d-byte message", len(msg))
	}
}

// TestCheckerNames drives the name rules directly, including NUL bytes,
// which archive/tar never lets through to the checker.
func TestCheckerNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "./a": true, "a/b/": true, "a//b": true, "./": true, ".": true, "...": true, "..a": true, "a..": true,
		"": false, "/a": false, "a\x00b": false, "..": false, "../a": false, "a/..": false, "a/../b": false, "\xff": false,
	} {
		hdr := &tar.Header{Name: name, Typeflag: tar.TypeDir}
		_, err := newChecker(Limits{}).check(hdr)
		if ok != (err == nil) {
			t.Errorf("%q: err %v, want ok=%v", name, err, ok)
		}
		if err != nil && !errors.Is(err, ErrUnsafe) {
			t.Errorf("%q: %v is not ErrUnsafe", name, err)
		}
	}
}

func TestSymlinkResolution(t *testing.T) {
	for _, tc := range []struct {
		links [][2]string // name, target, in order
		ok    bool
	}{
		{[][2]string{{"a/b/l", "../../x"}}, true},
		{[][2]string{{"a/b/l", "../../../x"}}, false},
		{[][2]string{{"l", "."}}, true},
		{[][2]string{{"l", "./.."}}, false},
		{[][2]string{{"a/up", ".."}, {"l", "a/up/x"}}, true},
		{[][2]string{{"a/up", ".."}, {"l", "a/up/.."}}, false},
		{[][2]string{{"a/b/up2", "../.."}, {"a/b/l", "up2/a/b/up2/a"}}, true},
		{[][2]string{{"x/l", "../d/.."}, {"d", "x"}}, true}, // d/.. = x/.. = root
		{[][2]string{{"x/l", "../d/../.."}, {"d", "x"}}, false},
		{[][2]string{{"self", "self"}}, false},
	} {
		c := newChecker(Limits{})
		var err error
		for _, l := range tc.links {
			if _, err = c.check(&tar.Header{Name: l[0], Typeflag: tar.TypeSymlink, Linkname: l[1]}); err != nil {
				break
			}
		}
		if err == nil {
			err = c.finish()
		}
		if tc.ok != (err == nil) {
			t.Errorf("%v: err %v, want ok=%v", tc.links, err, tc.ok)
		}
	}
}

// inode returns a path's inode number, for the hard link checks.
func inode(t testing.TB, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	must(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}
