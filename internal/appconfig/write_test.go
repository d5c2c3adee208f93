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
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
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
	realFile := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "config.json")
	if err := os.WriteFile(realFile, []byte("{}"), 0o600); err != nil {
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
	assertFile(t, realFile, []byte(`{"a":1}`))
}

// The install dir may be a deploy user's. A config.json (or a dir on the way to the agents
// dir) that is a symlink they own is refused, and the file it points to is untouched; a
// link root owns is followed, as before (an admin's choice).
func TestWritesRefuseLinksAnotherUserOwns(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "root-only")
	if err := os.WriteFile(secret, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.json")
	if err := os.Symlink(secret, cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(cfg, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(cfg, []byte("{}\n"))
	if err == nil || !strings.Contains(err.Error(), "symbolic link owned by another user") || !strings.Contains(err.Error(), cfg) {
		t.Fatalf("write through a link nobody owns: %v", err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "root only\n" {
		t.Fatalf("the link's target was written: %q", b)
	}
	// root's own link: followed
	if err := os.Lchown(cfg, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(cfg, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "{}\n" {
		t.Fatalf("root's link was not followed: %q", b)
	}

	// the agents dir reached through a dir link nobody owns
	elsewhere := filepath.Join(dir, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o700); err != nil {
		t.Fatal(err)
	}
	claude := filepath.Join(dir, ".claude")
	if err := os.Symlink(elsewhere, claude); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(claude, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err = ReplaceDir(filepath.Join(claude, "agents"), nil, time.Now())
	if err == nil || !strings.Contains(err.Error(), "symbolic link owned by another user") {
		t.Fatalf("agents dir through a link nobody owns: %v", err)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Fatalf("written through the link: %v", ents)
	}
}
