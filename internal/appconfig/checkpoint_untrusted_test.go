package appconfig

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

// Checkpoints go to <backup.dir>/config, written by root: a dir other users can write is
// refused (a deploy user may own it), before anything is written.
func TestWriteCheckpointRefusesOthersWritableDir(t *testing.T) {
	base := t.TempDir()
	backups := filepath.Join(base, "backups")
	if err := os.Mkdir(backups, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(backups, 0o777); err != nil {
		t.Fatal(err)
	}
	cp := NewCheckpoint("/opt/app/config.json", []byte("{}"), "1.0.0", "test", time.Now())
	for _, dir := range []string{backups, filepath.Join(backups, "config")} {
		_, err := WriteCheckpoint(dir, "", cp)
		if !errors.Is(err, fsutil.ErrUntrustedDir) || !strings.Contains(err.Error(), backups) ||
			!strings.Contains(err.Error(), "or set backup.dir to another dir") {
			t.Fatalf("%s: %v", dir, err)
		}
	}
	if entries, _ := os.ReadDir(backups); len(entries) != 0 {
		t.Fatalf("written in the untrusted dir: %v", entries)
	}
	if err := syscall.Chmod(backups, 0o775); err != nil { // a deploy group may write it
		t.Fatal(err)
	}
	if _, err := WriteCheckpoint(filepath.Join(backups, "config"), "", cp); err != nil {
		t.Fatal(err)
	}
}
