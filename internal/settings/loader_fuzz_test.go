package settings

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzSettingsFile: any bytes as a settings file give either a Config that
// passes Validate, or an error; never a panic.
func FuzzSettingsFile(f *testing.F) {
	for _, seed := range []string{
		"", "{}\n", "install_dir: /srv/app\n", "service:\n  stop_timeout: soon\n",
		"restore:\n  preserve: [../x]\n", "backup:\n  max_size: 2GiB\n  keep: 0\n",
		"databases:\n  - name: m\n    path: m.db\n", "notify:\n  webhooks: [{name: a, url: 'http://x'}]\n",
		"service: [unclosed\n", "\x00\xff", "health:\n  consecutive: -1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s := &Loader{File: p}
		cfg, err := s.Load(func(string) {})
		if err != nil {
			return
		}
		if verr := cfg.Validate(); verr != nil {
			t.Fatalf("Load accepted a config that Validate rejects: %v", verr)
		}
	})
}
