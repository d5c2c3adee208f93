package standby

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sealedTree makes a small tree at <tmp>/app.standby, a backup file, and a valid seal; it
// returns the standby dir and what an emergency would want.
func sealedTree(t *testing.T) (string, Want) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "app.standby")
	for _, d := range []string{"", "lib", "lib/sub", ".swarm"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"app.js": "console.log('v1')\n", "lib/a.js": "a\n", "lib/sub/b.js": "bb\n", ".swarm/memory.db": "db"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("lib/a.js", filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(root, "backup-20250101-000000.tar.gz")
	if err := os.WriteFile(archive, []byte("not really gzip"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := BackupOf(archive)
	if err != nil {
		t.Fatal(err)
	}
	b.SHA256 = strings.Repeat("ab", 32)
	s, err := Make(context.Background(), dir, b, -1, -1, time.Now(), "run")
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(SealPath(dir), s); err != nil {
		t.Fatal(err)
	}
	waitForClockTick(t, root, s)
	w := Want{Backup: b, ManifestSHA256: b.SHA256, UID: -1, GID: -1}
	w.Backup.SHA256 = ""
	if _, err := Check(context.Background(), dir, w); err != nil {
		t.Fatalf("a fresh seal does not check: %v", err)
	}
	return dir, w
}

// waitForClockTick waits (bounded) until the filesystem's clock, which stamps ctime from a
// coarse tick, has moved past every ctime in the seal: an edit from then on gets a later
// ctime. (A real standby is walked after the extraction's syncfs, ticks later.)
func waitForClockTick(t *testing.T, dir string, s *Seal) {
	t.Helper()
	var newest int64
	for _, e := range s.Tree {
		newest = max(newest, e.CtimeNS)
	}
	probe := filepath.Join(dir, "probe")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := os.WriteFile(probe, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(probe, &st); err != nil {
			t.Fatal(err)
		}
		if st.Ctim.Nano() > newest {
			return
		}
	}
	t.Fatal("the filesystem clock did not move in 5s")
}

func TestCheckRefuses(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, dir string, w *Want)
		reason string
	}{
		{"edited file, same size, mtime put back", func(t *testing.T, dir string, _ *Want) {
			p := filepath.Join(dir, "app.js")
			fi, _ := os.Stat(p)
			must(t, os.WriteFile(p, []byte("console.log('v6')\n"), 0o644))
			must(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
		}, "app.js was changed after the seal (ctime"},
		{"replaced file, same size and mtime", func(t *testing.T, dir string, _ *Want) {
			p := filepath.Join(dir, "lib/a.js")
			fi, _ := os.Stat(p)
			tmp := filepath.Join(dir, "lib/.a.js.new")
			must(t, os.WriteFile(tmp, []byte("x\n"), 0o644))
			must(t, os.Chtimes(tmp, fi.ModTime(), fi.ModTime()))
			must(t, os.Rename(tmp, p))
		}, "lib was modified"},
		{"replaced file inside a dir whose times are put back", func(t *testing.T, dir string, _ *Want) {
			d := filepath.Join(dir, "lib/sub")
			p := filepath.Join(d, "b.js")
			dfi, _ := os.Stat(d)
			fi, _ := os.Stat(p)
			tmp := filepath.Join(dir, "b.new")
			must(t, os.WriteFile(tmp, []byte("xx\n"), 0o644))
			must(t, os.Chtimes(tmp, fi.ModTime(), fi.ModTime()))
			must(t, os.Rename(tmp, p))
			must(t, os.Chtimes(d, dfi.ModTime(), dfi.ModTime()))
			must(t, os.Chtimes(dir, dfi.ModTime(), dfi.ModTime()))
		}, "changed after the seal (ctime"},
		{"added file", func(t *testing.T, dir string, _ *Want) {
			must(t, os.WriteFile(filepath.Join(dir, "zz-added.js"), nil, 0o644))
		}, "was modified"},
		{"added file, dir times put back", func(t *testing.T, dir string, _ *Want) {
			fi, _ := os.Stat(dir)
			must(t, os.WriteFile(filepath.Join(dir, "lib", "added.js"), nil, 0o644))
			must(t, os.Chtimes(filepath.Join(dir, "lib"), fi.ModTime(), fi.ModTime()))
		}, "lib"},
		{"removed file", func(t *testing.T, dir string, _ *Want) {
			must(t, os.Remove(filepath.Join(dir, "lib/sub/b.js")))
		}, "lib/sub"},
		{"changed mode", func(t *testing.T, dir string, _ *Want) {
			must(t, os.Chmod(filepath.Join(dir, "app.js"), 0o600))
		}, "app.js changed mode (600, was 644)"},
		{"symlink swapped in for a file", func(t *testing.T, dir string, _ *Want) {
			p := filepath.Join(dir, "app.js")
			keepTimes(t, dir, func() {
				must(t, os.Remove(p))
				must(t, os.Symlink("/etc/passwd", p))
			})
		}, "app.js changed type (symlink, was file)"},
		{"symlink retargeted", func(t *testing.T, dir string, _ *Want) {
			p := filepath.Join(dir, "current")
			keepTimes(t, dir, func() {
				must(t, os.Remove(p))
				must(t, os.Symlink("lib/sub/b.js", p))
			})
		}, "current "},
		{"a hard link made to a file", func(t *testing.T, dir string, _ *Want) {
			must(t, os.Link(filepath.Join(dir, "app.js"), filepath.Join(filepath.Dir(dir), "outside-link")))
		}, "app.js gained or lost a hard link"},
		{"wrong backup", func(t *testing.T, dir string, w *Want) {
			other := filepath.Join(filepath.Dir(dir), "backup-20250102-000000.tar.gz")
			must(t, os.WriteFile(other, []byte("other"), 0o600))
			b, err := BackupOf(other)
			must(t, err)
			w.Backup = b
		}, "it holds backup-20250101-000000.tar.gz, not backup-20250102-000000.tar.gz"},
		{"backup file rewritten", func(t *testing.T, dir string, w *Want) {
			must(t, os.WriteFile(w.Backup.Path, []byte("not really gzip!"), 0o600))
			b, err := BackupOf(w.Backup.Path)
			must(t, err)
			w.Backup = b
		}, "the backup file backup-20250101-000000.tar.gz changed"},
		{"manifest digest differs", func(_ *testing.T, _ string, w *Want) {
			w.ManifestSHA256 = strings.Repeat("cd", 32)
		}, "its manifest says"},
		{"other owner wanted", func(_ *testing.T, _ string, w *Want) {
			w.UID, w.GID = 1000, 1000
		}, "a restore now would give 1000:1000"},
		{"standby removed, seal left", func(t *testing.T, dir string, _ *Want) {
			must(t, os.RemoveAll(dir))
		}, "is missing"},
		{"seal writable by others", func(t *testing.T, dir string, _ *Want) {
			must(t, os.Chmod(SealPath(dir), 0o666))
		}, "writable by others"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, w := sealedTree(t)
			tc.change(t, dir, &w)
			_, err := Check(context.Background(), dir, w)
			if err == nil {
				t.Fatal("the standby still checks after the change")
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("reason %q, want it to contain %q", err, tc.reason)
			}
		})
	}
}

func TestCheckNoSeal(t *testing.T) {
	dir, w := sealedTree(t)
	must(t, os.Remove(SealPath(dir)))
	if _, err := Check(context.Background(), dir, w); !errors.Is(err, ErrNoStandby) {
		t.Fatalf("err = %v, want ErrNoStandby", err)
	}
}

func TestCheckIgnoresReads(t *testing.T) {
	dir, w := sealedTree(t)
	if _, err := os.ReadFile(filepath.Join(dir, "app.js")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadDir(filepath.Join(dir, "lib")); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(context.Background(), dir, w); err != nil {
		t.Fatalf("reading the tree made the seal fail: %v", err)
	}
}

// keepTimes runs change and puts dir's times back, as someone hiding the change would.
func keepTimes(t *testing.T, dir string, change func()) {
	t.Helper()
	fi, err := os.Stat(dir)
	must(t, err)
	change()
	must(t, os.Chtimes(dir, fi.ModTime(), fi.ModTime()))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
