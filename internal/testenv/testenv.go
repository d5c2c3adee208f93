// Package testenv gives tests access to the real components cfrollback drives (root, systemd,
// pm2, command-line tools) with one rule: a test that needs a missing component is skipped on a
// developer's machine and fails when CI=true, so CI can never pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// InCI reports whether CI=true (any value strconv.ParseBool accepts as true).
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Require skips the test when ok is false, saying what is missing and how to get it; with
// CI=true it fails the test instead.
func Require(t testing.TB, ok bool, what, howToGet string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("%s is missing and CI=true forbids skipping; %s", what, howToGet)
		return
	}
	t.Skipf("skipping: %s is missing; %s (with CI=true this test fails instead)", what, howToGet)
}

// RequireRoot requires the test to run as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "root", "run the tests as root, e.g. 'sudo -E go test ./...'")
}

// RequireTool requires name in PATH and returns its path.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	Require(t, err == nil, name+" in PATH", "install it; scripts/setup-deps.sh installs everything the tests use")
	return path
}

// RepoRoot returns the module root: the nearest directory above the test's working directory
// that contains go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("repo root: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("repo root: no go.mod in any directory above the test's working directory")
		}
		dir = parent
	}
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0
}
