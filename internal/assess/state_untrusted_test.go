package assess

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// state_dir is written by root (the monitor's samples, the baseline): a dir other users can
// write is refused, and a symlink planted at the samples file is not appended through.
func TestStateRefusesUntrustedDirAndSymlink(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "state")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	smp := Sample{Time: time.Now()}
	for name, err := range map[string]error{
		"append":   Store{Path: StorePath(open)}.Append(smp),
		"baseline": WriteBaseline(open, Baseline{Recorded: time.Now()}),
	} {
		if !errors.Is(err, fsutil.ErrUntrustedDir) || !strings.Contains(err.Error(), open) ||
			!strings.Contains(err.Error(), "or set state_dir to another dir") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if entries, _ := os.ReadDir(open); len(entries) != 0 {
		t.Fatalf("written in the untrusted dir: %v", entries)
	}

	good := filepath.Join(base, "good")
	secret := filepath.Join(base, "shadow")
	if err := os.WriteFile(secret, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(good, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, StorePath(good)); err != nil {
		t.Fatal(err)
	}
	if err := (Store{Path: StorePath(good)}).Append(smp); !errors.Is(err, fsutil.ErrSymlink) {
		t.Fatalf("append through a symlink: %v", err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "root only\n" {
		t.Fatalf("target changed: %q", b)
	}
	if err := WriteBaseline(good, Baseline{Recorded: time.Now()}); err != nil {
		t.Fatal(err)
	}
}
