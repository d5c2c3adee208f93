package appconfig

import (
	"encoding/json"
	"strings"
)

// APIKey finds the key the app sends and where it came from: ANTHROPIC_API_KEY,
// which claude-flow lets override the config, else claude.apiKey of the app config at
// path. Both are "" when none is set or the config cannot be read (the URL check
// reports an unreadable config).
func APIKey(path string, getenv func(string) string) (key, source string) {
	if k := strings.TrimSpace(getenv("ANTHROPIC_API_KEY")); k != "" {
		return k, "ANTHROPIC_API_KEY"
	}
	if path == "" {
		return "", ""
	}
	content, _, err := ReadSource(path)
	if err != nil {
		return "", ""
	}
	doc, err := Parse(content)
	if err != nil {
		return "", ""
	}
	raw, ok := doc.Get("claude.apiKey")
	if !ok {
		return "", ""
	}
	_ = json.Unmarshal(raw, &key)
	if key = strings.TrimSpace(key); key == "" {
		return "", ""
	}
	return key, "claude.apiKey"
}
