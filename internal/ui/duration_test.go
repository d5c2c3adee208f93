package ui

import (
	"testing"
	"time"
)

func TestParseAndFormatDuration(t *testing.T) {
	day := 24 * time.Hour
	for in, want := range map[string]time.Duration{
		"7d": 7 * day, "2w": 14 * day, "1d12h": day + 12*time.Hour, "36h": 36 * time.Hour, "1h30m": 90 * time.Minute,
		"90s": 90 * time.Second, "500ms": 500 * time.Millisecond, "0": 0, "0s": 0, " 7d ": 7 * day, "1.5d": 36 * time.Hour,
		"-5s": -5 * time.Second, "-7d": -7 * day, "1y": 365 * day, "1y3w": 386 * day,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
			continue
		}
		if back, err := ParseDuration(FormatDuration(got)); err != nil || back != got {
			t.Errorf("round trip of %q: FormatDuration %q -> %v, %v", in, FormatDuration(got), back, err)
		}
	}
	for _, bad := range []string{"", "d", "7", "seven days", "7x", "1d-5h", "99999999999999w", "--5s", "y", "1y2", "300y"} {
		if d, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, d)
		}
	}
	for d, want := range map[time.Duration]string{
		7 * day: "7d", 168 * time.Hour: "7d", day + 12*time.Hour: "1d12h", 36 * time.Hour: "1d12h", 90 * time.Minute: "1h30m",
		5 * time.Second: "5s", 100 * time.Millisecond: "100ms", 0: "0", 2 * time.Hour: "2h", 90 * time.Second: "1m30s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
