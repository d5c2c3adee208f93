package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// The backup state is replaced by root: never in a dir other users can write.
func TestStoreUpdateRefusesUntrustedDir(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "lib")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, st := range []Store{
		{Path: filepath.Join(open, "backups.json")},
		{Path: filepath.Join(open, "backups.json"), CreateDir: true},
		{Path: filepath.Join(open, "cfrollback", "backups.json"), CreateDir: true},
	} {
		called := false
		err := st.Update(context.Background(), func(*State) error { called = true; return nil })
		if !errors.Is(err, fsutil.ErrUntrustedDir) || !strings.Contains(err.Error(), open) ||
			!strings.Contains(err.Error(), "or set backup.state to another dir") {
			t.Fatalf("%+v: %v", st, err)
		}
		if called {
			t.Fatalf("%+v: fn ran", st)
		}
	}
	if entries, _ := os.ReadDir(open); len(entries) != 0 {
		t.Fatalf("written in the untrusted dir: %v", entries)
	}
	// a trusted one works
	st := Store{Path: filepath.Join(base, "state", "backups.json"), CreateDir: true}
	if err := st.Update(context.Background(), func(s *State) error { return nil }); err != nil {
		t.Fatal(err)
	}
}
