package ui

import (
	"fmt"
	"io"
	"unicode/utf8"
)

// SafeWriter passes text to a terminal or a log with every control character that could
// act on the terminal shown as an escape instead: names and keys read from the app's files
// (an agent's name, a config key) are printed, and a user who can write those files must
// not be able to clear root's screen, retitle the window or fake the lines after them
// (ESC[2J, OSC 0). Kept: newline, tab, carriage return (progress bars) and complete SGR
// sequences (ESC [ digits ; ... m: colour, which is all cfrollback itself emits). Each Write
// is judged on its own; a sequence split across writes is escaped, never passed.
type SafeWriter struct{ W io.Writer }

func (s SafeWriter) Write(p []byte) (int, error) {
	if clean(p) {
		return s.W.Write(p)
	}
	out := make([]byte, 0, len(p)+16)
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == 0x1b:
			if n := sgrLen(p[i:]); n > 0 {
				out = append(out, p[i:i+n]...)
				i += n
				continue
			}
			out = append(out, `\x1b`...)
			i++
		case c == '\n' || c == '\t' || c == '\r':
			out = append(out, c)
			i++
		case c < 0x20 || c == 0x7f:
			out = fmt.Appendf(out, `\x%02x`, c)
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(p[i:])
			if r >= 0x80 && r <= 0x9f { // C1 controls: U+009B is a CSI on some terminals
				out = fmt.Appendf(out, `\u%04x`, r)
			} else {
				out = append(out, p[i:i+n]...)
			}
			i += n
		}
	}
	if _, err := s.W.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// clean reports whether p needs no escaping (the common case: no copy).
func clean(p []byte) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x20 && c != '\n' && c != '\t' && c != '\r' || c == 0x7f || c == 0xc2 {
			return false
		}
	}
	return true
}

// sgrLen is the length of a complete SGR sequence (ESC [ params m) at the start of p, or 0.
func sgrLen(p []byte) int {
	if len(p) < 3 || p[0] != 0x1b || p[1] != '[' {
		return 0
	}
	for i := 2; i < len(p) && i < 64; i++ {
		switch c := p[i]; {
		case c == 'm':
			return i + 1
		case c >= '0' && c <= '9', c == ';':
		default:
			return 0
		}
	}
	return 0
}
