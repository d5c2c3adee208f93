package appconfig

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestWriteFileKilledBeforeRename runs WriteFile in a child process that
// SIGKILLs itself at the worst moment, many times, and requires the file to
// be the old one or the new one, byte for byte, never a mix.
func TestWriteFileKilledBeforeRename(t *testing.T) {
	if p := os.Getenv("APPCONFIG_KILL_CHILD"); p != "" {
		_ = WriteFile(p, bytes.Repeat([]byte("N"), 1<<20))
		os.Exit(0) // only reached if the hook did not fire
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "config.json")
	old := bytes.Repeat([]byte("O"), 1<<20)
	if err := os.WriteFile(target, old, 0o640); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriteFileKilledBeforeRename$")
		cmd.Env = append(os.Environ(), "APPCONFIG_KILL_CHILD="+target, KillAtEnv+"=appconfig:before-rename")
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("run %d: child was not killed: %v", i, err)
		}
		assertFile(t, target, old)
		ents, _ := os.ReadDir(dir)
		if len(ents) != 2 || !strings.HasPrefix(ents[0].Name(), ".config.json.cfrollback-tmp-") {
			t.Fatalf("run %d: want the file and one leftover temp file, have %v", i, ents)
		}
	}
	// The next write removes the leftover and replaces the file whole.
	if err := WriteFile(target, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	assertFile(t, target, []byte("{}"))
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("leftovers remain: %v", ents)
	}
	fi, _ := os.Stat(target)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}
}

func TestWriteFileFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "config.json")
	if err := os.WriteFile(real, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.json", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the symlink was replaced by a file")
	}
	assertFile(t, real, []byte(`{"a":1}`))
}
