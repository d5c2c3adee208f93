package fsutil

import (
	"path/filepath"
	"strings"
)

// Inside reports whether path is dir or inside it, after resolving
// symlinks of whatever part of each exists.
func Inside(path, dir string) (bool, error) {
	p, err := resolveExisting(path)
	if err != nil {
		return false, err
	}
	d, err := resolveExisting(dir)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(d, p)
	if err != nil {
		return false, nil
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, "../")), nil
}

// resolveExisting makes path absolute and resolves the symlinks of its
// longest existing prefix.
func resolveExisting(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	for cur := abs; ; cur = filepath.Dir(cur) {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest), nil
		}
		if cur == filepath.Dir(cur) {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
	}
}
