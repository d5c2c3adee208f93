package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// realManifest writes a small install, backs it up with Create and returns the manifest
// bytes the code wrote.
func realManifest(tb testing.TB, dir string) []byte {
	tb.Helper()
	install := filepath.Join(dir, "app")
	for rel, content := range map[string]string{
		"package.json":     `{"name":"claude-flow","version":"2.4.1"}`,
		"dist/index.js":    "console.log('claude flow')\n",
		".swarm/memory.db": "sqlite main file",
		"a b/ü.txt":        "unicode and a space",
	} {
		p := filepath.Join(install, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			tb.Fatal(err)
		}
	}
	backups := filepath.Join(dir, "backups")
	if err := os.Mkdir(backups, 0o700); err != nil {
		tb.Fatal(err)
	}
	res, err := Create(context.Background(), CreateOptions{
		InstallDir: install, BackupDir: backups, Exclude: []string{"logs"},
		Databases: []Database{{Name: "memory", Path: ".swarm/memory.db"}},
		CreatedBy: "fuzz", Host: "host", Label: "seed",
		Now: func() time.Time { return time.Date(2025, 1, 4, 14, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		tb.Fatalf("create: %v", err)
	}
	b, err := os.ReadFile(ManifestPath(res.Path))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

// damagedManifests are the ways a manifest goes wrong: each must be an error.
var damagedManifests = map[string]string{
	"not json":         `garbage{`,
	"trailing garbage": `{"version":1}garbage`,
	"newer version":    `{"version":99}`,
	"negative version": `{"version":-1}`,
	"negative size":    `{"version":1,"archive_size":-5}`,
	"negative entries": `{"version":1,"entries":-1}`,
	"negative bytes":   `{"version":1,"bytes":-1}`,
	"archive with dir": `{"version":1,"archive":"../backup-1.tar.gz"}`,
	"archive dotdot":   `{"version":1,"archive":".."}`,
	"archive digest":   `{"version":1,"archive_sha256":"abc"}`,
	"path escapes":     `{"version":1,"files":[{"path":"../etc/passwd","mode":"0644","size":1,"sha256":"` + zeros + `"}]}`,
	"absolute path":    `{"version":1,"files":[{"path":"/etc/passwd","mode":"0644","size":1,"sha256":"` + zeros + `"}]}`,
	"unclean path":     `{"version":1,"files":[{"path":"a//b","mode":"0644","size":1,"sha256":"` + zeros + `"}]}`,
	"dot path":         `{"version":1,"files":[{"path":".","mode":"0644","size":1,"sha256":"` + zeros + `"}]}`,
	"empty path":       `{"version":1,"files":[{"path":"","mode":"0644","size":1,"sha256":"` + zeros + `"}]}`,
	"nul in path":      `{"version":1,"files":[{"path":"a\u0000b","mode":"0644","size":1,"sha256":"` + zeros + `"}]}`,
	"negative file":    `{"version":1,"files":[{"path":"a","mode":"0644","size":-1,"sha256":"` + zeros + `"}]}`,
	"file digest":      `{"version":1,"files":[{"path":"a","mode":"0644","size":1,"sha256":""}]}`,
	"mode not octal":   `{"version":1,"files":[{"path":"a","mode":"rw-r--r--","size":1,"sha256":"` + zeros + `"}]}`,
	"listed twice": `{"version":1,"files":[{"path":"a","mode":"0644","size":1,"sha256":"` + zeros + `"},` +
		`{"path":"a","mode":"0644","size":1,"sha256":"` + zeros + `"}]}`,
	"database escapes": `{"version":1,"databases":[{"name":"memory","path":"../../root/x.db","method":"raw_copy"}]}`,
	"wrong types":      `{"version":"1"}`,
	"deep nesting":     `{"version":1,"exclude":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
}

// TestDecodeManifestRefusesDamage: the code's own manifest reads back; every damaged one
// is an error, never a manifest.
func TestDecodeManifestRefusesDamage(t *testing.T) {
	good := realManifest(t, t.TempDir())
	m, err := decodeManifest("good", good)
	if err != nil {
		t.Fatalf("the code's own manifest: %v\n%s", err, good)
	}
	if len(m.Files) != 4 || m.Version != ManifestVersion {
		t.Fatalf("manifest %+v", m)
	}
	for name, b := range damagedManifests {
		if m, err := decodeManifest("x", []byte(b)); err == nil {
			t.Errorf("%s: accepted: %+v", name, m)
		}
	}
	// A hand-written manifest without the optional fields still reads (emergency tests
	// write them; an empty one is refused later by verify: no archive digest).
	for _, b := range []string{`{}`, `{"version":1,"archive":"backup-1.tar.gz","created":"2025-01-04T14:00:00Z"}`} {
		if _, err := decodeManifest("x", []byte(b)); err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
}

// FuzzDecodeManifest: for any bytes, decoding a sidecar manifest never panics or hangs,
// and either fails or gives a manifest that passes Validate, whose paths are clean,
// relative and inside the install dir, whose sizes are not negative, and that encodes and
// decodes back to the same manifest.
func FuzzDecodeManifest(f *testing.F) {
	good := realManifest(f, f.TempDir())
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(bytes.Replace(good, []byte(`"size": `), []byte(`"size": -`), 1))
	f.Add(bytes.Replace(good, []byte(`"path": "`), []byte(`"path": "../`), 1))
	f.Add(bytes.Replace(good, []byte(`"mode": "0`), []byte(`"mode": "9`), 1))
	f.Add(bytes.Replace(good, []byte(`"created": "2025`), []byte(`"created": "+2025`), 1))
	for _, b := range damagedManifests {
		f.Add([]byte(b))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":1,"created":"2025-01-04T14:00:00+01:00","files":[{"path":"a/b","mode":"0755","size":0,"sha256":"` + zeros + `"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeManifest("fuzz.manifest.json", b)
		if err != nil {
			if m != nil {
				t.Fatalf("an error and a manifest: %v", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted a manifest that fails Validate: %v", err)
		}
		if m.Version < 0 || m.Version > ManifestVersion || m.ArchiveSize < 0 || m.Entries < 0 || m.Bytes < 0 {
			t.Fatalf("accepted version %d, archive_size %d, entries %d, bytes %d", m.Version, m.ArchiveSize, m.Entries, m.Bytes)
		}
		if m.Archive != "" && strings.ContainsAny(m.Archive, "/\x00") {
			t.Fatalf("accepted archive %q", m.Archive)
		}
		seen := map[string]bool{}
		for _, fr := range m.Files {
			insideClean(t, fr.Path)
			if seen[fr.Path] {
				t.Fatalf("accepted %q twice", fr.Path)
			}
			seen[fr.Path] = true
			if fr.Size < 0 || fr.Mode != fr.Mode.Perm() || len(fr.SHA256) != 64 {
				t.Fatalf("accepted file %+v", fr)
			}
		}
		for _, d := range m.Databases {
			insideClean(t, d.Path)
		}
		enc, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatalf("an accepted manifest does not encode: %v", err)
		}
		m2, err := decodeManifest("re-encoded", enc)
		if err != nil {
			t.Fatalf("the re-encoded manifest is refused: %v\n%s", err, enc)
		}
		enc2, err := json.MarshalIndent(m2, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) || !m.Created.Equal(m2.Created) {
			t.Fatalf("re-encoding changed the manifest:\n%s\n---\n%s", enc, enc2)
		}
	})
}

func insideClean(t *testing.T, p string) {
	t.Helper()
	if p == "" || p == "." || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") || strings.ContainsRune(p, 0) {
		t.Fatalf("accepted path %q", p)
	}
}
