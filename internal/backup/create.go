package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// DBSnapshotter copies a live SQLite database at srcPath into a new file at
// dstPath as one consistent snapshot (SQLite's online backup API), so that a
// backup taken while the app writes holds every committed row and no -wal or
// -shm file is needed. internal/sqlitedb provides the real one.
type DBSnapshotter interface {
	Snapshot(ctx context.Context, srcPath, dstPath string) error
}

// Database is one database to capture, Path relative to the install dir.
type Database struct {
	Name string
	Path string
}

// CreateOptions are the inputs of Create.
type CreateOptions struct {
	InstallDir string
	BackupDir  string
	Exclude    []string
	Databases  []Database
	// Snapshotter captures Databases; nil archives them as they are on
	// disk, -wal and -shm included, with a warning.
	Snapshotter DBSnapshotter
	Label       string
	AppVersion  string // empty: detect from <install>/package.json
	CreatedBy   string
	Host        string
	Now         func() time.Time
	Limits      archive.Limits
	Progress    func(files int, bytes int64)
	Warn        func(string)
	// DryRun reads the tree as a backup does (excludes, limits, every file read) and writes
	// nothing: no backup dir, no snapshot, no archive, no manifest. The result names what
	// would be written.
	DryRun bool
}

// CreateResult is what Create wrote.
type CreateResult struct {
	ID           string           `json:"id"`
	Path         string           `json:"path"`
	ManifestPath string           `json:"manifest"`
	SHA256       string           `json:"sha256"`
	Size         int64            `json:"size"`
	Entries      int              `json:"entries"`
	Files        int              `json:"files"`
	Bytes        int64            `json:"bytes"`
	AppVersion   string           `json:"app_version,omitempty"`
	Label        string           `json:"label,omitempty"`
	Created      time.Time        `json:"created"`
	DurationMS   int64            `json:"duration_ms"`
	Skipped      []string         `json:"skipped,omitempty"`
	Warnings     []string         `json:"warnings"`
	Databases    []DatabaseRecord `json:"databases,omitempty"`
	DryRun       bool             `json:"dry_run,omitempty"`
}

// ErrInstallReplaced means the install dir was swapped (by an emergency, undo or
// rollback) while the backup ran; nothing was kept.
var ErrInstallReplaced = errors.New("it was replaced while the backup ran (an emergency, undo or rollback swapped it); nothing was kept: run the backup again")

// ErrExists means a backup with the same name already exists.
var ErrExists = errors.New("backup already exists")

