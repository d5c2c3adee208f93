package appconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// KillAtEnv is the test hook shared with the runbook: set to
// "appconfig:before-rename", WriteFile SIGKILLs its own process after the
// temp file is durable and before the rename, which is the worst moment
// for a crash.
const KillAtEnv = "CFROLLBACK_TEST_KILL_AT"

// tempPrefix names the temp files WriteFile leaves behind if it is killed:
// ".<name>.cfrollback-tmp-*", next to the file.
func tempPrefix(path string) string {
	return "." + filepath.Base(path) + ".cfrollback-tmp-"
}

// FileMeta is what WriteFile keeps of the file it replaces.
type FileMeta struct {
	Mode     fs.FileMode `json:"mode"`
	UID      int         `json:"uid"`
	GID      int         `json:"gid"`
	Exists   bool        `json:"exists"`
	RealPath string      `json:"-"`
}

// StatFile returns the mode and owner of path (following root-owned symlinks: the file
// is written where the link points; a link another user owns is refused).
func StatFile(path string) (FileMeta, error) {
	// The install dir may be a deploy user's: root follows only root's own links on the
	// way, never one they could repoint (config.json -> /etc/shadow).
	if err := fsutil.CheckLinks(path); err != nil {
		return FileMeta{}, err
	}
	realPath, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return FileMeta{Mode: 0o600, UID: -1, GID: -1, RealPath: path}, nil
	}
	if err != nil {
		return FileMeta{}, err
	}
	fi, err := os.Stat(realPath)
	if err != nil {
		return FileMeta{}, err
	}
	if !fi.Mode().IsRegular() {
		return FileMeta{}, fmt.Errorf("%s is not a regular file", path)
	}
	m := FileMeta{Mode: fi.Mode().Perm(), UID: -1, GID: -1, Exists: true, RealPath: realPath}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		m.UID, m.GID = int(st.Uid), int(st.Gid)
	}
	return m, nil
}

// WriteFile replaces path with data so that a crash at any instant leaves
// either the old file or the new one, never a mix: a temp file in the same
// directory is written, given the old file's mode and owner, fsynced, and
// renamed over path; then the directory is fsynced. Temp files an earlier,
// killed write left behind are removed first (callers hold the lock).
func WriteFile(path string, data []byte) error {
	meta, err := StatFile(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	target := meta.RealPath
	RemoveStaleTemps(target)
	o := fsutil.WriteOptions{
		TempPattern: tempPrefix(target) + "*",
		Chown:       meta.Exists && (meta.UID != os.Getuid() || meta.GID != os.Getgid()),
		UID:         meta.UID,
		GID:         meta.GID,
		BeforeRename: func(string) error {
			if os.Getenv(KillAtEnv) == "appconfig:before-rename" {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
			return nil
		},
	}
	err = fsutil.Write(target, data, meta.Mode, o) // its errors name target
	if err != nil && target != path {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return err
}

// RemoveStaleTemps deletes temp files a killed WriteFile of path left.
func RemoveStaleTemps(path string) []string {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), tempPrefix(path)+"*"))
	var removed []string
	for _, m := range matches {
		if strings.HasPrefix(filepath.Base(m), tempPrefix(path)) && os.Remove(m) == nil {
			removed = append(removed, m)
		}
	}
	return removed
}
