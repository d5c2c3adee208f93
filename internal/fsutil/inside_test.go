package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInside(t *testing.T) {
	root := t.TempDir()
	install := filepath.Join(root, "app")
	other := filepath.Join(root, "app-other")
	for _, d := range []string{install, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// a link into the install dir from outside, and one out of it from inside
	if err := os.Symlink(install, filepath.Join(root, "into")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(install, "out")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want bool
	}{
		{install, true},
		{filepath.Join(install, "not", "yet"), true}, // resolved as far as it exists
		{filepath.Join(root, "into", "x"), true},     // through a link into it
		{filepath.Join(install, "out", "x"), false},  // through a link out of it
		{other, false}, // a sibling sharing its prefix
		{filepath.Join(install, "..", "app-other"), false},
		{root, false},
	} {
		got, err := Inside(c.path, install)
		if err != nil || got != c.want {
			t.Errorf("Inside(%s, %s) = %v, %v; want %v", c.path, install, got, err, c.want)
		}
	}
}