// Create writes <BackupDir>/backup-YYYYmmdd-HHMMSS.tar.gz of the install dir
// and its manifest. Either both are written or neither is: a failure removes
// what it had written, temporary files included.
func Create(ctx context.Context, opt CreateOptions) (*CreateResult, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	warn := func(format string, a ...any) {
		if opt.Warn != nil {
			opt.Warn(fmt.Sprintf(format, a...))
		}
	}
	install := filepath.Clean(opt.InstallDir)
	installFI, err := os.Stat(install)
	if err != nil {
		return nil, fmt.Errorf("install dir: %w; check install_dir ('cfrollback settings')", err)
	}
	if !installFI.IsDir() {
		return nil, fmt.Errorf("install dir %s is not a directory; check install_dir", install)
	}
	// An emergency or rollback may swap the install dir while the backup runs: the
	// databases (read by path) and the tree would then come from two installs. Every part
	// is checked to come from the directory that was there at the start.
	sameInstall := func() error {
		fi, err := os.Stat(install)
		if err != nil || !os.SameFile(fi, installFI) {
			return fmt.Errorf("install dir %s: %w", install, ErrInstallReplaced)
		}
		return nil
	}
	// backup.dir may be a deploy user's (trusted with the backups' content, see
	// docs/SECURITY.md), but never writable by other users: root writes the archive there.
	if err := prepareBackupDir(opt.BackupDir, opt.DryRun); err != nil {
		return nil, err
	}
	start := opt.Now()
	name := "backup-" + start.Format("20060102-150405") + ".tar.gz"
	dest := filepath.Join(opt.BackupDir, name)
	if _, err := os.Lstat(dest); err == nil && !opt.DryRun {
		// A second backup within the same second (names carry the second): wait for the
		// next second, at most one, instead of failing.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second - time.Duration(start.Nanosecond())):
		}
		start = opt.Now()
		name = "backup-" + start.Format("20060102-150405") + ".tar.gz"
		dest = filepath.Join(opt.BackupDir, name)
	}
	if _, err := os.Lstat(dest); err == nil && !opt.DryRun {
		return nil, fmt.Errorf("%w: %s; nothing was written", ErrExists, dest)
	}
	res := &CreateResult{ID: ID(name), Path: dest, ManifestPath: ManifestPath(dest), Created: start, Warnings: []string{}, DryRun: opt.DryRun}

	version, source := opt.AppVersion, "flag"
	if version == "" {
		var problem string
		version, source, problem = detectAppVersion(install)
		if problem != "" {
			w := problem + "; the manifest records no app version from it (give --app-version)"
			warn("%s", w)
			res.Warnings = append(res.Warnings, w)
		}
	}
	exclude := append([]string(nil), opt.Exclude...)
	subst := map[string]string{}
	var dbRecs []DatabaseRecord
	snapDir := ""
	defer func() {
		if snapDir != "" {
			os.RemoveAll(snapDir)
		}
	}()
	for _, db := range opt.Databases {
		rel, ok := relInside(db.Path)
		if !ok {
			warn("database %s (%s) is not inside the install dir; it is not part of the backup", db.Name, db.Path)
			continue
		}
		if fi, err := os.Lstat(filepath.Join(install, rel)); err != nil || !fi.Mode().IsRegular() {
			continue // not every install has every database
		}
		if opt.Snapshotter == nil {
			w := fmt.Sprintf("database %s (%s) archived as it is on disk, -wal/-shm included: no SQLite snapshotter is available, so a backup taken while the app writes may not hold the last commits", db.Name, rel)
			warn("%s", w)
			res.Warnings = append(res.Warnings, w)
			dbRecs = append(dbRecs, DatabaseRecord{Name: db.Name, Path: rel, Method: "raw_copy"})
			continue
		}
		if opt.DryRun {
			// The snapshot is what a backup would store; the dry run reads the live file.
			dbRecs = append(dbRecs, DatabaseRecord{Name: db.Name, Path: rel, Method: "online_backup"})
			continue
		}
		if snapDir == "" {
			d, err := os.MkdirTemp(opt.BackupDir, "."+res.ID+".db-*.tmp")
			if err != nil {
				return nil, fmt.Errorf("create snapshot dir: %w", err)
			}
			snapDir = d
		}
		dst := filepath.Join(snapDir, fmt.Sprintf("%d.db", len(subst)))
		if err := opt.Snapshotter.Snapshot(ctx, filepath.Join(install, rel), dst); err != nil {
			return nil, fmt.Errorf("snapshot database %s (%s): %w; nothing was written", db.Name, rel, err)
		}
		if err := sameInstall(); err != nil {
			return nil, err
		}
		subst[rel] = dst
		for _, suffix := range []string{"-wal", "-shm", "-journal"} {
			exclude = append(exclude, globEscape(rel+suffix))
		}
		dbRecs = append(dbRecs, DatabaseRecord{Name: db.Name, Path: rel, Method: "online_backup"})
	}

	var files []FileRecord
	sum, err := archive.Create(ctx, install, dest, archive.CreateOptions{
		Exclude: exclude, Limits: opt.Limits, Progress: opt.Progress, Substitute: subst,
		SameDir: installFI, BeforeCommit: sameInstall, DryRun: opt.DryRun,
		OnFile: func(name string, mode fs.FileMode, size int64, sha string) {
			files = append(files, FileRecord{Path: name, Mode: mode, Size: size, SHA256: sha})
		},
	})
	if errors.Is(err, archive.ErrTreeReplaced) {
		err = fmt.Errorf("install dir %s: %w", install, ErrInstallReplaced)
	}
	if err != nil {
		removeTemps(opt.BackupDir, name)
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	if opt.DryRun {
		res.Entries, res.Files, res.Bytes = sum.Entries, sum.Files, sum.Bytes
		res.AppVersion, res.Label, res.Skipped, res.Databases = version, opt.Label, sum.Skipped, dbRecs
		res.DurationMS = opt.Now().Sub(start).Milliseconds()
		return res, nil
	}
	m := &Manifest{
		Version: ManifestVersion, Archive: name, ArchiveSHA256: sum.SHA256, ArchiveSize: sum.CompressedSize,
		Created: start.UTC(), CreatedBy: opt.CreatedBy, Host: opt.Host, Label: opt.Label,
		AppVersion: version, InstallDir: install, Exclude: exclude,
		Entries: sum.Entries, Bytes: sum.Bytes, Databases: dbRecs, Files: files,
	}
	if version != "" {
		m.AppVersionSource = source
	}
	if err := writeManifest(dest, m); err != nil {
		os.Remove(dest)
		removeTemps(opt.BackupDir, name)
		return nil, fmt.Errorf("write manifest %s: %w; the archive was removed again", res.ManifestPath, err)
	}
	for _, s := range sum.Skipped {
		warn("%s is a socket, FIFO or device; it is not part of the backup", s)
	}
	res.SHA256, res.Size, res.Entries, res.Files, res.Bytes = sum.SHA256, sum.CompressedSize, sum.Entries, sum.Files, sum.Bytes
	res.AppVersion, res.Label, res.Skipped, res.Databases = version, opt.Label, sum.Skipped, dbRecs
	res.DurationMS = opt.Now().Sub(start).Milliseconds()
	return res, nil
}

// prepareBackupDir makes backup.dir (root writes there: never through a link or in a dir
// others can write). A dry run only checks what is there and creates nothing.
func prepareBackupDir(dir string, dryRun bool) error {
	if !dryRun {
		if err := fsutil.MkdirShared(dir, 0o700); err != nil {
			return fmt.Errorf("create backup dir: %w", fsutil.WithKey(err, "backup.dir"))
		}
		return nil
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil // a backup would create it
	}
	if err := fsutil.CheckSharedDir(dir); err != nil {
		return fmt.Errorf("backup dir: %w", fsutil.WithKey(err, "backup.dir"))
	}
	return nil
}

// removeTemps removes temporary files archive.Create may have left for name
// when it was interrupted before its own cleanup ran.
func removeTemps(dir, name string) {
	tmps, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(name)+".*.tmp"))
	for _, t := range tmps {
		os.Remove(t)
	}
}

// detectAppVersion is the claude-flow version of the install (appconfig.AppVersionChecked:
// the app's own package.json in node_modules, else <install>/package.json), and why a
// package.json there could not be read (a FIFO, a device, not JSON), "" when none.
func detectAppVersion(install string) (version, source, problem string) {
	v, problem := appconfig.AppVersionChecked(install)
	if v != "" {
		return v, "package.json", problem
	}
	return "", "", problem
}

// relInside cleans a database path relative to the install dir; ok is false
// for an absolute path or one that leaves the install dir.
func relInside(p string) (string, bool) {
	if filepath.IsAbs(p) {
		return "", false
	}
	c := path.Clean(filepath.ToSlash(p))
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

// globEscape quotes the characters path.Match treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
