package appconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/set")

func TestBrokenJSONCorpusNamesLineAndColumn(t *testing.T) {
	want := map[string][2]int{
		"trailing-comma-inner.json": {4, 3},
		"unclosed-object.json":      {3, 1},
		"unclosed-string.json":      {2, 26},
		"unquoted-key.json":         {2, 3},
		"missing-comma.json":        {3, 3},
		"single-quotes.json":        {2, 3},
		"comment.json":              {2, 10},
		"bad-literal.json":          {2, 11},
		"empty.json":                {1, 1},
		"array-top.json":            {1, 1},
		"two-objects.json":          {1, 10},
		"duplicate-key.json":        {3, 3},
		"leading-zero.json":         {2, 9},
		"nan.json":                  {2, 8},
	}
	files, _ := filepath.Glob("testdata/broken/*.json")
	if len(files) != len(want) {
		t.Fatalf("%d files in testdata/broken, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(b)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse: %v, want a *SyntaxError", err)
			}
			w := want[filepath.Base(f)]
			if se.Line != w[0] || se.Column != w[1] {
				t.Errorf("at %d:%d (%s), want %d:%d", se.Line, se.Column, se.Msg, w[0], w[1])
			}
			rep := Validate(f, b)
			if rep.OK || len(rep.Errors) != 1 || rep.Errors[0].Line != se.Line {
				t.Errorf("Validate: %+v", rep)
			}
			// Nothing is written from a broken file.
			dir := t.TempDir()
			target := filepath.Join(dir, "config.json")
			orig := []byte("{\n  \"claude\": {\"model\": \"m\"}\n}\n")
			if err := os.WriteFile(target, orig, 0o640); err != nil {
				t.Fatal(err)
			}
			ed := &Editor{Path: target, CheckpointDir: filepath.Join(dir, "cp")}
			if _, err := ed.Apply(b, "test", false); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Apply: %v, want ErrInvalid", err)
			}
			assertFile(t, target, orig)
			if _, err := os.Stat(filepath.Join(dir, "cp")); err == nil {
				t.Error("a checkpoint was written for a refused change")
			}
		})
	}
}

func TestOutOfRangeCorpusIsRejectedByKey(t *testing.T) {
	want := map[string][]string{
		"ranges.json": {"claude.temperature", "claude.topP", "claude.maxTokens", "claude.retryDelay", "claude.baseUrl",
			"claude.model", "mcp.port", "coordination.retryDelay", "webhook.url"},
		"types.json": {"claude.temperature", "claude.maxTokens", "claude.apiKey", "mcp.port", "mcp.enabled", "logging"},
	}
	for name, keys := range want {
		b, err := os.ReadFile(filepath.Join("testdata/invalid", name))
		if err != nil {
			t.Fatal(err)
		}
		rep := Validate(name, b)
		var got []string
		for _, p := range rep.Errors {
			if p.Line == 0 || p.Column == 0 {
				t.Errorf("%s: %s has no position", name, p)
			}
			got = append(got, p.Key)
		}
		sort.Strings(got)
		sort.Strings(keys)
		if strings.Join(got, ",") != strings.Join(keys, ",") {
			t.Errorf("%s: errors for %v, want %v", name, got, keys)
		}
		if strings.Contains(Report.String(rep), "12345678") {
			t.Errorf("%s: a secret value is in the report", name)
		}
	}
}

func (r Report) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

func TestBoundaryValuesPass(t *testing.T) {
	ok := `{"claude": {"temperature": 0, "topP": 1, "maxTokens": 100000, "retryDelay": 100, "baseUrl": "https://api.anthropic.com/v1"},
	"mcp": {"port": 65535}, "unknownSection": {"x": 1}}`
	rep := Validate("x", []byte(ok))
	if !rep.OK {
		t.Fatalf("%+v", rep.Errors)
	}
	if len(rep.Warnings) != 1 || rep.Warnings[0].Key != "unknownSection.x" {
		t.Errorf("warnings %+v, want one for unknownSection.x", rep.Warnings)
	}
}

