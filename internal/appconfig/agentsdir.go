package appconfig

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	// The SQLite driver, for reading the app's hive.db.
	_ "github.com/mattn/go-sqlite3"

	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/install"
)

//go:embed templates
var templatesFS embed.FS

// Templates lists the built-in agent sets of `agents reset --template`.
func Templates() []string {
	ents, _ := templatesFS.ReadDir("templates")
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// Template returns the files of a built-in agent set.
func Template(name string) ([]BundleFile, error) {
	root := path.Join("templates", name)
	if name == "" || strings.ContainsAny(name, "/\\.") {
		return nil, fmt.Errorf("no agent template %q; built in: %s", name, strings.Join(Templates(), ", "))
	}
	var files []BundleFile
	err := fs.WalkDir(templatesFS, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		data, err := templatesFS.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, BundleFile{Path: strings.TrimPrefix(p, root+"/"), Mode: "0644", SHA256: SHA256Hex(data),
			Size: len(data), Content: string(data)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("no agent template %q; built in: %s", name, strings.Join(Templates(), ", "))
	}
	return files, nil
}

// stagingPrefix names the sibling dirs ReplaceDir builds the new set in.
func stagingPrefix(dir string) string { return "." + filepath.Base(dir) + ".cfrollback-" }

// ReplaceDir makes dir hold exactly files, in one atomic step: the set is
// written (and fsynced) into a sibling directory, which is then exchanged
// with dir by renameat2(RENAME_EXCHANGE); the old set, now at the sibling
// path, is removed. At every instant dir is the complete old set or the
// complete new one. Mode and owner of dir are kept; files get dir's owner.
// Leftovers of an earlier, killed replace are removed first (callers hold
// the lock).
func ReplaceDir(dir string, files []BundleFile, now time.Time) error {
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	// as for the app config: no link another user owns is followed on the way
	if err := fsutil.CheckLinks(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(parent, stagingPrefix(dir)+"*"))
	for _, l := range leftovers {
		_ = os.RemoveAll(l)
	}
	mode, uid, gid := fs.FileMode(0o755), -1, -1
	fi, err := os.Lstat(dir)
	exists := err == nil
	switch {
	case exists && !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case exists:
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid()) {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	stamp := now.Format(TimestampLayout)
	staging := filepath.Join(parent, stagingPrefix(dir)+"new-"+stamp)
	if err := os.Mkdir(staging, 0o700); err != nil {
		return fmt.Errorf("create staging dir: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(staging)
		}
	}()
	dirs := map[string]bool{staging: true}
	for _, f := range files {
		data, err := f.Data()
		if err != nil {
			return err
		}
		m, err := parseMode(f.Mode)
		if err != nil {
			return err
		}
		target := filepath.Join(staging, filepath.FromSlash(f.Path))
		for d := filepath.Dir(target); !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := writeSynced(target, data, m, uid, gid); err != nil {
			return err
		}
	}
	for d := range dirs {
		if uid >= 0 {
			if err := os.Lchown(d, uid, gid); err != nil {
				return fmt.Errorf("keep owner of %s: %w", dir, err)
			}
		}
		if err := fsutil.SyncDir(d); err != nil {
			return err
		}
	}
	if err := os.Chmod(staging, mode); err != nil {
		return err
	}
	if !exists {
		if err := install.Rename(staging, dir); err != nil {
			return err
		}
		ok = true
		return nil
	}
	aside := filepath.Join(parent, stagingPrefix(dir)+"old-"+stamp)
	fellBack, err := install.Exchange(dir, staging, aside)
	if err != nil {
		if fellBack && !install.Exists(dir) {
			// The fallback moved the old set aside and then failed: put it back.
			_ = install.Rename(aside, dir)
		}
		return fmt.Errorf("swap in the new agent set: %w", err)
	}
	ok = true
	old := staging
	if fellBack {
		old = aside
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("the new set is in place; removing the old one at %s: %w", old, err)
	}
	return nil
}

func writeSynced(p string, data []byte, mode fs.FileMode, uid, gid int) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && uid >= 0 {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// HiveCounts counts the app's agents by status from table agents of its runtime database,
// opened read-only (the live app may be writing). It returns as soon as ctx ends: SQLite's
// busy handler sleeps through a cancel, and a hive.db the app holds locked would keep an
// interrupted command waiting for the whole busy timeout (the abandoned read ends with the
// process).
func HiveCounts(ctx context.Context, dbPath string) (map[string]int, error) {
	type result struct {
		counts map[string]int
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := hiveCounts(ctx, dbPath)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.counts, r.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func hiveCounts(ctx context.Context, dbPath string) (map[string]int, error) {
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "file", Path: abs, RawQuery: url.Values{"mode": {"ro"}, "_busy_timeout": {"5000"}}.Encode()}
	db, err := sql.Open("sqlite3", u.String())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT COALESCE(CAST(status AS TEXT), 'unknown'), count(*) FROM agents GROUP BY 1 ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("read agents from %s: %w", dbPath, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read agents from %s: %w", dbPath, err)
	}
	return out, nil
}
