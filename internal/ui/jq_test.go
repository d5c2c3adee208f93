package ui

import (
	"bytes"
	"strings"
	"testing"
)

func TestJQWriter(t *testing.T) {
	type res struct {
		Name  string  `json:"name"`
		Count int64   `json:"count"`
		Ratio float64 `json:"ratio"`
		Cmd   string  `json:"cmd"`
	}
	v := []res{{"a", 3, 0.5, "x && y"}, {"b", 1 << 40, 2, ""}}
	cases := map[string]string{
		`.[0].count + 1`:         "4\n",
		`.[1].count`:             "1099511627776\n",
		`.[0].ratio * 2`:         "1\n",
		`.[].name`:               "a\nb\n",
		`.[0].cmd`:               "x && y\n",
		`[.[].name]`:             "[\n  \"a\",\n  \"b\"\n]\n",
		`.[] | select(.count>3)`: "{\n  \"cmd\": \"\",\n  \"count\": 1099511627776,\n  \"name\": \"b\",\n  \"ratio\": 2\n}\n",
		`empty`:                  "",
	}
	for expr, want := range cases {
		var buf bytes.Buffer
		jw, err := NewJQWriter(&buf, expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if err := JSON(jw, v); err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got := buf.String(); got != want {
			t.Errorf("%s: got %q, want %q", expr, got, want)
		}
	}
	var buf bytes.Buffer
	jw, _ := NewJQWriter(&buf, `.name`)
	if err := JSON(jw, v); err == nil || jw.Err() == nil || !strings.Contains(err.Error(), "--jq") {
		t.Errorf("a filter that does not fit: err %v, Err %v", err, jw.Err())
	}
	if _, err := NewJQWriter(&buf, `.[`); err == nil {
		t.Error("an expression that does not parse was accepted")
	}
}
