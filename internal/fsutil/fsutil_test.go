package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteFileReplacesWholeAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "state.json")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "two" {
		t.Fatalf("content %q %v", b, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temp files left: %v", entries)
	}
}

func TestWriteFileErrorLeavesOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// a directory where the file should go: the rename fails
	target := filepath.Join(dir, "d")
	if err := os.MkdirAll(filepath.Join(target, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(target, []byte("new"), 0o600); err == nil {
		t.Fatal("replaced a non-empty directory")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temp file left behind: %v", entries)
	}
}

func TestWriteOptions(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.json")
	if err := Write(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600, WriteOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("write into a missing dir without MkdirPerm: %v", err)
	}
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// the temp file has the caller's name, the owner asked for and the mode, before the
	// rename; a hook error stops the write and leaves the old file and no temp file
	var seen string
	stop := errors.New("killed")
	err := Write(p, []byte("new"), 0o640, WriteOptions{
		TempPattern: ".app.json.mine-*",
		Chown:       true, UID: os.Getuid(), GID: os.Getgid(),
		BeforeRename: func(tmp string) error {
			seen = filepath.Base(tmp)
			fi, err := os.Stat(tmp)
			if err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("temp file before the rename: %v %v", fi, err)
			}
			return stop
		},
	})
	if !errors.Is(err, stop) || !strings.HasPrefix(seen, ".app.json.mine-") {
		t.Fatalf("err %v, temp %q", err, seen)
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Fatalf("old file changed: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temp file left: %v", entries)
	}
}

func TestWriteTempNeedsAPatternAndLeavesNothingOnError(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteTemp(dir, []byte("x"), 0o600, WriteOptions{}); err == nil {
		t.Fatal("no pattern accepted")
	}
	// a chown to another user fails unless root: nothing is left behind
	if os.Geteuid() != 0 {
		if _, err := WriteTemp(dir, []byte("x"), 0o600, WriteOptions{TempPattern: ".t-*", Chown: true, UID: 0, GID: 0}); err == nil || !strings.Contains(err.Error(), "keep owner 0:0") {
			t.Fatalf("chown to root as a user: %v", err)
		}
	}
	tmp, err := WriteTemp(dir, []byte("x"), 0o604, WriteOptions{TempPattern: ".t-*"})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(tmp); err != nil || fi.Mode().Perm() != 0o604 || filepath.Dir(tmp) != dir {
		t.Fatalf("temp %s: %v %v", tmp, fi, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("entries: %v", entries)
	}
}

// WriteFile replaces a symlink at the path itself, never its target; WriteFileTrusted,
// for root's own dirs, refuses one as OpenAppend does.
func TestWriteFileAndSymlinkAtThePath(t *testing.T) {
	dir := trustedBase(t)
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "baseline.json")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	err := WriteFileTrusted(link, []byte("{}"), 0o644)
	if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), link) {
		t.Fatalf("WriteFileTrusted over a symlink: %v", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	if err := WriteFile(link, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("WriteFile did not replace the link: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "secret" {
		t.Fatalf("the link's target was written: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("temp files left: %v", entries)
	}
}

// Some filesystems cannot fsync a directory and say EINVAL: that is accepted; any other
// error is not.
func TestSyncDirToleratesEINVAL(t *testing.T) {
	dir := t.TempDir()
	orig := syncFile
	t.Cleanup(func() { syncFile = orig })
	var synced []string
	syncFile = func(f *os.File) error {
		synced = append(synced, f.Name())
		if fi, err := f.Stat(); err != nil || !fi.IsDir() {
			return err
		}
		return &fs.PathError{Op: "sync", Path: f.Name(), Err: syscall.EINVAL}
	}
	if err := SyncDir(dir); err != nil {
		t.Fatalf("EINVAL: %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600); err != nil {
		t.Fatalf("WriteFile on a filesystem that cannot sync dirs: %v", err)
	}
	if len(synced) != 3 || synced[2] != dir {
		t.Fatalf("synced %v, want the dir, the temp file, the dir", synced)
	}
	syncFile = func(f *os.File) error { return &fs.PathError{Op: "sync", Path: f.Name(), Err: syscall.EIO} }
	if err := SyncDir(dir); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("EIO: %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "g"), []byte("x"), 0o600); !errors.Is(err, syscall.EIO) {
		t.Fatalf("WriteFile with a failing fsync: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "g")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file whose fsync failed was put in place: %v", err)
	}
}
