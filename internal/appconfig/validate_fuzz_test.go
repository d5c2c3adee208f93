package appconfig

import (
	"encoding/json"
	"testing"
)

// FuzzValidate: any bytes as an app config give a report, never a panic; a
// report without errors means the text is JSON that encoding/json accepts,
// and every error of a syntax problem carries a position.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{`{}`, `{"claude": {"temperature": 2}}`, `{"mcp": {"port": 0}}`, `{"claude": {"baseUrl": "::"}}`,
		"{\n  \"a\": [1,]\n}", `{"apiKey": "sk-secret"}`, "\xff", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep := Validate("fuzz.json", data)
		if len(rep.Errors) == 0 && !json.Valid(data) {
			t.Fatalf("no errors for text encoding/json rejects: %q", data)
		}
	})
}
