package cli

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/ui"
)

// rateRE is a rate as the bar prints it: "1.3 TiB/s", " 5 B/s", "12 MiB/s".
var rateRE = regexp.MustCompile(`([0-9.]+) ([kKMGTPE]?i?B)/s`)

func bytesPerSecond(t *testing.T, num, unit string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		t.Fatalf("rate %q: %v", num, err)
	}
	if unit != "B" {
		exp := strings.IndexByte("KMGTPE", strings.ToUpper(unit)[0]) + 1
		for range exp {
			v *= 1024
		}
	}
	return v
}

// TestProgressRateIsMeasuredOverTime: a bar fed its first bytes microseconds after it was
// made (a fast first chunk, a step that is nearly done at once) must not print their rate
// as bytes over microseconds ("1.3 TB/s"). A rate, when one is shown, is measured over at
// least frameEvery, so it is at most the bytes fed over frameEvery.
func TestProgressRateIsMeasuredOverTime(t *testing.T) {
	const total = 64 << 20
	for _, tc := range []struct {
		name string
		feed func(b *progressBar)
	}{
		{"first update", func(b *progressBar) { b.set(total / 2) }},
		{"updates in a burst", func(b *progressBar) {
			for n := int64(1 << 20); n <= total/2; n += 1 << 20 {
				b.set(n)
			}
		}},
		{"after a reset", func(b *progressBar) { b.finish(); b.reset(total); b.set(total / 2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errOut bytes.Buffer
			streams := &ui.IO{Out: io.Discard, ErrOut: &errOut, ErrTTY: true, NoColor: true}
			bar := newProgressBar(streams, false, total, "backing up")
			if bar == nil {
				t.Fatal("no bar on a terminal")
			}
			tc.feed(bar)
			limit := float64(total/2) / frameEvery.Seconds()
			for _, m := range rateRE.FindAllStringSubmatch(errOut.String(), -1) {
				if r := bytesPerSecond(t, m[1], m[2]); r > limit*1.05 {
					t.Errorf("rate %q (%.0f B/s) is more than %d bytes over %s:\n%q", m[0], r, total/2, frameEvery, errOut.String())
				}
			}
			bar.finish()
		})
	}
}

// TestProgressRateOnceTimeHasPassed: once frameEvery has passed, the bar is drawn with the
// rate of the bytes over the time since it was made.
func TestProgressRateOnceTimeHasPassed(t *testing.T) {
	const total, fed = 64 << 20, 16 << 20
	var errOut bytes.Buffer
	streams := &ui.IO{Out: io.Discard, ErrOut: &errOut, ErrTTY: true, NoColor: true}
	made := time.Now()
	bar := newProgressBar(streams, false, total, "backing up")
	time.Sleep(frameEvery + 50*time.Millisecond) // the work between two updates, not a wait for anything
	slept := time.Since(made)
	bar.set(fed)
	took := time.Since(made)
	m := rateRE.FindAllStringSubmatch(errOut.String(), -1)
	if len(m) != 1 {
		t.Fatalf("want one frame with a rate, got %q", errOut.String())
	}
	// The clock started between made and slept-ago; the frame was drawn before took.
	r := bytesPerSecond(t, m[0][1], m[0][2])
	if lo, hi := float64(fed)/took.Seconds(), float64(fed)/slept.Seconds(); r < lo*0.9 || r > hi*1.1 {
		t.Errorf("rate %q (%.0f B/s), want %.0f..%.0f B/s: %q", m[0][0], r, lo, hi, errOut.String())
	}
	if !strings.Contains(errOut.String(), "MiB") {
		t.Errorf("not in binary units as ui.Bytes: %q", errOut.String())
	}
	bar.finish()
}

func TestProgressBarOnlyOnATerminal(t *testing.T) {
	var errOut bytes.Buffer
	for _, tc := range []struct {
		tty, json bool
	}{{false, false}, {true, true}} {
		bar := newProgressBar(&ui.IO{Out: io.Discard, ErrOut: &errOut, ErrTTY: tc.tty}, tc.json, 100, "x")
		if bar != nil {
			t.Errorf("tty %v, json %v: a bar", tc.tty, tc.json)
		}
		bar.set(50) // a nil bar does nothing
		bar.reset(10)
		bar.describe("y")
		bar.finish()
	}
	if errOut.Len() != 0 {
		t.Errorf("printed %q", errOut.String())
	}
}
