package standby

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// walkReference is the walk as it was before walk.go: filepath.WalkDir and an lstat of
// each whole path. The fstatat walk must visit the same entries in the same order.
func walkReference(dir string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, Entry{Path: filepath.ToSlash(rel), Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size,
			MtimeNS: st.Mtim.Nano(), CtimeNS: st.Ctim.Nano(), Ino: st.Ino, Nlink: uint64(st.Nlink)})
		return nil
	})
	return out, err
}

func TestWalkMatchesWalkDir(t *testing.T) {
	dir := t.TempDir()
	// names that sort differently as paths and as names ("a" < "a-" < "a.b" < "a/b" ...)
	for _, d := range []string{"a", "a/b", "a/b/c", "a-", "a.b", "B", "z/y/x", "empty"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a/1", "a/b/2", "a/b/c/3", "a-/4", "a.b/5", "B/6", "z/y/x/7", "top", "a0", "\xffodd"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(dir, "link-to-dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "top"), filepath.Join(dir, "a", "hard")); err != nil {
		t.Fatal(err)
	}
	want, err := walkReference(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []Entry
	if err := walk(context.Background(), dir, func(e Entry, dev uint64) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("walk visited\n%v\nWalkDir visited\n%v", got, want)
	}
	if len(got) != 23 { // ".", 10 directories, 10 files, the symlink, the hard link
		t.Fatalf("%d entries: %v", len(got), got)
	}
	for _, e := range got {
		if e.Path == "link-to-dir/1" {
			t.Fatal("walk followed a symlink to a directory")
		}
	}
}

func TestWalkErrors(t *testing.T) {
	dir := t.TempDir()
	if err := walk(context.Background(), filepath.Join(dir, "missing"), func(Entry, uint64) error { return nil }); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
	for i := range 3000 {
		if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676))), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := walk(ctx, dir, func(Entry, uint64) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled walk: %v", err)
	}
	stop := errors.New("stop")
	n := 0
	if err := walk(context.Background(), dir, func(Entry, uint64) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	}); !errors.Is(err, stop) || n != 5 {
		t.Fatalf("fn's error: %v after %d", err, n)
	}
}
