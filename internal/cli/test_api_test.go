package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// test api-connection end to end against a loopback server that accepts only
// sk-ant-GOOD: a rejected key fails (exit 1) and names where it came from; with no key
// a 401 is "reachable"; the key never shows.
func TestAPIConnectionKey(t *testing.T) {
	var sawKey string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawKey = r.Header.Get("x-api-key")
		if sawKey != "sk-ant-GOOD" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	install := t.TempDir()
	t.Setenv("CFROLLBACK_INSTALL_DIR", install)
	t.Setenv("CFROLLBACK_CONFIG", filepath.Join(install, "no-settings.yaml"))
	os.WriteFile(filepath.Join(install, "no-settings.yaml"), nil, 0o600)
	cases := []struct {
		name, configKey, envKey string
		args                    []string
		code                    int
		sent                    string
		want                    []string
	}{
		{"config key rejected", "sk-ant-BADSECRET", "", nil, ExitFailed, "sk-ant-BADSECRET",
			[]string{"FAIL  http", "the API rejected the key (HTTP 401): check claude.apiKey", "rejected the API key from claude.apiKey"}},
		{"env key overrides config", "sk-ant-GOOD", "sk-ant-ENVSECRET", nil, ExitFailed, "sk-ant-ENVSECRET",
			[]string{"the API rejected the key (HTTP 401): check ANTHROPIC_API_KEY"}},
		{"no key", "", "", nil, ExitOK, "",
			[]string{"PASS  http", "HTTP 401 Unauthorized: the API is reachable (no API key is configured", "is reachable"}},
		{"--no-key", "sk-ant-BADSECRET", "", []string{"--no-key"}, ExitOK, "",
			[]string{"PASS  http", "is reachable"}},
		{"key accepted", "sk-ant-GOOD", "", nil, ExitOK, "sk-ant-GOOD",
			[]string{"PASS  http", "accepted the key from claude.apiKey", "reachable and accepted the API key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("ANTHROPIC_API_KEY", c.envKey)
			cfg := `{"claude": {"baseUrl": "` + srv.URL + `/v1", "apiKey": "` + c.configKey + `"}}`
			if err := os.WriteFile(filepath.Join(install, "config.json"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			sawKey = "unset"
			io, out, errOut := testIO()
			code := Run(context.Background(), io, append([]string{"test", "api-connection"}, c.args...))
			if code != c.code || sawKey != c.sent {
				t.Errorf("exit %d (want %d), server saw key %q (want %q)\n%s%s", code, c.code, sawKey, c.sent, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("missing %q in\n%s", w, out)
				}
			}
			for _, secret := range []string{"BADSECRET", "ENVSECRET", "sk-ant-GOOD"} {
				if strings.Contains(out.String()+errOut.String(), secret) {
					t.Errorf("%s printed:\n%s%s", secret, out, errOut)
				}
			}
		})
	}
	// --json says what became of the key.
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-ENVSECRET")
	io, out, _ := testIO()
	if code := Run(context.Background(), io, []string{"--json", "test", "api-connection"}); code != ExitFailed ||
		!strings.Contains(out.String(), `"key_check": "rejected"`) || strings.Contains(out.String(), "ENVSECRET") {
		t.Errorf("exit %d\n%s", code, out)
	}
}
