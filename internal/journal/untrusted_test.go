package journal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// A symlink planted at the journal path (by a user who could write its dir) would make root
// append to, or create, any file: Open refuses it and the target is unchanged.
func TestOpenRefusesSymlinkedJournal(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "shadow")
	if err := os.WriteFile(secret, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "journal.jsonl")
	if err := os.Symlink(secret, path); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if !errors.Is(err, fsutil.ErrSymlink) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open through a symlink: %v", err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "root only\n" {
		t.Fatalf("target changed: %q", b)
	}
	if _, err := os.Lstat(headPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a head was written: %v", err)
	}

	// dangling: nothing is created where it points
	path2 := filepath.Join(dir, "j2.jsonl")
	target := filepath.Join(dir, "made-by-root")
	if err := os.Symlink(target, path2); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path2); !errors.Is(err, fsutil.ErrSymlink) {
		t.Fatalf("Open through a dangling symlink: %v", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("created through the link: %v", err)
	}
}

// The journal's dir must be one other users cannot write, existing or created.
func TestOpenRefusesUntrustedDir(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "log")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(open, "journal.jsonl"), filepath.Join(open, "cfrollback", "journal.jsonl")} {
		_, err := Open(path)
		if !errors.Is(err, fsutil.ErrUntrustedDir) || !strings.Contains(err.Error(), "refusing to write in "+open) || !strings.Contains(err.Error(), "writable by other users") ||
			!strings.Contains(err.Error(), "set journal to another dir") {
			t.Fatalf("Open(%s): %v", path, err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s created: %v", path, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(open, "cfrollback")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dir created under an untrusted dir: %v", err)
	}
}
