package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// Candidate is one backup archive that may be restored.
type Candidate struct {
	Path string    `json:"path"`
	Name string    `json:"name"`
	Time time.Time `json:"time"`
	// TimeSource is "name" when Time was parsed from the file name, "mtime"
	// otherwise.
	TimeSource string `json:"time_source"`
	Size       int64  `json:"size"`
	// ManifestSHA256 is the archive digest from a sidecar manifest, if any.
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	// ManifestProblem says why a sidecar manifest that exists could not be read (not JSON,
	// not a regular file, too large); "" when it was read or there is none.
	ManifestProblem string `json:"manifest_problem,omitempty"`

	// header is the manifest Discover read and validated, without its file list (see
	// ManifestHeader); nil when there was none or it was damaged.
	header *Manifest
	// unread: from DiscoverLazy, the manifest not read yet (LoadManifest reads it).
	unread bool
}

// LoadManifest reads c's sidecar manifest into ManifestSHA256, ManifestProblem and its
// header, if DiscoverLazy left it unread; a no-op otherwise.
func (c *Candidate) LoadManifest() {
	if c.unread {
		c.ManifestSHA256, c.ManifestProblem, c.header = manifestDigest(c.Path)
		c.unread = false
	}
}

// ManifestHeader returns c's manifest without its file list (Files nil): what choosing a
// backup needs (app version, when it was taken, its sizes). A candidate from Discover or
// Lookup hands back the manifest read and validated whole then: a real install's manifest
// lists every file (7.6 MB for claude-flow's 35,000) and decoding it takes 0.3 s, which
// preflight used to pay again for each question it asked of it. Other candidates read it
// now, with ReadManifest's errors.
func (c Candidate) ManifestHeader() (*Manifest, error) {
	if c.header != nil && !c.unread {
		return c.header, nil
	}
	m, err := ReadManifest(c.Path)
	if err != nil {
		return nil, err
	}
	m.Files = nil
	return m, nil
}

// Rejected is a directory entry that matched the pattern but cannot be a
// backup, with the reason.
type Rejected struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

var stampRE = regexp.MustCompile(`(\d{8}-\d{6})`)

// ErrNoBackupDir means the backup directory does not exist or cannot be read.
var ErrNoBackupDir = errors.New("backup directory not readable")

// Discover lists backups in dir matching pattern, newest first.
func Discover(dir, pattern string) ([]Candidate, []Rejected, error) {
	return discover(dir, pattern, true)
}

// DiscoverLazy is Discover without reading the manifests: each candidate's ManifestSHA256
// and ManifestProblem are empty until its LoadManifest. For a caller that walks the
// candidates newest first and stops at the first it can use (preflight, the standby's
// refresh): a real install's manifest takes 0.2 s to read and check, and a host keeps ten
// backups (backup.keep).
func DiscoverLazy(dir, pattern string) ([]Candidate, []Rejected, error) {
	return discover(dir, pattern, false)
}

func discover(dir, pattern string, manifests bool) ([]Candidate, []Rejected, error) {
	matches, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		return nil, nil, fmt.Errorf("backup.pattern %q: %w", pattern, err)
	}
	if _, err := os.ReadDir(dir); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrNoBackupDir, dir, err)
	}
	var out []Candidate
	var rejected []Rejected
	for _, p := range matches {
		info, err := os.Lstat(p)
		if err != nil {
			rejected = append(rejected, Rejected{p, err.Error()})
			continue
		}
		if !info.Mode().IsRegular() {
			rejected = append(rejected, Rejected{p, "not a regular file (" + fsutil.Kind(info.Mode()) + "); a backup must be a plain file"})
			continue
		}
		if why := untrusted(info); why != "" {
			rejected = append(rejected, Rejected{p, why})
			continue
		}
		out = append(out, candidateOf(p, info, manifests))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].Name > out[j].Name
	})
	return out, rejected, nil
}

// ManifestPath is the sidecar manifest of an archive:
// backup-X.tar.gz -> backup-X.manifest.json.
func ManifestPath(archive string) string {
	base := archive
	for _, ext := range []string{".tar.gz", ".tgz"} {
		if len(base) > len(ext) && base[len(base)-len(ext):] == ext {
			base = base[:len(base)-len(ext)]
			break
		}
	}
	return base + ".manifest.json"
}

// manifestDigest reads the archive digest from the sidecar manifest; problem is why a
// manifest that exists cannot be used ("" when there is none): unreadable, not JSON,
// impossible (Manifest.Validate) or without the archive's digest — judged as `backup
// verify` judges it, through ReadManifest.
// The manifest itself is returned without its file list (nil when there is none, or it
// is damaged).
func manifestDigest(archive string) (digest, problem string, header *Manifest) {
	m, err := ReadManifest(archive)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", "", nil
	case err != nil:
		return "", err.Error(), nil
	}
	m.Files = nil
	if m.ArchiveSHA256 == "" {
		return "", fmt.Sprintf("manifest %s has no archive_sha256, so the archive cannot be checked against it", ManifestPath(archive)), m
	}
	return m.ArchiveSHA256, "", m
}

// Lookup resolves an explicit --backup argument: a path, or a name inside dir.
func Lookup(dir, arg string) (Candidate, error) {
	p := arg
	if !filepath.IsAbs(p) && filepath.Base(p) == p {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			p = filepath.Join(dir, p)
		}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return Candidate{}, err
	}
	info, err := os.Lstat(abs)
	if err != nil {
		return Candidate{}, fmt.Errorf("backup %s: %w", arg, err)
	}
	if !info.Mode().IsRegular() {
		return Candidate{}, fmt.Errorf("backup %s is %s, not a regular file", arg, fsutil.Kind(info.Mode()))
	}
	if why := untrusted(info); why != "" {
		return Candidate{}, fmt.Errorf("backup %s: %s", arg, why)
	}
	return candidateOf(abs, info, true), nil
}

// untrusted says why a backup file cannot be trusted to be what was backed
// up: anyone may have replaced the contents of a world-writable file.
func untrusted(info fs.FileInfo) string {
	if info.Mode().Perm()&0o002 != 0 {
		return fmt.Sprintf("world-writable (mode %04o): anyone could have replaced it; if it is yours, 'chmod o-w' it and retry", info.Mode().Perm())
	}
	return ""
}

func candidateOf(path string, info fs.FileInfo, manifest bool) Candidate {
	c := Candidate{Path: path, Name: filepath.Base(path), Size: info.Size(), Time: info.ModTime(), TimeSource: "mtime"}
	if m := stampRE.FindString(c.Name); m != "" {
		if t, err := time.ParseInLocation("20060102-150405", m, time.Local); err == nil {
			c.Time, c.TimeSource = t, "name"
		}
	}
	c.unread = true
	if manifest {
		c.LoadManifest()
	}
	return c
}
