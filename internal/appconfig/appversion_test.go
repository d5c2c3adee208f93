package appconfig

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A package.json that is a FIFO, a device (a symlink to /dev/zero), a directory or not
// JSON is named as the problem, never read as "no version" in silence, and never blocks:
// each read must end within the bound (opening a FIFO for reading without O_NONBLOCK waits
// for a writer for ever; /dev/zero never ends).
func TestAppVersionCheckedNamesAnUnreadablePackageJSON(t *testing.T) {
	root := "package.json"
	app := filepath.Join("node_modules", "claude-flow", "package.json")
	for _, tc := range []struct {
		name        string
		make        func(t *testing.T, dir string)
		wantVersion string
		wantProblem string
	}{
		{"FIFO", func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, root)) }, "", "package.json: not a regular file (a FIFO): the app version is not read from it"},
		{"device", func(t *testing.T, dir string) { symlink(t, "/dev/zero", filepath.Join(dir, root)) }, "", "not a regular file (a character device)"},
		{"directory", func(t *testing.T, dir string) { mkdir(t, filepath.Join(dir, root)) }, "", "not a regular file (a directory)"},
		{"not JSON", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, root), `{"version":`) }, "", "package.json is not valid JSON"},
		{"the app's own is a FIFO: the install's version, and the problem", func(t *testing.T, dir string) {
			mkfifo(t, filepath.Join(dir, app))
			writeFile(t, filepath.Join(dir, root), `{"version": "2.0.0"}`)
		}, "2.0.0", "claude-flow/package.json: not a regular file (a FIFO)"},
		{"none: no problem", func(*testing.T, string) {}, "", ""},
		{"a regular one: no problem", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, root), `{"version": "1.2.3"}`) }, "1.2.3", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.make(t, dir)
			type answer struct{ version, problem string }
			done := make(chan answer, 1)
			go func() {
				v, p := AppVersionChecked(dir)
				done <- answer{v, p}
			}()
			var got answer
			select {
			case got = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("AppVersionChecked blocked on the package.json")
			}
			if got.version != tc.wantVersion {
				t.Errorf("version %q, want %q", got.version, tc.wantVersion)
			}
			if tc.wantProblem == "" && got.problem != "" || !strings.Contains(got.problem, tc.wantProblem) {
				t.Errorf("problem %q, want it to say %q", got.problem, tc.wantProblem)
			}
			if AppVersion(dir) != tc.wantVersion {
				t.Errorf("AppVersion disagrees with AppVersionChecked")
			}
		})
	}
}

func mkfifo(t *testing.T, p string) {
	t.Helper()
	mkdir(t, filepath.Dir(p))
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	mkdir(t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