func TestSetKeepsFormattingGolden(t *testing.T) {
	cases := []struct {
		name string
		ops  [][2]string
	}{
		{"nested", [][2]string{
			{"claude.baseUrl", `"https://api.anthropic.com/v1"`},
			{"claude.rateLimit", `30`},
			{"claude.retryDelay", `2000`},
			{"mcp.port", `3000`},
			{"list", `[4, 5]`},
			{"new.deep.key", `{"a": true}`},
		}},
		{"compact", [][2]string{{"claude.model", `"m2"`}, {"claude.topP", `0.9`}, {"mcp.host", `"::1"`}}},
		{"crlf", [][2]string{{"claude.model", `null`}, {"added", `"x"`}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join("testdata/set", c.name+".before.json"))
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range c.ops {
				doc, err := Parse(text)
				if err != nil {
					t.Fatalf("before %s: %v\n%s", op[0], err, text)
				}
				if text, err = doc.Set(op[0], json.RawMessage(op[1])); err != nil {
					t.Fatalf("set %s: %v", op[0], err)
				}
				doc, err = Parse(text)
				if err != nil {
					t.Fatalf("after %s: %v\n%s", op[0], err, text)
				}
				got, _ := doc.Get(op[0])
				if !jsonEqual(got, []byte(op[1])) {
					t.Errorf("get %s = %s, want %s", op[0], got, op[1])
				}
			}
			golden := filepath.Join("testdata/set", c.name+".after.json")
			if *update {
				if err := os.WriteFile(golden, text, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			assertFile(t, golden, text)
		})
	}
}

func TestSetThroughAScalarIsRefused(t *testing.T) {
	doc, err := Parse([]byte(`{"claude": "x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := doc.Set("claude.model", json.RawMessage(`"m"`)); !errors.Is(err, ErrNotObject) {
		t.Errorf("err = %v, want ErrNotObject", err)
	}
	if _, err := doc.Set("claude..model", json.RawMessage(`"m"`)); err == nil {
		t.Error("an empty key part was accepted")
	}
}

func TestTypedValue(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(`{"claude": {"model": "x", "rateLimit": 5}, "other": "s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ed := &Editor{Path: p}
	for _, c := range []struct{ key, in, want string }{
		{"claude.rateLimit", "30", `30`},
		{"claude.model", "2024", `"2024"`},        // known string key
		{"other", "123", `"123"`},                 // holds a string now
		{"fresh", "true", `true`},                 // JSON literal
		{"fresh", "null", `null`},                 //
		{"fresh", "hello world", `"hello world"`}, // not JSON: a string
		{"fresh", `{"a": [1]}`, `{"a": [1]}`},     // JSON object
		{"claude.baseUrl", "https://x/v1", `"https://x/v1"`},
	} {
		if got := ed.TypedValue(c.key, c.in, false); string(got) != c.want {
			t.Errorf("TypedValue(%s, %s) = %s, want %s", c.key, c.in, got, c.want)
		}
	}
}

func FuzzParseSet(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": 1}`, "{\n  \"a\": {\n    \"b\": [1, {\"c\": 2}]\n  }\n}", `{"a":{}}`} {
		f.Add(s, "a.b")
	}
	f.Fuzz(func(t *testing.T, text, key string) {
		doc, err := Parse([]byte(text))
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line < 1 || se.Column < 1 {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		if !utf8.ValidString(key) {
			return // JSON keys are text; Marshal would replace the bytes
		}
		out, err := doc.Set(key, json.RawMessage(`{"x": "y"}`))
		if err != nil {
			return
		}
		d2, err := Parse(out)
		if err != nil {
			t.Fatalf("Set made invalid JSON: %v\n%s", err, out)
		}
		got, ok := d2.Get(key)
		if !ok || !jsonEqual(got, []byte(`{"x": "y"}`)) {
			t.Fatalf("Get after Set = %s, %v\n%s", got, ok, out)
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n%s\nwant:\n%s", path, got, want)
	}
}

// Keys that pollute a Node.js app's prototypes are refused; ordinary ones are not.
func TestSplitKeyRefusesPrototypePollution(t *testing.T) {
	for _, k := range []string{"__proto__.x", "a.__proto__", "constructor.prototype.x", "claude.constructor.prototype"} {
		if _, err := SplitKey(k); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("SplitKey(%q) = %v, want a refusal", k, err)
		}
	}
	for _, k := range []string{"claude.baseUrl", "prototype.x", "constructor.x", "a.prototype"} {
		if _, err := SplitKey(k); err != nil {
			t.Errorf("SplitKey(%q) = %v", k, err)
		}
	}
}

// Nesting is bounded: MaxDepth levels parse, one more is a line:column error (11,000 levels
// used to validate "OK" while every read of the file failed silently).
func TestParseBoundsNesting(t *testing.T) {
	doc := func(n int) []byte {
		return []byte(`{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`)
	}
	if _, err := Parse(doc(MaxDepth)); err != nil {
		t.Fatalf("%d levels: %v", MaxDepth, err)
	}
	for _, n := range []int{MaxDepth + 1, 11000} {
		if _, err := Parse(doc(n)); err == nil || !strings.Contains(err.Error(), "nested deeper than") {
			t.Fatalf("%d levels: %v", n, err)
		}
	}
}

// A config file that carries a prototype-polluting key is refused by Validate (so by
// validate, restore --file and import), not only by config set: the app is Node.js.
func TestValidateRefusesPrototypePollutionInAFile(t *testing.T) {
	for _, text := range []string{
		`{"__proto__": {"isAdmin": true}}`,
		`{"claude": {"__proto__": {"model": "x"}}}`,
		`{"constructor": {"prototype": {"isAdmin": true}}}`,
	} {
		rep := Validate("config.json", []byte(text))
		if rep.OK || len(rep.Errors) == 0 || !strings.Contains(rep.Errors[0].Msg, "prototype pollution") {
			t.Errorf("%s: %+v, want an error naming prototype pollution", text, rep)
		}
		doc, err := Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if err := doc.CheckPrototype(); err == nil || !strings.Contains(err.Error(), "prototype pollution") {
			t.Errorf("%s: CheckPrototype = %v", text, err)
		}
	}
	if rep := Validate("config.json", []byte(`{"constructor": {"name": "x"}, "prototype": 1}`)); !rep.OK {
		t.Errorf("keys named constructor or prototype alone are not pollution: %+v", rep)
	}
}
