package ui

import (
	"bytes"
	"strings"
	"testing"
)

func TestTableOneLinePerRow(t *testing.T) {
	tb := NewTable()
	tb.Row("FAIL", "service active", "12ms", "status claude-flow.service: exit status 1\nFailed to connect to bus: Host is down\n")
	tb.Row("PASS", "health URL", "3ms", "200 OK")
	tb.Row("WARN", "disk", "1ms", "tab\there\r\nand a CR\rend")
	var b bytes.Buffer
	if err := tb.Render(&b); err != nil {
		t.Fatal(err)
	}
	want := "FAIL  service active  12ms  status claude-flow.service: exit status 1; Failed to connect to bus: Host is down\n" +
		"PASS  health URL      3ms   200 OK\n" +
		"WARN  disk            1ms   tab here; and a CR; end\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestTableHeaderAndColour(t *testing.T) {
	p := Palette{on: true}
	tb := NewTable("ID", "MARK", "LABEL")
	tb.Row("a", p.Green("good"), "x")
	tb.Row("bbbbbb", "-", "")
	tb.Row("c", p.Red("BAD"), "y")
	var b bytes.Buffer
	if err := tb.Render(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), b.String())
	}
	if lines[0] != "ID      MARK  LABEL" || lines[2] != "bbbbbb  -" {
		t.Errorf("layout:\n%q", lines)
	}
	// The painted cells take the width of their text only: LABEL starts in the same column.
	if !strings.Contains(lines[1], "\x1b[") {
		t.Fatalf("no colour in %q", lines[1])
	}
	if got := stripSGR(lines[1]); got != "a       good  x" {
		t.Errorf("colour skewed the columns: %q", got)
	}
	if got := stripSGR(lines[3]); got != "c       BAD   y" {
		t.Errorf("colour skewed the columns: %q", got)
	}
}

func TestTableEscapesControls(t *testing.T) {
	tb := NewTable("NAME", "FILE")
	tb.Row("evil\x1b[2J\x1b]0;pwned\x07", "a.json")
	tb.Row("ok", "b.json")
	var b bytes.Buffer
	if err := tb.Render(&b); err != nil {
		t.Fatal(err)
	}
	want := "NAME                         FILE\n" +
		`evil\x1b[2J\x1b]0;pwned\x07  a.json` + "\n" +
		"ok                           b.json\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func stripSGR(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if n := sgrLen([]byte(s[i:])); n > 0 {
			i += n
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

func TestTableHeaderOnlyAndNumbers(t *testing.T) {
	tb := NewTable("ID", "COUNT", "NOTE")
	var b bytes.Buffer
	if err := tb.Render(&b); err != nil {
		t.Fatal(err)
	}
	if b.String() != "ID  COUNT  NOTE\n" {
		t.Errorf("header only: %q", b.String())
	}
	tb.Row("a", "7", "x")
	tb.Row("b", "1234", "y")
	b.Reset()
	if err := tb.Render(&b); err != nil {
		t.Fatal(err)
	}
	want := "ID  COUNT  NOTE\na   7      x\nb   1234   y\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
