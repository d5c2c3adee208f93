package archive

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestCreateExcludeAndSkip(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	for _, p := range []string{"keep/a.txt", "keep/debug.log", "node_modules/x/y.js", "logs/today.txt", "sub/logs/kept.txt"} {
		must(t, os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755))
		must(t, os.WriteFile(filepath.Join(src, p), []byte(p), 0o644))
	}
	must(t, syscall.Mkfifo(filepath.Join(src, "keep/fifo"), 0o644))
	sock, err := net.Listen("unix", filepath.Join(src, "app.sock"))
	must(t, err)
	defer sock.Close()

	archivePath := filepath.Join(tmp, "b.tar.gz")
	var calls int
	var lastFiles int
	var lastBytes int64
	sum, err := Create(context.Background(), src, archivePath, CreateOptions{
		// "logs" matches only the top-level dir by full path; "*.log" any
		// base name; node_modules is skipped whole.
		Exclude:  []string{"node_modules", "*.log", "logs"},
		Progress: func(files int, bytes int64) { calls++; lastFiles, lastBytes = files, bytes },
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"app.sock", "keep/fifo"}; !slices.Equal(sum.Skipped, want) {
		t.Errorf("Skipped = %q, want %q", sum.Skipped, want)
	}
	if calls == 0 || lastFiles != 1 || lastBytes != int64(len("keep/a.txt")) {
		t.Errorf("progress: %d calls, last %d files %d bytes", calls, lastFiles, lastBytes)
	}
	dest := filepath.Join(tmp, "dest")
	if _, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for p := range readTree(t, dest) {
		got = append(got, p)
	}
	slices.Sort(got)
	// "logs" also matches the base name of sub/logs, so that goes too (the
	// rule is "full path or base name", as documented), leaving sub empty.
	want := []string{".", "keep", "keep/a.txt", "sub"}
	if !slices.Equal(got, want) {
		t.Errorf("extracted %q, want %q", got, want)
	}
	fi, err := os.Stat(archivePath)
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestCreateRefusesUnrestorable: a backup that Extract would refuse is worth
// nothing at 3am, so Create fails on the same rules, and leaves no file.
func TestCreateRefusesUnrestorable(t *testing.T) {
	for name, setup := range map[string]func(src string){
		"absolute symlink": func(src string) { must(t, os.Symlink("/etc/passwd", filepath.Join(src, "l"))) },
		"escaping symlink": func(src string) { must(t, os.Symlink("../../x", filepath.Join(src, "d/l"))) },
		"invalid UTF-8":    func(src string) { must(t, os.WriteFile(filepath.Join(src, "bad\xff"), nil, 0o644)) },
		"file over limit":  func(src string) { must(t, os.WriteFile(filepath.Join(src, "big"), make([]byte, 2000), 0o644)) },
	} {
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			src := filepath.Join(tmp, "src")
			must(t, os.MkdirAll(filepath.Join(src, "d"), 0o755))
			setup(src)
			dest := filepath.Join(tmp, "out", "b.tar.gz")
			must(t, os.Mkdir(filepath.Dir(dest), 0o755))
			_, err := Create(context.Background(), src, dest, CreateOptions{Limits: Limits{MaxFileSize: 1000}})
			if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("Create: %v, want ErrUnsafe", err)
			}
			t.Log(err)
			if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

func TestCreateMisc(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	must(t, os.Mkdir(src, 0o755))
	makeRichTree(t, src, false)

	// Same tree, same bytes: pgzip's blocks do not depend on scheduling.
	a, err := Create(context.Background(), src, filepath.Join(tmp, "a.tar.gz"), CreateOptions{})
	must(t, err)
	b, err := Create(context.Background(), src, filepath.Join(tmp, "a.tar.gz"), CreateOptions{})
	must(t, err)
	if a.SHA256 != b.SHA256 {
		t.Errorf("two backups of one tree differ: %s vs %s", a.SHA256, b.SHA256)
	}

	if _, err := Create(context.Background(), src, filepath.Join(src, "bin", "self.tar.gz"), CreateOptions{}); err == nil {
		t.Error("Create accepted a destination inside the source tree")
	}
	if _, err := Create(context.Background(), src, filepath.Join(tmp, "c.tar.gz"), CreateOptions{Exclude: []string{"[unclosed"}}); err == nil {
		t.Error("Create accepted a malformed exclude pattern")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Create(ctx, src, filepath.Join(tmp, "d.tar.gz"), CreateOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a cancelled context: %v", err)
	}
	entries, err := os.ReadDir(tmp)
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"a.tar.gz", "src"}; !slices.Equal(names, want) {
		t.Errorf("temp dir holds %q, want %q (no temp files, no partial backups)", names, want)
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			t.Errorf("temp file left: %s", n)
		}
	}
}
