// Package ui is how cfrollback talks to a person or a script: colour only on
// a terminal and never with NO_COLOR, progress on stderr, results on stdout,
// --json rendering of result structs, tables that cannot shift (table.go), and the one
// way to show an age, a duration and a size (format.go).
package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fatih/color"
	"golang.org/x/term"
)

// IO is the streams of one invocation; tests pass buffers.
type IO struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// OutTTY and ErrTTY say whether the streams are terminals.
	OutTTY, ErrTTY bool
	NoColor        bool
	// JSON is --json: warnings go to stderr as JSON lines too (Warnf).
	JSON bool
}

// System returns the process's own streams.
func System() *IO {
	// no-color.org: NO_COLOR set to a non-empty value turns colour off (an empty one does not)
	noColor := os.Getenv("NO_COLOR") != ""
	return &IO{
		In: os.Stdin, Out: SafeWriter{os.Stdout}, ErrOut: SafeWriter{os.Stderr},
		OutTTY:  term.IsTerminal(int(os.Stdout.Fd())),
		ErrTTY:  term.IsTerminal(int(os.Stderr.Fd())),
		NoColor: noColor || os.Getenv("TERM") == "dumb",
	}
}

// Palette paints text for one stream; it is plain when colour is off.
type Palette struct{ on bool }

// ErrPalette decides colour for stderr ourselves: fatih/color only looks at stdout.
func (s *IO) ErrPalette() Palette { return Palette{on: s.ErrTTY && !s.NoColor} }

// OutPalette is the palette for stdout.
func (s *IO) OutPalette() Palette { return Palette{on: s.OutTTY && !s.NoColor} }

func (p Palette) paint(attr color.Attribute, s string) string {
	if !p.on {
		return s
	}
	c := color.New(attr)
	c.EnableColor()
	return c.Sprint(s)
}

// Red paints s red when colour is on.
func (p Palette) Red(s string) string { return p.paint(color.FgRed, s) }

// Green paints s green when colour is on.
func (p Palette) Green(s string) string { return p.paint(color.FgGreen, s) }

// Yellow paints s yellow when colour is on.
func (p Palette) Yellow(s string) string { return p.paint(color.FgYellow, s) }

// Bold makes s bold when colour is on.
func (p Palette) Bold(s string) string { return p.paint(color.Bold, s) }

// Faint makes s faint when colour is on.
func (p Palette) Faint(s string) string { return p.paint(color.Faint, s) }

// JSON writes v as indented JSON with a trailing newline. Commands in it stay as they are
// pasted: no HTML escaping of & < > (jq shows "a && b", not "a \u0026\u0026 b").
// Under --jq (w is a *JQWriter) v goes through the filter instead.
func JSON(w io.Writer, v any) error {
	if jq, ok := w.(*JQWriter); ok {
		return jq.encode(v)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// ParseDuration reads a duration as people write it: Go's units (500ms, 90s, 36h, 1h30m) and
// days, weeks and years of 365 days (7d, 2w, 1d12h, 1y3w: what Age writes). A negative value parses (callers refuse it, naming the flag
// or key).
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	rest, neg := strings.CutPrefix(in, "-")
	var total time.Duration
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"y", 365 * 24 * time.Hour}, {"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}} {
		i := strings.Index(rest, u.suffix)
		if i < 0 {
			continue
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil || n < 0 || n*float64(u.unit) > float64(math.MaxInt64/2) {
			return 0, fmt.Errorf("invalid duration %q: want a number and a unit, such as 30s, 36h, 7d or 2w", s)
		}
		total += time.Duration(n * float64(u.unit))
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("invalid duration %q: want a number and a unit, such as 30s, 36h, 7d or 2w", s)
		}
		total += d
	} else if total == 0 && !strings.ContainsAny(in, "dwy") {
		return 0, fmt.Errorf("invalid duration %q: want a number and a unit, such as 30s, 36h, 7d or 2w", s)
	}
	if neg {
		total = -total
	}
	return total, nil
}

// FormatDuration writes d so that ParseDuration reads it back exactly, the way a person
// would: 7d, 1d12h, 36h, 1h30m, 90s, 500ms; 0 is "0".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	day := 24 * time.Hour
	days, rest := d/day, d%day
	out := ""
	if days > 0 {
		out = fmt.Sprintf("%dd", days)
	}
	if rest > 0 {
		s := rest.String() // e.g. 12h0m0s, 1h30m0s, 1m30s, 500ms
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		out += s
	}
	return sign + out
}
