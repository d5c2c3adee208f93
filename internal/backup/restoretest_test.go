package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type fakeChecker struct {
	checked []string
	err     error
}

func (f *fakeChecker) Check(_ context.Context, p string) error {
	f.checked = append(f.checked, p)
	return f.err
}

var _ DBChecker = (*fakeChecker)(nil)

func TestRestoreTestComparesTheRestoredTree(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	// A hard link: the manifest records only its first name.
	if err := os.Link(filepath.Join(install, "dist/index.js"), filepath.Join(install, "dist/index-copy.js")); err != nil {
		t.Fatal(err)
	}
	res := create(t, install, backups, &fakeSnapshotter{})
	c := Candidate{Path: res.Path, Name: filepath.Base(res.Path)}
	scratch := t.TempDir()
	chk := &fakeChecker{}
	r, err := RestoreTest(context.Background(), c, RestoreTestOptions{TempDir: scratch, DBChecker: chk})
	if err != nil || !r.OK {
		t.Fatalf("restore test: %v %+v", err, r)
	}
	if r.CheckedFiles != res.Files-1 && r.CheckedFiles != res.Files {
		t.Errorf("checked %d files, the backup has %d", r.CheckedFiles, res.Files)
	}
	if len(chk.checked) != 1 || !strings.HasSuffix(chk.checked[0], "/tree/.swarm/memory.db") || len(r.CheckedDatabases) != 1 {
		t.Errorf("databases checked %v, result %v", chk.checked, r.CheckedDatabases)
	}
	if !strings.HasPrefix(r.Dir, scratch+"/.restore-test-") {
		t.Errorf("restored into %s, want a dir under %s", r.Dir, scratch)
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("throwaway dir left behind: %v", left)
	}

	// The manifest is what the restored tree is held to.
	m, err := ReadManifest(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	m.Files[3].SHA256 = strings.Repeat("0", 64)
	m.Files[4].Mode = 0o777
	m.Files = append(m.Files, FileRecord{Path: "not/restored.js", Mode: 0o644, SHA256: strings.Repeat("1", 64)})
	if err := writeManifest(res.Path, m); err != nil {
		t.Fatal(err)
	}
	chk.err = errors.New("integrity_check: row 3 missing from index")
	r, err = RestoreTest(context.Background(), c, RestoreTestOptions{TempDir: scratch, DBChecker: chk})
	if err != nil || r.OK {
		t.Fatalf("restore test: %v %+v", err, r)
	}
	got := strings.Join(r.Problems, "\n")
	for _, want := range []string{`file "` + m.Files[3].Path + `": restored sha256`, `file "` + m.Files[4].Path + `": restored with mode`,
		`"not/restored.js" is in the manifest but was not restored`, "database memory (.swarm/memory.db): integrity_check"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}

func TestRestoreTestCancelled(t *testing.T) {
	install, backups := sampleInstall(t), t.TempDir()
	res := create(t, install, backups, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	scratch := t.TempDir()
	if _, err := RestoreTest(ctx, Candidate{Path: res.Path, Name: filepath.Base(res.Path)}, RestoreTestOptions{TempDir: scratch}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("throwaway dir left behind: %v", left)
	}
}
