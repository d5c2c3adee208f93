package appconfig

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestAppVersionLayouts(t *testing.T) {
	write := func(t *testing.T, path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"npm prefix install: the app's own package.json wins", map[string]string{
			"package.json":                          `{"name":"host","dependencies":{"claude-flow":"^2.0.0"}}`,
			"node_modules/claude-flow/package.json": `{"name":"claude-flow","version":"2.0.0-alpha.113"}`,
		}, "2.0.0-alpha.113"},
		{"source tree / drill app", map[string]string{"package.json": `{"name":"claude-flow","version":"2.0.0-phase2"}`}, "2.0.0-phase2"},
		{"exact pin, node_modules missing", map[string]string{"package.json": `{"dependencies":{"claude-flow":"2.0.0"}}`}, "2.0.0"},
		{"range pin says nothing", map[string]string{"package.json": `{"dependencies":{"claude-flow":"^2.0.0"}}`}, ""},
		{"tag pin says nothing", map[string]string{"package.json": `{"dependencies":{"claude-flow":"latest"}}`}, ""},
		{"broken JSON", map[string]string{"package.json": `{"version":`}, ""},
		{"nothing", map[string]string{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, content := range c.files {
				write(t, filepath.Join(dir, p), content)
			}
			if got := AppVersion(dir); got != c.want {
				t.Fatalf("AppVersion = %q, want %q", got, c.want)
			}
		})
	}
}

// A FIFO planted as package.json is not waited on.
func TestAppVersionFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "package.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := AppVersion(dir); got != "" {
		t.Fatalf("AppVersion of a FIFO = %q", got)
	}
}

// A checkpoint whose fields have the wrong types is named as damaged, in words, not with
// a Go decoder's message.
func TestReadSourceNamesADamagedCheckpoint(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config-checkpoint-x.json")
	if err := os.WriteFile(p, []byte(`{"format":"`+CheckpointFormat+`","sha256":42,"content":"{}"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := ReadSource(p)
	if err == nil || !strings.Contains(err.Error(), "damaged checkpoint") || !strings.Contains(err.Error(), `field "sha256" holds a JSON number, not a string`) ||
		strings.Contains(err.Error(), "Go struct") {
		t.Fatalf("err = %v", err)
	}
}
