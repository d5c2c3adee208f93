package ui

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestWarnf(t *testing.T) {
	var buf bytes.Buffer
	io := &IO{ErrOut: &buf}
	io.Warnf("backup %s is %d days old", "a.tar.gz", 3)
	if got, want := buf.String(), "warning: backup a.tar.gz is 3 days old\n"; got != want {
		t.Errorf("text: got %q, want %q", got, want)
	}
	buf.Reset()
	io.JSON = true
	io.Warnf("a \"quoted\" %s", "path\n")
	var v map[string]string
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil || v["warning"] != "a \"quoted\" path\n" {
		t.Errorf("json: %q: %v %v", buf.String(), v, err)
	}
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Errorf("json: not one line: %q", buf.String())
	}
}
