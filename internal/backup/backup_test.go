package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
	"golang.org/x/sys/unix"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sampleInstall is a small install with text, random bytes, an executable,
// a symlink, a database with its -wal and -shm, and things excluded by default.
func sampleInstall(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	random := make([]byte, 300<<10)
	_, _ = rand.Read(random)
	writeTree(t, dir, map[string]string{
		"package.json":         `{"name":"claude-flow","version":"2.4.1"}`,
		"dist/index.js":        strings.Repeat("console.log('claude flow');\n", 5000),
		"dist/blob.bin":        string(random),
		".swarm/memory.db":     "sqlite main file",
		".swarm/memory.db-wal": "wal frames",
		".swarm/memory.db-shm": "shm",
		"logs/app.log":         "log",
		"debug.log":            "log",
	})
	if err := os.WriteFile(filepath.Join(dir, "bin.sh"), []byte("#!/bin/sh\necho hi\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("dist/index.js", filepath.Join(dir, "main.js")); err != nil {
		t.Fatal(err)
	}
	return dir
}

var defaultExclude = []string{"logs", "*.log", ".cache", "node_modules/.cache", "tmp"}

func fixedNow() time.Time { return time.Date(2025, 1, 4, 14, 0, 0, 0, time.Local) }

func create(t *testing.T, install, backupDir string, snap DBSnapshotter) *CreateResult {
	t.Helper()
	res, err := Create(context.Background(), CreateOptions{
		InstallDir: install, BackupDir: backupDir, Exclude: defaultExclude,
		Databases:   []Database{{Name: "memory", Path: ".swarm/memory.db"}, {Name: "config", Path: "config.db"}},
		Snapshotter: snap, CreatedBy: "tester", Host: "host", Now: fixedNow, Label: "before deploy",
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return res
}

func TestCreateRestoresWithGNUTarByteForByte(t *testing.T) {
	tar := testenv.RequireTool(t, "tar")
	sha := testenv.RequireTool(t, "sha256sum")
	install, backups := sampleInstall(t), t.TempDir()
	res := create(t, install, backups, nil)
	if res.ID != "20250104-140000" || filepath.Base(res.Path) != "backup-20250104-140000.tar.gz" {
		t.Fatalf("result %+v", res)
	}
	if fi, err := os.Stat(res.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive mode: %v %v", fi, err)
	}
	m, err := ReadManifest(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if m.AppVersion != "2.4.1" || m.AppVersionSource != "package.json" || m.Label != "before deploy" || m.ArchiveSHA256 != res.SHA256 {
		t.Fatalf("manifest %+v", m)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(tar, "-xzf", res.Path, "-C", out).CombinedOutput(); err != nil {
		t.Fatalf("tar -xzf: %v\n%s", err, b)
	}
	for _, f := range m.Files {
		orig, err := os.ReadFile(filepath.Join(install, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, f.Path))
		if err != nil || !bytes.Equal(orig, got) {
			t.Fatalf("%s differs after tar -xzf (%v)", f.Path, err)
		}
		fi, _ := os.Stat(filepath.Join(out, f.Path))
		if fi.Mode().Perm() != f.Mode {
			t.Errorf("%s: tar restored mode %o, manifest says %o", f.Path, fi.Mode().Perm(), f.Mode)
		}
		sum, err := exec.Command(sha, filepath.Join(out, f.Path)).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Fields(string(sum))[0]; got != f.SHA256 {
			t.Errorf("%s: sha256sum %s, manifest %s", f.Path, got, f.SHA256)
		}
	}
	if link, err := os.Readlink(filepath.Join(out, "main.js")); err != nil || link != "dist/index.js" {
		t.Errorf("symlink: %q %v", link, err)
	}
	for _, gone := range []string{"logs/app.log", "debug.log"} {
		if _, err := os.Lstat(filepath.Join(out, gone)); !os.IsNotExist(err) {
			t.Errorf("%s is in the backup; default excludes should leave it out", gone)
		}
	}
	// with no snapshotter the database goes in raw, -wal included, and it is said
	if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "-wal/-shm included") {
		t.Errorf("warnings %v", res.Warnings)
	}
	if _, err := os.Stat(filepath.Join(out, ".swarm/memory.db-wal")); err != nil {
		t.Errorf("raw copy lacks the -wal: %v", err)
	}
	// the manifest file list equals the regular files tar sees
	var names []string
	for _, f := range m.Files {
		names = append(names, f.Path)
	}
	want := ".swarm/memory.db .swarm/memory.db-shm .swarm/memory.db-wal bin.sh dist/blob.bin dist/index.js package.json"
	if strings.Join(names, " ") != want {
		t.Errorf("manifest files %v", names)
	}
	// verify agrees
	v, err := Verify(context.Background(), Candidate{Path: res.Path, Name: filepath.Base(res.Path)}, VerifyOptions{Deep: true,
		Databases: []Database{{Name: "memory", Path: ".swarm/memory.db"}, {Name: "config", Path: "config.db"}}})
	if err != nil || !v.OK || !v.Manifest || len(v.CheckedDatabases) != 1 {
		t.Fatalf("verify: %v %+v", err, v)
	}
}

type fakeSnapshotter struct {
	calls []string
	err   error
}

func (f *fakeSnapshotter) Snapshot(_ context.Context, src, dst string) error {
	f.calls = append(f.calls, src)
	if f.err != nil {
		return f.err
	}
	return os.WriteFile(dst, []byte("consistent snapshot of "+filepath.Base(src)), 0o600)
}

var _ DBSnapshotter = (*fakeSnapshotter)(nil)

func TestCreateCapturesDatabasesThroughSnapshotter(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	snap := &fakeSnapshotter{}
	res := create(t, install, backups, snap)
	if len(snap.calls) != 1 || snap.calls[0] != filepath.Join(install, ".swarm/memory.db") {
		t.Fatalf("snapshot calls %v (config.db does not exist and must not be asked for)", snap.calls)
	}
	if len(res.Warnings) != 0 || len(res.Databases) != 1 || res.Databases[0].Method != "online_backup" {
		t.Fatalf("result %+v", res)
	}
	out := filepath.Join(t.TempDir(), "out")
	v, err := Verify(context.Background(), Candidate{Path: res.Path, Name: filepath.Base(res.Path)}, VerifyOptions{Deep: true})
	if err != nil || !v.OK {
		t.Fatalf("verify: %v %+v", err, v)
	}
	if b, err := exec.Command("sh", "-c", "mkdir "+out+" && tar -xzf "+res.Path+" -C "+out).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, b)
	}
	if got, _ := os.ReadFile(filepath.Join(out, ".swarm/memory.db")); string(got) != "consistent snapshot of memory.db" {
		t.Fatalf("database in the backup = %q, want the snapshot", got)
	}
	for _, s := range []string{"-wal", "-shm"} {
		if _, err := os.Lstat(filepath.Join(out, ".swarm/memory.db"+s)); !os.IsNotExist(err) {
			t.Errorf("memory.db%s was archived next to a snapshot", s)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(backups, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	install := sampleInstall(t)
	for name, setup := range map[string]func(t *testing.T) (DBSnapshotter, func()){
		"snapshot fails": func(*testing.T) (DBSnapshotter, func()) {
			return &fakeSnapshotter{err: errors.New("database is locked")}, func() {}
		},
		"tree not restorable": func(t *testing.T) (DBSnapshotter, func()) {
			p := filepath.Join(install, "escape")
			if err := os.Symlink("/etc/passwd", p); err != nil {
				t.Fatal(err)
			}
			return nil, func() { os.Remove(p) }
		},
	} {
		t.Run(name, func(t *testing.T) {
			backups := t.TempDir()
			snap, undo := setup(t)
			defer undo()
			_, err := Create(context.Background(), CreateOptions{InstallDir: install, BackupDir: backups, Snapshotter: snap, Now: fixedNow,
				Databases: []Database{{Name: "memory", Path: ".swarm/memory.db"}}})
			if err == nil {
				t.Fatal("create succeeded")
			}
			if left, _ := os.ReadDir(backups); len(left) != 0 {
				t.Fatalf("a failed create left %v", left)
			}
		})
	}
}

func TestCreateRefusesToOverwrite(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	create(t, install, backups, nil)
	_, err := Create(context.Background(), CreateOptions{InstallDir: install, BackupDir: backups, Now: fixedNow})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
}

// A bit flip anywhere in the archive is caught: spread over the whole file,
// header, compressed data and trailer alike.
func TestVerifyCatchesBitFlipsEverywhere(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	res := create(t, install, backups, nil)
	orig, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	c := Candidate{Path: res.Path, Name: filepath.Base(res.Path)}
	if v, err := Verify(context.Background(), c, VerifyOptions{}); err != nil || !v.OK {
		t.Fatalf("intact archive: %v %+v", err, v)
	}
	const n = 24
	offsets := []int64{0, 1, 4, 9, 10, int64(len(orig)) - 8, int64(len(orig)) - 4, int64(len(orig)) - 1}
	spread := n - len(offsets)
	for i := range spread {
		offsets = append(offsets, int64(len(orig))*int64(i+1)/int64(spread+1))
	}
	for _, off := range offsets {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			b := bytes.Clone(orig)
			b[off] ^= 0x10
			if err := os.WriteFile(res.Path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			v, err := Verify(context.Background(), c, VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if v.OK {
				t.Fatalf("a flipped bit at offset %d of %d was not caught", off, len(orig))
			}
		})
	}
	if err := os.WriteFile(res.Path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyComparesEveryFileWithTheManifest(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	res := create(t, install, backups, nil)
	m, err := ReadManifest(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	// A manifest edited (or a backup re-packed) so that one file's digest
	// differs: the archive digest is made to match, the file check catches it.
	m.Files[3].SHA256 = strings.Repeat("0", 64)
	m.Files[4].Mode = 0o777
	if err := writeManifest(res.Path, m); err != nil {
		t.Fatal(err)
	}
	v, err := Verify(context.Background(), Candidate{Path: res.Path, Name: filepath.Base(res.Path)}, VerifyOptions{})
	if err != nil || v.OK || len(v.Problems) != 2 {
		t.Fatalf("verify %v %+v, want two file problems", err, v)
	}
}

// A manifest without its archive digest says so; it used to read "does not match its
// manifest ()".
func TestVerifyNamesAMissingArchiveDigest(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	res := create(t, install, backups, nil)
	m, err := ReadManifest(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	m.ArchiveSHA256 = ""
	if err := writeManifest(res.Path, m); err != nil {
		t.Fatal(err)
	}
	v, err := Verify(context.Background(), Candidate{Path: res.Path, Name: filepath.Base(res.Path)}, VerifyOptions{})
	if err != nil || v.OK || len(v.Problems) != 1 || !strings.Contains(v.Problems[0], "archive_sha256 is missing") {
		t.Fatalf("verify %v %+v, want one problem naming the missing archive_sha256", err, v)
	}
}

// swapDirs exchanges two directories atomically, as an emergency swaps the install.
func swapDirs(t *testing.T, a, b string) {
	t.Helper()
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
		t.Fatalf("exchange %s and %s: %v", a, b, err)
	}
}

// swapSnapshotter swaps the install for another tree while the first database is read.
type swapSnapshotter struct {
	fakeSnapshotter
	swap func()
}

func (s *swapSnapshotter) Snapshot(ctx context.Context, src, dst string) error {
	if s.swap != nil {
		s.swap()
		s.swap = nil
	}
	return s.fakeSnapshotter.Snapshot(ctx, src, dst)
}

func assertNothingKept(t *testing.T, backups string, err error) {
	t.Helper()
	if !errors.Is(err, ErrInstallReplaced) {
		t.Fatalf("create: %v, want ErrInstallReplaced", err)
	}
	if !strings.Contains(err.Error(), "run the backup again") {
		t.Errorf("error does not say what to do: %v", err)
	}
	left, _ := os.ReadDir(backups)
	for _, e := range left {
		t.Errorf("left in the backup dir: %s", e.Name())
	}
}

// An emergency that swaps the install while a backup reads its databases: the backup
// would hold one install's files and the other's databases, so nothing is kept.
func TestCreateDiscardsWhenInstallSwappedDuringSnapshot(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	other := filepath.Join(t.TempDir(), "staging")
	writeTree(t, other, map[string]string{"package.json": `{"version":"1.0.0"}`, ".swarm/memory.db": "other"})
	snap := &swapSnapshotter{swap: func() { swapDirs(t, install, other) }}
	_, err := Create(context.Background(), CreateOptions{
		InstallDir: install, BackupDir: backups, Exclude: defaultExclude,
		Databases:   []Database{{Name: "memory", Path: ".swarm/memory.db"}},
		Snapshotter: snap, Now: fixedNow,
	})
	assertNothingKept(t, backups, err)
}

// A swap while the tree is being archived: the archive would be of an install that is no
// longer live (the failed one, which the next emergency must not pick), so nothing is kept.
func TestCreateDiscardsWhenInstallSwappedDuringWalk(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	other := filepath.Join(t.TempDir(), "staging")
	writeTree(t, other, map[string]string{"package.json": `{"version":"1.0.0"}`})
	swapped := false
	_, err := Create(context.Background(), CreateOptions{
		InstallDir: install, BackupDir: backups, Exclude: defaultExclude, Now: fixedNow,
		Progress: func(int, int64) {
			if !swapped {
				swapped = true
				swapDirs(t, install, other)
			}
		},
	})
	if !swapped {
		t.Fatal("the walk never reported progress; the test did not swap")
	}
	assertNothingKept(t, backups, err)
}

// Root writes the archive in backup.dir: a dir other users can write (no sticky bit) is
// refused naming the setting, and nothing is written in it.
func TestCreateRefusesABackupDirOthersCanWrite(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	if err := os.Chmod(backups, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := Create(context.Background(), CreateOptions{InstallDir: install, BackupDir: backups, Now: fixedNow})
	if err == nil || !strings.Contains(err.Error(), "backup.dir") || !strings.Contains(err.Error(), "writable by other users") {
		t.Fatalf("err = %v, want a refusal naming backup.dir", err)
	}
	if ents, _ := os.ReadDir(backups); len(ents) != 0 {
		t.Fatalf("written anyway: %v", ents)
	}
}

// Two backups within one second: the second waits for the next second instead of failing
// (the clock says the same second to its first reading, the next one to its second).
func TestCreateTwiceInOneSecond(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	t0 := time.Date(2025, 1, 4, 14, 0, 0, 900*int(time.Millisecond), time.Local)
	first, err := Create(context.Background(), CreateOptions{InstallDir: install, BackupDir: backups, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	clock := func() time.Time {
		calls++
		if calls == 1 {
			return t0
		}
		return t0.Add(time.Second)
	}
	second, err := Create(context.Background(), CreateOptions{InstallDir: install, BackupDir: backups, Now: clock})
	if err != nil {
		t.Fatalf("second backup in the same second: %v", err)
	}
	if first.Path == second.Path || !strings.HasSuffix(second.Path, "backup-20250104-140001.tar.gz") {
		t.Fatalf("first %s, second %s", first.Path, second.Path)
	}
}
