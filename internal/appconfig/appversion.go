package appconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// AppVersion is the claude-flow version installed in installDir, or "" (AppVersionChecked
// without its problem).
func AppVersion(installDir string) string {
	v, _ := AppVersionChecked(installDir)
	return v
}

// AppVersionChecked is the claude-flow version installed in installDir, or "". A host
// install made with `npm install --prefix <install> claude-flow@V` (or `npm install` in the
// install dir) has the app in node_modules/claude-flow and a package.json of its own without
// a version, so the app's own package.json is read first; then <install>/package.json's
// "version" (an install that is the app's source tree, or the drill app); then an exact
// version pinned in its "dependencies".
//
// problem is "" unless a package.json that is there could not be read: a FIFO, a device, a
// socket or a directory under that name (refused without blocking: fsutil.ReadFile opens
// O_NONBLOCK and checks the descriptor, so a FIFO never hangs the reader), one that cannot
// be opened, is too large or is not JSON. The version may still come from the other file;
// a caller says the problem as a warning or puts it in its error.
func AppVersionChecked(installDir string) (version, problem string) {
	var problems []error
	read := func(path string) (packageJSON, bool) {
		p, err := readPackageJSON(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			problems = append(problems, err)
		}
		return p, err == nil
	}
	defer func() {
		if len(problems) > 0 {
			problem = errors.Join(problems...).Error()
		}
	}()
	if p, ok := read(filepath.Join(installDir, "node_modules", "claude-flow", "package.json")); ok && p.Version != "" {
		return p.Version, ""
	}
	p, ok := read(filepath.Join(installDir, "package.json"))
	if !ok {
		return "", ""
	}
	if p.Version != "" {
		return p.Version, ""
	}
	if v := p.Dependencies["claude-flow"]; exactVersion(v) {
		return v, ""
	}
	return "", ""
}

type packageJSON struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Dependencies map[string]string `json:"dependencies"`
}

func readPackageJSON(path string) (packageJSON, error) {
	var p packageJSON
	b, err := fsutil.ReadFile(path, fsutil.MaxSmallFile)
	if err != nil {
		if errors.Is(err, fsutil.ErrNotRegular) {
			return p, fmt.Errorf("%w: the app version is not read from it", err)
		}
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return packageJSON{}, fmt.Errorf("%s is not valid JSON (%w): the app version is not read from it", path, err)
	}
	return p, nil
}
