package ui

import (
	"math"
	"testing"
	"time"
)

func TestAgeAndAgo(t *testing.T) {
	const day, week = 24 * time.Hour, 7 * 24 * time.Hour
	now := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		d        time.Duration // age: now minus the time
		age, ago string
	}{
		{"under a second", 300 * time.Millisecond, "0s", "just now"},
		{"seconds", 45 * time.Second, "45s", "45s ago"},
		{"seconds, rounded down", 59*time.Second + 999*time.Millisecond, "59s", "59s ago"},
		{"a minute", time.Minute, "1m", "1m ago"},
		{"minutes and seconds", 12*time.Minute + 30*time.Second, "12m30s", "12m30s ago"},
		{"hours", 3 * time.Hour, "3h", "3h ago"},
		{"hours and minutes", 3*time.Hour + 12*time.Minute + 59*time.Second, "3h12m", "3h12m ago"},
		{"a day", day, "1d", "1d ago"},
		{"a day and a half", 36 * time.Hour, "1d12h", "1d12h ago"},
		{"days and hours", 2*day + 4*time.Hour + 30*time.Minute, "2d4h", "2d4h ago"},
		{"a week is still days", week + 3*day, "10d", "10d ago"},
		{"13 days", 13*day + 23*time.Hour, "13d23h", "13d23h ago"},
		{"two weeks", 2 * week, "2w", "2w ago"},
		{"weeks and days", 3*week + 2*day + 5*time.Hour, "3w2d", "3w2d ago"},
		{"a year less a day", 364 * day, "52w", "52w ago"},
		{"a year", 365 * day, "1y", "1y ago"},
		{"years and weeks", 6*365*day + 47*week + 3*day, "6y47w", "6y47w ago"},
		{"future, within a second", -500 * time.Millisecond, "-0s", "just now"},
		{"future", -5 * time.Minute, "-5m", "in 5m"},
		{"future, days", -(2*day + time.Hour), "-2d1h", "in 2d1h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Age(tc.d); got != tc.age {
				t.Errorf("Age(%v) = %q, want %q", tc.d, got, tc.age)
			}
			if got := Ago(now.Add(-tc.d), now); got != tc.ago {
				t.Errorf("Ago(now - %v) = %q, want %q", tc.d, got, tc.ago)
			}
			// What Age shows, ParseDuration reads back: the same, rounded towards zero.
			back, err := ParseDuration(tc.age)
			if err != nil || abs(back) > abs(tc.d) || abs(tc.d)-abs(back) >= abs(tc.d)/10+time.Second {
				t.Errorf("ParseDuration(%q) = %v, %v; want at most %v and close to it", tc.age, back, err, tc.d)
			}
		})
	}
	if got := Ago(time.Time{}, now); got != "never" {
		t.Errorf("Ago(zero time) = %q, want never", got)
	}
	if got := Age(time.Duration(math.MinInt64)); got[0] != '-' {
		t.Errorf("Age(MinInt64) = %q", got)
	}
	if got := Age(time.Duration(math.MaxInt64)); got != "292y24w" {
		t.Errorf("Age(MaxInt64) = %q", got)
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0ms", 340 * time.Millisecond: "340ms", 1200 * time.Millisecond: "1.2s", 59 * time.Second: "59.0s",
		125 * time.Second: "2m5s", 90 * time.Minute: "1h30m", 50 * time.Hour: "2d2h", -1500 * time.Millisecond: "-1.5s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {512, "512 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{1<<20 - 1, "1.0 MiB"}, // rounded up to the next unit, not "1024.0 KiB"
		{649*(1<<20) + 400*(1<<10), "649.4 MiB"}, {3 << 29, "1.5 GiB"}, {1 << 30, "1.0 GiB"},
		{5 << 40, "5.0 TiB"}, {math.MaxInt64, "8.0 EiB"}, {-1536, "-1.5 KiB"}, {math.MinInt64, "-8.0 EiB"},
	} {
		if got := Bytes(tc.n); got != tc.want {
			t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := Bytes(uint64(math.MaxUint64)); got != "16.0 EiB" {
		t.Errorf("Bytes(MaxUint64) = %q", got)
	}
	if got := Bytes(2048); got != "2.0 KiB" { // an untyped constant is an int
		t.Errorf("Bytes(2048) = %q", got)
	}
}

func abs(d time.Duration) time.Duration { return max(d, -d) }
