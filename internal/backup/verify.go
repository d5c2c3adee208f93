package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/archive"
)

// DBChecker checks a database file in an extracted backup, e.g. with
// PRAGMA integrity_check reading every row of its answer. internal/sqlitedb
// provides the real one (issue 4); nil only checks that the file exists.
type DBChecker interface {
	Check(ctx context.Context, dbPath string) error
}

// VerifyOptions are the inputs of Verify.
type VerifyOptions struct {
	Limits archive.Limits
	// Deep extracts the backup into a temporary dir under TempDir (which
	// must exist; default the backup's dir, so the space is on the same
	// disk as the backups) and checks Databases there.
	Deep      bool
	TempDir   string
	Databases []Database
	DBChecker DBChecker
	Progress  archive.Progress
	Now       func() time.Time
}

// VerifyResult is one backup's verification.
type VerifyResult struct {
	ID       string    `json:"id"`
	Path     string    `json:"path"`
	OK       bool      `json:"ok"`
	Deep     bool      `json:"deep"`
	Time     time.Time `json:"time"`
	SHA256   string    `json:"sha256,omitempty"`
	Entries  int       `json:"entries"`
	Manifest bool      `json:"manifest"` // a manifest was found and compared
	// Problems lists everything found; the first one is Error.
	Problems []string `json:"problems"`
	Error    string   `json:"error,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	// CheckedDatabases are the databases a deep check found (and checked
	// with DBChecker when one is set).
	CheckedDatabases []string `json:"checked_databases,omitempty"`
	DurationMS       int64    `json:"duration_ms"`
}

// Record is the result as backup.state keeps it.
func (r *VerifyResult) Record() VerifyRecord {
	return VerifyRecord{OK: r.OK, Time: r.Time, Deep: r.Deep, SHA256: r.SHA256, Error: r.Error}
}

// Verify reads the backup to its last byte under the same rules as a
// restore, and compares it with its manifest: the archive's SHA-256, the
// entry count, and every file's SHA-256 and mode. A manifest that cannot be
// read is a problem; no manifest at all is not (backups made by other tools
// have none). Only a cancelled ctx is returned as an error; everything else
// is in the result.
func Verify(ctx context.Context, c Candidate, opt VerifyOptions) (*VerifyResult, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	start := opt.Now()
	res := &VerifyResult{ID: ID(c.Name), Path: c.Path, Deep: opt.Deep, Time: start, Problems: []string{}}
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
	case merr != nil:
		problem("%v", merr)
		m = nil
	default:
		res.Manifest = true
	}
	sum, digests, err := archive.Digests(ctx, c.Path, opt.Limits, opt.Progress)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		problem("%s", strings.TrimPrefix(err.Error(), c.Path+": "))
		return res, nil
	}
	res.SHA256, res.Entries = sum.SHA256, sum.Entries
	if m != nil {
		compareManifest(m, sum, digests, problem)
	}
	if opt.Deep && len(res.Problems) == 0 {
		if err := deepCheck(ctx, c, m, opt, res, problem); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// compareSummary checks the archive's digest and entry count against its manifest.
func compareSummary(m *Manifest, sum archive.Summary, problem func(string, ...any)) {
	switch {
	case m.ArchiveSHA256 == "":
		problem("its manifest records no archive sha256 (archive_sha256 is missing): the archive cannot be checked against it")
	case !strings.EqualFold(m.ArchiveSHA256, sum.SHA256):
		problem("archive sha256 %s does not match its manifest (%s): the file changed after it was written", sum.SHA256, m.ArchiveSHA256)
	}
	if m.Entries != sum.Entries {
		problem("the archive has %d entries, its manifest says %d", sum.Entries, m.Entries)
	}
}

func compareManifest(m *Manifest, sum archive.Summary, digests []archive.EntryDigest, problem func(string, ...any)) {
	compareSummary(m, sum, problem)
	want := make(map[string]FileRecord, len(m.Files))
	for _, f := range m.Files {
		want[f.Path] = f
	}
	const maxListed = 20
	n := 0
	report := func(format string, a ...any) {
		if n++; n <= maxListed {
			problem(format, a...)
		} else if n == maxListed+1 {
			problem("... and more file differences")
		}
	}
	for _, d := range digests {
		if d.Type != "file" {
			continue
		}
		f, ok := want[d.Name]
		if !ok {
			report("file %q is in the archive but not in its manifest", d.Name)
			continue
		}
		delete(want, d.Name)
		if !strings.EqualFold(f.SHA256, d.SHA256) {
			report("file %q: sha256 %s, manifest says %s", d.Name, d.SHA256, f.SHA256)
		}
		if f.Mode.Perm() != d.Mode.Perm() {
			report("file %q: mode %04o, manifest says %04o", d.Name, d.Mode.Perm(), f.Mode.Perm())
		}
	}
	for name := range want {
		report("file %q is in the manifest but not in the archive", name)
	}
}

// deepCheck extracts the backup into a temporary dir and checks the
// databases in it (checkDatabases).
func deepCheck(ctx context.Context, c Candidate, m *Manifest, opt VerifyOptions, res *VerifyResult, problem func(string, ...any)) error {
	tmpRoot := opt.TempDir
	if tmpRoot == "" {
		tmpRoot = filepath.Dir(c.Path)
	}
	work, err := os.MkdirTemp(tmpRoot, ".verify-"+ID(c.Name)+"-*")
	if err != nil {
		problem("deep check: %v", err)
		return nil
	}
	defer os.RemoveAll(work)
	tree := filepath.Join(work, "tree")
	if _, err := archive.Extract(ctx, c.Path, tree, archive.ExtractOptions{Limits: opt.Limits, UID: -1, GID: -1}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		problem("deep check: extract: %s", strings.TrimPrefix(err.Error(), c.Path+": "))
		return nil
	}
	deepProblem := func(format string, a ...any) { problem("deep check: "+format, a...) }
	checked, notes, err := checkDatabases(ctx, tree, m, opt.Databases, opt.DBChecker, deepProblem)
	res.CheckedDatabases = append(res.CheckedDatabases, checked...)
	res.Notes = append(res.Notes, notes...)
	return err
}

// checkDatabases checks the databases of a restored tree. Those the manifest
// says were captured must be there; without a manifest, the configured ones
// that are there are checked and a missing one is a note (a backup made by
// another tool may simply predate the database). Only a cancelled ctx is
// returned as an error.
func checkDatabases(ctx context.Context, tree string, m *Manifest, configured []Database, checker DBChecker, problem func(string, ...any)) (checked, notes []string, err error) {
	dbs := configured
	if m != nil {
		dbs = nil
		for _, d := range m.Databases {
			dbs = append(dbs, Database{Name: d.Name, Path: d.Path})
		}
	}
	for _, db := range dbs {
		rel, ok := relInside(db.Path)
		if !ok {
			continue
		}
		p := filepath.Join(tree, filepath.FromSlash(rel))
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			if m != nil {
				problem("database %s (%s) is in the manifest but not in the backup", db.Name, rel)
			} else {
				notes = append(notes, fmt.Sprintf("database %s (%s) is not in the backup", db.Name, rel))
			}
			continue
		}
		checked = append(checked, rel)
		if checker == nil {
			continue
		}
		if err := checker.Check(ctx, p); err != nil {
			if ctx.Err() != nil {
				return checked, notes, ctx.Err()
			}
			problem("database %s (%s): %v", db.Name, rel, err)
		}
	}
	return checked, notes, nil
}
