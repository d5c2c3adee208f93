package install

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

func mk(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func cat(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExchangeSwapsBothNamesAtomically(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "install"), filepath.Join(dir, "staging")
	mk(t, filepath.Join(a, "v"), "old")
	mk(t, filepath.Join(b, "v"), "new")
	idB, _ := IDOf(b)
	fellBack, err := Exchange(a, b, filepath.Join(dir, "aside"))
	if err != nil {
		t.Fatal(err)
	}
	// the fallback is tested below; CI must test the exchange itself
	testenv.Require(t, !fellBack, "RENAME_EXCHANGE on the filesystem of "+dir, "run the tests with TMPDIR on ext4, xfs, btrfs or tmpfs")
	if cat(t, filepath.Join(a, "v")) != "new" || cat(t, filepath.Join(b, "v")) != "old" {
		t.Fatal("names not swapped")
	}
	if id, _ := IDOf(a); id != idB {
		t.Fatal("install path does not carry the staging dir's identity after the swap")
	}
}

func TestRenameRefusesToReplace(t *testing.T) {
	dir := t.TempDir()
	mk(t, filepath.Join(dir, "a", "f"), "a")
	mk(t, filepath.Join(dir, "b", "f"), "b")
	err := Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b"))
	if err == nil {
		t.Fatal("rename replaced an existing dir")
	}
	if cat(t, filepath.Join(dir, "b", "f")) != "b" || cat(t, filepath.Join(dir, "a", "f")) != "a" {
		t.Fatal("a refused rename changed something")
	}
}

func TestCarryOverCopiesAndKeepsOld(t *testing.T) {
	dir := t.TempDir()
	old, nw := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	mk(t, filepath.Join(old, ".swarm", "memory.db"), "live")
	mk(t, filepath.Join(old, ".swarm", "memory.db-wal"), "wal")
	if err := os.Symlink("memory.db", filepath.Join(old, ".swarm", "link")); err != nil {
		t.Fatal(err)
	}
	mk(t, filepath.Join(nw, ".swarm", "memory.db"), "from backup")
	mk(t, filepath.Join(nw, ".swarm", "stale-only-in-backup"), "x")
	st, err := CarryOver(old, nw, []string{".swarm", "backups"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 2 || len(st.Paths) != 1 || len(st.Skipped) != 1 || st.Skipped[0] != "backups" {
		t.Fatalf("stats %+v", st)
	}
	if cat(t, filepath.Join(nw, ".swarm", "memory.db")) != "live" || cat(t, filepath.Join(nw, ".swarm", "memory.db-wal")) != "wal" {
		t.Fatal("live data (with its -wal) not carried")
	}
	if _, err := os.Stat(filepath.Join(nw, ".swarm", "stale-only-in-backup")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the backup's copy of a preserved path was not replaced whole")
	}
	if l, err := os.Readlink(filepath.Join(nw, ".swarm", "link")); err != nil || l != "memory.db" {
		t.Fatalf("symlink not copied as a symlink: %q %v", l, err)
	}
	if cat(t, filepath.Join(old, ".swarm", "memory.db")) != "live" {
		t.Fatal("the old tree changed")
	}
	fi, _ := os.Stat(filepath.Join(nw, ".swarm", "memory.db"))
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v not kept", fi.Mode())
	}
	// separate inodes: the restored service must not write into the failed dir
	a, _ := IDOf(filepath.Join(old, ".swarm", "memory.db"))
	b, _ := IDOf(filepath.Join(nw, ".swarm", "memory.db"))
	if a == b {
		t.Fatal("carry-over shares an inode with the failed dir")
	}
}

func TestCarryOverRefusesEscapes(t *testing.T) {
	dir := t.TempDir()
	old, nw := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	mk(t, filepath.Join(old, "data", "x"), "x")
	if err := os.MkdirAll(nw, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(dir, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	// the staged tree has a symlink where a preserved path's parent should be
	if err := os.Symlink(outside, filepath.Join(nw, "data")); err != nil {
		t.Fatal(err)
	}
	if _, err := CarryOver(old, nw, []string{"data/x"}); err == nil {
		t.Fatal("carried over through a symlink in the staged tree")
	}
	if _, err := CarryOver(old, nw, []string{"../x"}); err == nil {
		t.Fatal("accepted a preserved path outside the install")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("wrote outside: %v", entries)
	}
}

func TestCopyTreeRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	mk(t, filepath.Join(src, "f"), "x")
	if err := mkfifo(filepath.Join(src, "fifo")); err != nil {
		testenv.Require(t, false, "a filesystem that can hold a FIFO ("+err.Error()+")", "run the tests with TMPDIR on a local filesystem")
	}
	if _, _, err := CopyTree(src, filepath.Join(dir, "dst")); err == nil {
		t.Fatal("copied a FIFO")
	}
}
