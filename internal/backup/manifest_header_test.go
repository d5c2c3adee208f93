package backup

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A candidate from Discover hands back the manifest Discover read (without its file list):
// preflight asks it the app version and when it was taken without decoding the whole
// manifest again. A candidate made by hand reads it when asked.
func TestManifestHeaderIsDiscoversRead(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	res := create(t, install, backups, nil)
	cands, _, err := Discover(backups, "backup-*.tar.gz")
	if err != nil || len(cands) != 1 {
		t.Fatalf("discover: %v %+v", err, cands)
	}
	// Edited after Discover: the candidate still answers from what Discover read.
	m, err := ReadManifest(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) == 0 {
		t.Fatalf("the sample backup's manifest lists no files")
	}
	m.AppVersion = "9.9.9"
	if err := writeManifest(res.Path, m); err != nil {
		t.Fatal(err)
	}
	h, err := cands[0].ManifestHeader()
	if err != nil || h.AppVersion != "2.4.1" || h.ArchiveSHA256 != res.SHA256 || h.Files != nil {
		t.Fatalf("ManifestHeader of Discover's candidate: %v %+v, want app version 2.4.1, the archive digest and no file list", err, h)
	}
	byHand := Candidate{Path: res.Path, Name: filepath.Base(res.Path)}
	if h, err := byHand.ManifestHeader(); err != nil || h.AppVersion != "9.9.9" || h.Files != nil {
		t.Fatalf("ManifestHeader of a candidate made by hand: %v %+v, want the manifest on disk now, without its file list", err, h)
	}
	none := Candidate{Path: filepath.Join(backups, "backup-20250101-000000.tar.gz")}
	if _, err := none.ManifestHeader(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ManifestHeader with no manifest: %v, want ErrNotExist", err)
	}
}

// The manifest's files are decoded in one pass (fileJSON) and their modes read as before:
// what fmt.Sscanf's %o accepted is still accepted, and the rest still named.
func TestManifestFileModes(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want fs.FileMode
		err  string
	}{
		{"0644", 0o644, ""},
		{"755", 0o755, ""},
		{"0100644", 0o644, ""}, // permission bits only
		{"0644x", 0o644, ""},   // Sscanf stops at the x
		{"rwxr-xr-x", 0, `file "a": mode "rwxr-xr-x" is not octal`},
		{"", 0, `file "a": mode "" is not octal`},
	} {
		b := []byte(`{"version":1,"files":[{"path":"a","mode":"` + tc.mode + `","size":1,"sha256":"` + strings.Repeat("ab", 32) + `"}]}`)
		m, err := decodeManifest("m.json", b)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("mode %q: %v, want an error naming %s", tc.mode, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("mode %q: %v", tc.mode, err)
		case tc.err == "" && (len(m.Files) != 1 || m.Files[0].Mode != tc.want || m.Files[0].Path != "a" || m.Files[0].Size != 1):
			t.Errorf("mode %q: %+v, want mode %v", tc.mode, m.Files, tc.want)
		}
		var f FileRecord // a FileRecord decoded on its own agrees
		ferr := json.Unmarshal([]byte(`{"path":"a","mode":"`+tc.mode+`","size":1}`), &f)
		if (ferr != nil) != (tc.err != "") || (ferr == nil && f.Mode != tc.want) {
			t.Errorf("FileRecord with mode %q: %v %+v", tc.mode, ferr, f)
		}
	}
}

// DiscoverLazy lists the same candidates as Discover without reading a manifest; each is
// read by its LoadManifest (once), into the same fields Discover fills.
func TestDiscoverLazyReadsManifestsOnLoad(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	res := create(t, install, backups, nil)
	eager, _, err := Discover(backups, "backup-*.tar.gz")
	if err != nil || len(eager) != 1 || eager[0].ManifestSHA256 != res.SHA256 {
		t.Fatalf("Discover: %v %+v", err, eager)
	}
	lazy, _, err := DiscoverLazy(backups, "backup-*.tar.gz")
	if err != nil || len(lazy) != 1 || lazy[0].Path != eager[0].Path {
		t.Fatalf("DiscoverLazy: %v %+v", err, lazy)
	}
	c := lazy[0]
	if c.ManifestSHA256 != "" || c.ManifestProblem != "" {
		t.Fatalf("DiscoverLazy read the manifest: %+v", c)
	}
	c.LoadManifest()
	if c.ManifestSHA256 != res.SHA256 || c.ManifestProblem != "" {
		t.Fatalf("after LoadManifest: %+v, want the archive digest %s", c, res.SHA256)
	}
	// read once: a manifest damaged afterwards does not change what the candidate says
	if err := os.WriteFile(ManifestPath(res.Path), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.LoadManifest()
	if h, err := c.ManifestHeader(); c.ManifestSHA256 != res.SHA256 || err != nil || h.AppVersion != "2.4.1" {
		t.Fatalf("a second LoadManifest read again: %+v %v %+v", c, err, h)
	}
	damaged := lazy[0]
	damaged.LoadManifest()
	if damaged.ManifestProblem == "" || damaged.ManifestSHA256 != "" {
		t.Fatalf("a damaged manifest loaded: %+v, want its problem", damaged)
	}
}
