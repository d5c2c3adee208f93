package appconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// refusedKey is SplitKey's rule restated independently: an empty part, __proto__, or
// prototype after constructor.
func refusedKey(key string) bool {
	parts := strings.Split(key, ".")
	for i, p := range parts {
		if p == "" || p == "__proto__" || (p == "prototype" && i > 0 && parts[i-1] == "constructor") {
			return true
		}
	}
	return false
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	v, err := decodeValue(b)
	if err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// FuzzSetKey is `config set KEY VALUE`'s core (SplitKey, ParseValue, Parse, Document.Set,
// as Editor.Set calls them): for any document, key and value it never panics; a refused key
// (empty part, prototype pollution) is an error; a success gives text that parses as an
// app config, in which a get of the key returns the value and every other top-level key is
// as it was.
func FuzzSetKey(f *testing.F) {
	doc := "{\n  \"claude\": {\n    \"baseUrl\": \"https://api.anthropic.com\",\n    \"rateLimit\": 30\n  },\n  \"mcp\": {\"port\": 3000},\n  \"list\": [1, 2]\n}\n"
	for _, s := range []struct {
		doc, key, value string
		asString        bool
	}{
		{doc, "claude.rateLimit", "60", false},
		{doc, "claude.baseUrl", "http://localhost:8080", false},
		{doc, "claude.model", "claude-3-sonnet", true},
		{doc, "new.deep.key", `{"a":[1,{"b":null}]}`, false},
		{doc, "mcp.port.x", "1", false},
		{doc, "list.0", "1", false},
		{doc, "__proto__.polluted", "true", false},
		{doc, "constructor.prototype.x", "1", false},
		{doc, "a..b", "1", false},
		{doc, "", "1", false},
		{doc, "claude", `{"a":1,"a":2}`, false},
		{doc, "claude", strings.Repeat("[", 99) + strings.Repeat("]", 99), false},
		{`{}`, "a", "1", false},
		{`{"a":1}`, "b.c", `"x"`, false},
		{"{\r\n\t\"a\": {\r\n\t\t\"b\": 1\r\n\t}\r\n}", "a.c", "[1,2]", false},
		{`{"a": {}}`, "a.b", `{"c": {}}`, false},
		{`{"x": 1, "y": {"z": 2}}`, "y.z", "\xff", true},
		{`{"x": 1}`, "\xff", "1", false},
	} {
		f.Add([]byte(s.doc), s.key, s.value, s.asString)
	}
	f.Fuzz(func(t *testing.T, docText []byte, key, value string, asString bool) {
		d, err := Parse(docText)
		if err != nil {
			return // config set refuses a file that does not parse before it gets here
		}
		raw := ParseValue(value, asString)
		if !json.Valid(raw) {
			t.Fatalf("ParseValue(%q, %v) = %q: not JSON", value, asString, raw)
		}
		_, kerr := SplitKey(key)
		out, err := d.Set(key, raw)
		if refusedKey(key) {
			if kerr == nil || err == nil {
				t.Fatalf("key %q accepted (SplitKey: %v, Set: %v)", key, kerr, err)
			}
			return
		}
		if kerr != nil {
			if err == nil {
				t.Fatalf("SplitKey refused %q (%v) but Set accepted it", key, kerr)
			}
			return
		}
		if err != nil {
			return // e.g. a key through a value that is not an object (ErrNotObject)
		}
		d2, err := Parse(out)
		if err != nil {
			t.Fatalf("the result does not parse: %v\n%s", err, out)
		}
		if !json.Valid(out) {
			t.Fatalf("the result is not JSON:\n%s", out)
		}
		got, ok := d2.Get(key)
		if !ok {
			t.Fatalf("get %q after set: not found in\n%s", key, out)
		}
		if want, have := decodeJSON(t, raw), decodeJSON(t, got); !reflect.DeepEqual(want, have) {
			t.Fatalf("get %q = %s, set %s", key, got, raw)
		}
		before, after := d.Value(), d2.Value()
		top := strings.SplitN(key, ".", 2)[0]
		for k, v := range before {
			if k == top {
				continue
			}
			if w, ok := after[k]; !ok || !reflect.DeepEqual(v, w) {
				t.Fatalf("top-level key %q changed: %v -> %v\n%s", k, v, w, out)
			}
		}
		for k := range after {
			if _, ok := before[k]; !ok && k != top {
				t.Fatalf("top-level key %q appeared\n%s", k, out)
			}
		}
		// Set on the unchanged text again gives the same (no hidden state).
		if again, err := d.Set(key, raw); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("a second Set differs: %v", err)
		}
	})
}

// TestSetKeyRefusesWhatCannotBeRead: a value or key Set cannot write so that it reads back
// is an error, not a file the next read refuses.
func TestSetKeyRefusesWhatCannotBeRead(t *testing.T) {
	d, err := Parse([]byte("{\n  \"claude\": {\"rateLimit\": 30}\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, value string }{
		{"claude.x", `{"a":1,"a":2}`}, // duplicate keys: every later Parse refuses the file
		{"claude.x", strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)}, // deeper than MaxDepth once placed
		{"claude.\xff", "1"}, // not UTF-8: written as U+FFFD, so a get of the key finds nothing
	} {
		if out, err := d.Set(tc.key, json.RawMessage(tc.value)); err == nil {
			t.Errorf("Set(%q, %.20q) accepted:\n%s", tc.key, tc.value, out)
		}
	}
	if _, err := SplitKey("a.\xffb"); err == nil {
		t.Error("SplitKey accepted a key that is not UTF-8")
	}
	if _, err := d.Set("claude.rateLimit", json.RawMessage("60")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Set("claude.x", json.RawMessage("1")); errors.Is(err, ErrNotObject) || err != nil {
		t.Fatal(err)
	}
}
