package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzExtract feeds Extract arbitrary archives: tar streams that the harness
// gzips (compress=true, so mutations reach the tar and rule code) and raw
// .tar.gz bytes (compress=false, for the gzip layer). Invariants: no panic;
// nothing appears or changes outside dest; on error dest is gone; on success
// every symlink in dest resolves inside it; and Verify agrees with Extract.
func FuzzExtract(f *testing.F) {
	for _, tc := range hostileCases() {
		gz := tc.data(f)
		f.Add(gz, false)
		if zr, err := gzip.NewReader(bytes.NewReader(gz)); err == nil {
			if raw, err := io.ReadAll(zr); err == nil {
				f.Add(raw, true)
			}
		}
	}
	f.Add(tarBytes(f,
		tEntry{name: "./", typ: tar.TypeDir, mode: 0o750},
		tEntry{name: "./a/", typ: tar.TypeDir},
		tEntry{name: "./a/f", body: "hello", mode: 0o4755},
		tEntry{name: "./a/h", typ: tar.TypeLink, link: "./a/f"},
		tEntry{name: "./a/l", typ: tar.TypeSymlink, link: "../a/f"},
		tEntry{name: "./b/c/d", body: strings.Repeat("x", 1000)},
		tEntry{name: "./" + strings.Repeat("n", 150), body: "long", format: tar.FormatGNU},
	), true)
	for _, name := range []string{"gnutar.tar.gz", "bsdtar.tar.gz"} {
		if data, err := os.ReadFile(filepath.Join(fixtureDir, name)); err == nil {
			f.Add(data, false)
		}
	}

	lim := Limits{MaxEntries: 200, MaxFileSize: 1 << 20, MaxTotalSize: 4 << 20}
	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		if compress {
			data = gzipBytes(t, data)
		}
		tmp := t.TempDir()
		outside := filepath.Join(tmp, "outside")
		must(t, os.Mkdir(outside, 0o755))
		writeTemp(t, outside, "secret", []byte("sentinel"))
		parent := filepath.Join(tmp, "parent")
		must(t, os.Mkdir(parent, 0o755))
		archivePath := writeTemp(t, tmp, "a.tar.gz", data)
		dest := filepath.Join(parent, "dest")
		before := snapshot(t, outside)

		_, verr := Verify(context.Background(), archivePath, lim, nil)
		_, err := Extract(context.Background(), archivePath, dest, ExtractOptions{Limits: lim, UID: -1, GID: -1})

		if after := snapshot(t, outside); !reflect.DeepEqual(before, after) {
			t.Fatalf("outside changed: %v -> %v", before, after)
		}
		var top []string
		entries, _ := os.ReadDir(tmp)
		for _, e := range entries {
			top = append(top, e.Name())
		}
		if want := []string{"a.tar.gz", "outside", "parent"}; !slices.Equal(top, want) {
			t.Fatalf("temp dir holds %q, want %q", top, want)
		}
		var inParent []string
		entries, _ = os.ReadDir(parent)
		for _, e := range entries {
			inParent = append(inParent, e.Name())
		}
		if err != nil {
			if len(inParent) != 0 {
				t.Fatalf("Extract failed (%v) but left %q", err, inParent)
			}
		} else {
			if !slices.Equal(inParent, []string{"dest"}) {
				t.Fatalf("Extract succeeded but the parent holds %q", inParent)
			}
			checkSymlinksInside(t, dest)
		}
		if (verr == nil) != (err == nil) || errors.Is(verr, ErrCorrupt) != errors.Is(err, ErrCorrupt) || errors.Is(verr, ErrUnsafe) != errors.Is(err, ErrUnsafe) {
			t.Fatalf("Verify and Extract disagree: Verify %v, Extract %v", verr, err)
		}
	})
}

// checkSymlinksInside resolves every symlink under dest with the kernel's
// rules (EvalSymlinks) and fails if one that resolves leads outside dest.
func checkSymlinksInside(t *testing.T, dest string) {
	t.Helper()
	realDest, err := filepath.EvalSymlinks(dest)
	must(t, err)
	_ = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, err := os.Readlink(p)
		if err == nil && filepath.IsAbs(target) {
			t.Fatalf("%s is an absolute symlink to %s", p, target)
		}
		root := realDest
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			// Dangling: at least its lexical target must be inside.
			root, resolved = dest, filepath.Join(filepath.Dir(p), target)
		}
		if resolved != root && !strings.HasPrefix(resolved, root+"/") {
			t.Fatalf("%s resolves to %s, outside %s", p, resolved, root)
		}
		return nil
	})
}
