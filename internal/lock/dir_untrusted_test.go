package lock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// In a dir other users can write, they could swap the lock file between the checks and the
// open, or delete it to let a second run start beside ours: the dir is refused, named.
func TestAcquireRefusesUntrustedLockDir(t *testing.T) {
	testenv.RequireRoot(t)
	base := t.TempDir()
	open := filepath.Join(base, "run")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(open, 0o1777); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(base, "theirs")
	if err := os.Mkdir(theirs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		filepath.Join(open, "cfrollback.lock"),
		filepath.Join(theirs, "cfrollback.lock"),
		filepath.Join(theirs, "sub", "cfrollback.lock"),
	} {
		l, err := Acquire(p, Holder{Command: "test"})
		if err == nil {
			_ = l.Release()
			t.Fatalf("%s: acquired", p)
		}
		if !errors.Is(err, fsutil.ErrUntrustedDir) || !strings.Contains(err.Error(), filepath.Dir(p)) {
			t.Fatalf("%s: %v", p, err)
		}
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s created: %v", p, err)
		}
	}
}
