package appconfig

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIsSecretKey(t *testing.T) {
	for key, want := range map[string]bool{
		"claude.apiKey": true, "claude.API_KEY": true, "github.token": true, "auth.accessToken": true,
		"db.password": true, "oauth.clientSecret": true, "secrets.anything": true,
		"claude.maxTokens": false, "claude.model": false, "mcp.port": false, "tokenizer.name": false,
	} {
		if got := IsSecretKey(key); got != want {
			t.Errorf("IsSecretKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:hunter2@api.example.com/v1?api_key=SEKRIT&x=1": "https://REDACTED@api.example.com/v1?api_key=REDACTED&x=1",
		"https://api.anthropic.com/v1":                               "https://api.anthropic.com/v1",
		"error connecting to http://a:b@h/x: refused":                "error connecting to http://REDACTED@h/x: refused",
	} {
		got := RedactString(in)
		if got != want {
			t.Errorf("RedactString(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNoSecretInAnyOutput drives every operation of the package over a
// config holding secrets and looks for them in everything that is shown.
func TestNoSecretInAnyOutput(t *testing.T) {
	secrets := []string{"sk-ant-TOPSECRET", "hunter2", "ghp_TOKENVALUE", "SIGVALUE"}
	text := `{
  "claude": {"apiKey": "sk-ant-TOPSECRET", "baseUrl": "https://bob:hunter2@api.example.com/v1?sig=SIGVALUE", "maxTokens": 5},
  "github": {"token": "ghp_TOKENVALUE"},
  "db": {"password": 7}
}`
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ed := &Editor{Path: p, CheckpointDir: filepath.Join(dir, "cp"), Now: func() time.Time { return time.Unix(1e9, 0) }}
	var shown []any
	res, err := ed.Set("claude.apiKey", json.RawMessage(`"sk-ant-NEWVALUE"`))
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, "sk-ant-NEWVALUE")
	shown = append(shown, res)
	res, err = ed.Set("claude.maxTokens", json.RawMessage(`0`))
	shown = append(shown, res, err.Error())
	shown = append(shown, Validate(p, []byte(text)), Diff([]byte(text), []byte(`{}`)), Diff([]byte(`{}`), []byte(text)))
	list, err := ListCheckpoints(ed.CheckpointDir)
	if err != nil || len(list) != 1 {
		t.Fatalf("checkpoints %v, %v", list, err)
	}
	shown = append(shown, list)
	v, _ := decodeValue([]byte(text))
	shown = append(shown, RedactValue("", v))
	b, _ := json.Marshal(shown)
	for _, s := range secrets {
		if strings.Contains(string(b), s) {
			t.Errorf("secret %q is shown: %s", s, b)
		}
	}
	// The checkpoint itself keeps the secret (it must, to restore), 0600.
	cp, _ := os.ReadFile(list[0].Path)
	if !strings.Contains(string(cp), "sk-ant-TOPSECRET") {
		t.Error("the checkpoint lost the secret it must restore")
	}
	if fi, _ := os.Stat(list[0].Path); fi.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestApplyUndoneByItsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "claude-flow.config.json")
	orig := []byte("{\n  \"claude\": {\"model\": \"a\"}\n}\n")
	if err := os.WriteFile(p, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	ed := &Editor{Path: p, CheckpointDir: filepath.Join(dir, "cp")}
	for _, change := range []func() (Result, error){
		func() (Result, error) { return ed.Set("claude.model", json.RawMessage(`"b"`)) },
		func() (Result, error) { return ed.Apply(DefaultConfig, "reset", false) },
	} {
		res, err := change()
		if err != nil || !res.Changed || res.Checkpoint == "" {
			t.Fatalf("%+v %v", res, err)
		}
		content, cp, err := ReadSource(res.Checkpoint)
		if err != nil || cp == nil {
			t.Fatal(err)
		}
		if _, err := ed.Apply(content, "undo", false); err != nil {
			t.Fatal(err)
		}
		assertFile(t, p, orig)
	}
}
