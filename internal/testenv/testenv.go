// Package testenv gives tests access to the real components cfrollback drives (root, systemd,
// pm2, command-line tools) with one rule (Require): a test that needs a missing component is
// skipped on a developer's machine and fails in CI (CI set, and not to "false" or "0"), so CI
// can never pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// InCI reports whether the tests run in CI: CI is set to anything but a false value
// ("false", "0", "f", any case strconv.ParseBool reads as false). CI services set "true"
// (GitHub, GitLab) or "1" (some older ones); a CI that sets it to anything else still counts,
// since a skipped test there would hide a missing component.
func InCI() bool {
	v := os.Getenv("CI")
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err != nil || b
}

// Require is the one skip rule of the tests that need a real component (root, systemd,
// pm2, sqlite3, GNU tar ...): when ok is false the test is skipped, saying what is missing
// and how to get it; in CI (InCI) it fails instead, so CI can never pass by skipping. Use it
// (or RequireRoot, RequireTool) for every such skip, never a local os.Getenv("CI").
func Require(t testing.TB, ok bool, what, howToGet string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("%s is missing and CI=%s forbids skipping; %s", what, os.Getenv("CI"), howToGet)
		return
	}
	t.Skipf("skipping: %s is missing; %s (with CI set this test fails instead)", what, howToGet)
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
