package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/archive"
)

// RestoreTestOptions are the inputs of RestoreTest.
type RestoreTestOptions struct {
	Limits archive.Limits
	// TempDir is where the throwaway restore goes (a new hidden dir in it,
	// removed at the end). It must exist. The caller keeps it away from the
	// live install.
	TempDir   string
	Databases []Database // checked when the backup has no manifest
	DBChecker DBChecker
	Progress  archive.Progress
	Now       func() time.Time
}

// RestoreTestResult is one restore drill.
type RestoreTestResult struct {
	ID       string    `json:"id"`
	Path     string    `json:"path"`
	OK       bool      `json:"ok"`
	Time     time.Time `json:"time"`
	Dir      string    `json:"restored_into"` // removed again before RestoreTest returns
	Manifest bool      `json:"manifest"`
	SHA256   string    `json:"sha256,omitempty"`
	Entries  int       `json:"entries"`
	Files    int       `json:"files"`
	Bytes    int64     `json:"bytes"`
	// CheckedFiles are the restored files compared with the manifest.
	CheckedFiles     int      `json:"checked_files"`
	CheckedDatabases []string `json:"checked_databases"`
	Problems         []string `json:"problems"`
	Error            string   `json:"error,omitempty"`
	Notes            []string `json:"notes,omitempty"`
	ExtractMS        int64    `json:"extract_ms"`
	CompareMS        int64    `json:"compare_ms"`
	DatabasesMS      int64    `json:"databases_ms"`
	DurationMS       int64    `json:"duration_ms"`
}

// RestoreTest is a restore drill: it extracts the backup the way emergency
// extracts into staging (every safety rule, one syncfs), then reads the
// restored tree back and compares every regular file's SHA-256, size and
// mode with the manifest, and checks every database in it with DBChecker.
// It starts nothing and writes nothing outside its own temporary dir, which
// it removes. Unlike Verify, which compares the archive's stream with the
// manifest, this checks what a restore actually put on disk.
// Only a cancelled ctx is returned as an error; everything else is in the
// result.
func RestoreTest(ctx context.Context, c Candidate, opt RestoreTestOptions) (*RestoreTestResult, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	start := opt.Now()
	res := &RestoreTestResult{ID: ID(c.Name), Path: c.Path, Time: start, Problems: []string{}, CheckedDatabases: []string{}}
	defer func() {
		res.OK = len(res.Problems) == 0
		if !res.OK {
			res.Error = res.Problems[0]
		}
		res.DurationMS = opt.Now().Sub(start).Milliseconds()
	}()
	problem := func(format string, a ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, a...)) }

	m, merr := ReadManifest(c.Path)
	switch {
	case errors.Is(merr, fs.ErrNotExist):
		m = nil
		res.Notes = append(res.Notes, "no manifest (a backup made by another tool): the restored files were not compared file by file")
	case merr != nil:
		problem("%v", merr)
		return res, nil
	default:
		res.Manifest = true
	}

	work, err := os.MkdirTemp(opt.TempDir, ".restore-test-"+ID(c.Name)+"-*")
	if err != nil {
		problem("create the throwaway dir: %v", err)
		return res, nil
	}
	defer os.RemoveAll(work)
	tree := filepath.Join(work, "tree")
	res.Dir = tree

	t0 := time.Now()
	sum, err := archive.Extract(ctx, c.Path, tree, archive.ExtractOptions{Limits: opt.Limits, UID: -1, GID: -1, Progress: opt.Progress})
	res.ExtractMS = time.Since(t0).Milliseconds()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		problem("extract: %s", strings.TrimPrefix(err.Error(), c.Path+": "))
		return res, nil
	}
	res.SHA256, res.Entries, res.Files, res.Bytes = sum.SHA256, sum.Entries, sum.Files, sum.Bytes

	if m != nil {
		compareSummary(m, sum, problem)
		t1 := time.Now()
		n, err := compareTree(ctx, tree, m.Files, problem)
		res.CompareMS, res.CheckedFiles = time.Since(t1).Milliseconds(), n
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			problem("compare the restored files: %v", err)
		}
	}

	t2 := time.Now()
	checked, notes, err := checkDatabases(ctx, tree, m, opt.Databases, opt.DBChecker, problem)
	res.DatabasesMS = time.Since(t2).Milliseconds()
	res.CheckedDatabases = append(res.CheckedDatabases, checked...)
	res.Notes = append(res.Notes, notes...)
	return res, err
}

// restoredFile is a regular file found in the restored tree.
type restoredFile struct {
	rel  string
	mode fs.FileMode
	size int64
	id   fileID
}

type fileID struct{ dev, ino uint64 }

// compareTree compares the regular files under tree with the manifest's
// records, hashing on every core (the files were just written, so they are
// mostly in the page cache). A file the manifest lacks is a problem unless it
// is a hard link to one it has: manifests record a hard link's first name
// only. It returns how many manifest files were compared.
func compareTree(ctx context.Context, tree string, want []FileRecord, problem func(string, ...any)) (int, error) {
	found := map[string]restoredFile{}
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(tree, p)
		if err != nil {
			return err
		}
		f := restoredFile{rel: filepath.ToSlash(rel), mode: fi.Mode().Perm(), size: fi.Size()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			f.id = fileID{uint64(st.Dev), uint64(st.Ino)}
		}
		found[f.rel] = f
		return nil
	})
	if err != nil {
		return 0, err
	}

	const maxListed = 20
	var mu sync.Mutex
	n := 0
	report := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if n++; n <= maxListed {
			problem(format, a...)
		} else if n == maxListed+1 {
			problem("... and more file differences")
		}
	}

	covered := map[fileID]bool{}
	var toHash []FileRecord
	for _, w := range want {
		f, ok := found[w.Path]
		if !ok {
			report("file %q is in the manifest but was not restored", w.Path)
			continue
		}
		covered[f.id] = true
		if f.mode != w.Mode.Perm() {
			report("file %q: restored with mode %04o, manifest says %04o", w.Path, f.mode, w.Mode.Perm())
		}
		if f.size != w.Size {
			report("file %q: restored %d bytes, manifest says %d", w.Path, f.size, w.Size)
			continue
		}
		toHash = append(toHash, w)
	}
	inManifest := make(map[string]bool, len(want))
	for _, w := range want {
		inManifest[w.Path] = true
	}
	var extra []string
	for rel, f := range found {
		if !inManifest[rel] && !covered[f.id] {
			extra = append(extra, rel)
		}
	}
	sort.Strings(extra)
	for _, rel := range extra {
		report("file %q was restored but is not in the manifest", rel)
	}

	jobs := make(chan FileRecord)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for w := range jobs {
				sum, err := sha256File(filepath.Join(tree, filepath.FromSlash(w.Path)), buf)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				if !strings.EqualFold(sum, w.SHA256) {
					report("file %q: restored sha256 %s, manifest says %s", w.Path, sum, w.SHA256)
				}
			}
		}()
	}
	for _, w := range toHash {
		if ctx.Err() != nil {
			break
		}
		jobs <- w
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return len(want), firstErr
}

func sha256File(path string, buf []byte) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
