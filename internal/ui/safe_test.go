package ui

import (
	"bytes"
	"testing"
)

func TestSafeWriterEscapesTerminalControls(t *testing.T) {
	for in, want := range map[string]string{
		"plain text\n":                "plain text\n",
		"tab\tand\rprogress\n":        "tab\tand\rprogress\n",
		"\x1b[31mred\x1b[0m":          "\x1b[31mred\x1b[0m", // our colours pass
		"name\x1b[2J\x1b]0;pwned\x07": `name\x1b[2J\x1b]0;pwned\x07`,
		"bell\x07 nul\x00 del\x7f":    `bell\x07 nul\x00 del\x7f`,
		"c1 csi \u009b2J and é ü":     `c1 csi \u009b2J and é ü`,
		"cut \x1b[31":                 `cut \x1b[31`,
	} {
		var b bytes.Buffer
		n, err := SafeWriter{&b}.Write([]byte(in))
		if err != nil || n != len(in) {
			t.Fatalf("%q: n=%d err=%v", in, n, err)
		}
		if b.String() != want {
			t.Errorf("%q: got %q, want %q", in, b.String(), want)
		}
	}
}

func TestJSONKeepsCommandsAsTyped(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, map[string]string{"next": "cfrollback health-check && cfrollback history > out <x>"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b.Bytes(), []byte(`"cfrollback health-check && cfrollback history > out <x>"`)) {
		t.Fatalf("escaped: %s", b.String())
	}
}

func TestSystemNoColorOnlyWhenNonEmpty(t *testing.T) {
	t.Setenv("TERM", "xterm")
	t.Setenv("NO_COLOR", "")
	if System().NoColor {
		t.Error("an empty NO_COLOR turned colour off (no-color.org: only a non-empty value does)")
	}
	t.Setenv("NO_COLOR", "1")
	if !System().NoColor {
		t.Error("NO_COLOR=1 left colour on")
	}
}
