package archive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

const fixtureDir = "../../testdata/archive"

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// listing renders a tree in the format make-fixtures.sh writes with stat(1)
// and sha256sum(1), so fixture tests compare against an account of the tree
// that our code did not produce.
func listing(t testing.TB, root string) string {
	t.Helper()
	tree := readTree(t, root)
	var paths []string
	byPath := map[string]string{}
	for rel := range tree {
		p := "."
		if rel != "." {
			p = "./" + rel
		}
		paths = append(paths, p)
		byPath[p] = rel
	}
	sort.Strings(paths)
	var b strings.Builder
	for _, p := range paths {
		e := tree[byPath[p]]
		switch e.typ {
		case "d":
			fmt.Fprintf(&b, "d %o %d %s\n", e.perm, e.mtime.Unix(), p)
		case "f":
			fi, err := os.Lstat(filepath.Join(root, byPath[p]))
			must(t, err)
			fmt.Fprintf(&b, "f %o %d %d %d %s %s\n", e.perm, e.mtime.Unix(), fi.Sys().(*syscall.Stat_t).Nlink, e.size, e.sha, p)
		case "l":
			fmt.Fprintf(&b, "l %d %s -> %s\n", e.mtime.Unix(), p, e.target)
		default:
			fmt.Fprintf(&b, "? %s\n", p)
		}
	}
	return b.String()
}

// TestFixtures extracts the committed GNU tar and bsdtar archives (see
// testdata/archive/make-fixtures.sh) and compares the result with the listing
// the script took of the source tree.
func TestFixtures(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(fixtureDir, "fixture-tree.txt"))
	must(t, err)
	for _, name := range []string{"gnutar.tar.gz", "bsdtar.tar.gz"} {
		t.Run(name, func(t *testing.T) {
			archivePath := filepath.Join(fixtureDir, name)
			sum, err := Verify(context.Background(), archivePath, Limits{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Entries != 20 || sum.Files != 9 || sum.Hardlinks != 1 || sum.Symlinks != 4 || sum.Dirs != 6 {
				t.Errorf("Verify summary %+v", sum)
			}
			dest := filepath.Join(t.TempDir(), "dest")
			if _, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1}); err != nil {
				t.Fatal(err)
			}
			if got := listing(t, dest); got != string(want) {
				t.Errorf("extracted tree differs from fixture-tree.txt\n--- got\n%s--- want\n%s", got, want)
			}
			if inode(t, filepath.Join(dest, "data/hard-a.txt")) != inode(t, filepath.Join(dest, "data/hard-b.txt")) {
				t.Error("data/hard-a.txt and data/hard-b.txt are not one inode")
			}
		})
	}
}

// TestToolArchivesExtract: what GNU tar and bsdtar write from a live tree,
// Extract restores faithfully (the tools store whole-second mtimes).
func TestToolArchivesExtract(t *testing.T) {
	for _, tc := range []struct {
		tool string
		args func(src, out string) []string
	}{
		{"tar", func(src, out string) []string { return []string{"-C", src, "-czf", out, "."} }},
		{"bsdtar", func(src, out string) []string { return []string{"-C", src, "-czf", out, "."} }},
		{"tar", func(src, out string) []string { return []string{"--format=posix", "-C", src, "-czf", out, "."} }},
	} {
		t.Run(strings.Join(tc.args("SRC", "OUT"), " "), func(t *testing.T) {
			bin := testenv.RequireTool(t, tc.tool)
			tmp := t.TempDir()
			src := filepath.Join(tmp, "src")
			must(t, os.Mkdir(src, 0o755))
			makeRichTree(t, src, true)
			archivePath := filepath.Join(tmp, "x.tar.gz")
			run(t, bin, tc.args(src, archivePath)...)
			dest := filepath.Join(tmp, "dest")
			if _, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1}); err != nil {
				t.Fatal(err)
			}
			compareTrees(t, src, dest, compareOpts{secondsOnly: true, dropSetID: true})
		})
	}
}

// TestCreateReadByTools: GNU tar, bsdtar and gzip read what Create writes and
// extract it to a tree equal to the source.
func TestCreateReadByTools(t *testing.T) {
	tarBin, bsdtarBin, gzipBin := testenv.RequireTool(t, "tar"), testenv.RequireTool(t, "bsdtar"), testenv.RequireTool(t, "gzip")
	testenv.RequireRoot(t) // the tools restore set-id bits and exact modes only for root
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	must(t, os.Mkdir(src, 0o755))
	makeRichTree(t, src, true)
	archivePath := filepath.Join(tmp, "backup.tar.gz")
	if _, err := Create(context.Background(), src, archivePath, CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	run(t, gzipBin, "-t", archivePath)

	var want []string
	must(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(src, p)
		switch {
		case rel == ".":
			want = append(want, "./")
		case d.IsDir():
			want = append(want, "./"+rel+"/")
		default:
			want = append(want, "./"+rel)
		}
		return err
	}))
	got := strings.Split(strings.TrimSuffix(run(t, tarBin, "-tzf", archivePath), "\n"), "\n")
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tar -tzf lists\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for _, tool := range []string{tarBin, bsdtarBin} {
		out := filepath.Join(tmp, "out-"+filepath.Base(tool))
		must(t, os.Mkdir(out, 0o700))
		run(t, tool, "-xzf", archivePath, "-C", out)
		t.Run(filepath.Base(tool), func(t *testing.T) {
			// bsdtar does not set the times of the directory it extracts
			// into; GNU tar does.
			compareTrees(t, src, out, compareOpts{skipRootTime: tool == bsdtarBin})
		})
	}
}

// TestToolArchivesRefused: what GNU tar really writes for sparse files and
// FIFOs is refused, whole.
func TestToolArchivesRefused(t *testing.T) {
	bin := testenv.RequireTool(t, "tar")
	for name, tc := range map[string]struct {
		args  []string
		setup func(src string)
	}{
		"sparse gnu": {[]string{"--sparse", "--format=gnu"}, func(src string) {
			must(t, os.Truncate(filepath.Join(src, "holes"), 10<<20))
		}},
		"sparse posix": {[]string{"--sparse", "--format=posix"}, func(src string) {
			must(t, os.Truncate(filepath.Join(src, "holes"), 10<<20))
		}},
		"fifo": {nil, func(src string) { must(t, syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644)) }},
	} {
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			src := filepath.Join(tmp, "src")
			must(t, os.Mkdir(src, 0o755))
			must(t, os.WriteFile(filepath.Join(src, "holes"), []byte("data"), 0o644))
			tc.setup(src)
			archivePath := filepath.Join(tmp, "x.tar.gz")
			run(t, bin, append(tc.args, "-C", src, "-czf", archivePath, ".")...)
			if _, err := Verify(context.Background(), archivePath, Limits{}, nil); !errors.Is(err, ErrUnsafe) {
				t.Errorf("Verify: %v, want ErrUnsafe", err)
			} else {
				t.Log(err)
			}
			dest := filepath.Join(tmp, "dest")
			if _, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1}); !errors.Is(err, ErrUnsafe) {
				t.Errorf("Extract: %v, want ErrUnsafe", err)
			}
			if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("dest left behind")
			}
		})
	}
}
