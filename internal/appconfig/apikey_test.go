package appconfig

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAPIKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(`{"claude": {"apiKey": " sk-ant-X "}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if k, src := APIKey(path, getenv); k != "sk-ant-X" || src != "claude.apiKey" {
		t.Errorf("config: %q %q", k, src)
	}
	env["ANTHROPIC_API_KEY"] = "sk-ant-ENV"
	if k, src := APIKey(path, getenv); k != "sk-ant-ENV" || src != "ANTHROPIC_API_KEY" {
		t.Errorf("env: %q %q", k, src)
	}
	delete(env, "ANTHROPIC_API_KEY")
	for _, content := range []string{`{"claude": {"apiKey": ""}}`, `{"claude": {}}`, `not json`} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if k, src := APIKey(path, getenv); k != "" || src != "" {
			t.Errorf("%s: %q %q", content, k, src)
		}
	}
	if k, _ := APIKey(filepath.Join(dir, "missing.json"), getenv); k != "" {
		t.Errorf("missing config: %q", k)
	}
}
