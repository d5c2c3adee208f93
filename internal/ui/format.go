package ui

import (
	"fmt"
	"strconv"
	"time"
)

// The one way cfrollback shows an age, an elapsed time and a size to a person. A value that
// a person types back (a setting, a flag, a threshold) is shown with FormatDuration instead,
// which ParseDuration reads back exactly.

// ageUnits are Age's units, largest first. Weeks start at two weeks: "10d" reads better
// than "1w3d", "3w2d" better than "23d". A year is 365 days: "1y3w", not "55w1d".
var ageUnits = []struct {
	suffix string
	unit   time.Duration
	from   time.Duration // the least duration shown in this unit
}{
	{"y", 365 * 24 * time.Hour, 365 * 24 * time.Hour},
	{"w", 7 * 24 * time.Hour, 14 * 24 * time.Hour},
	{"d", 24 * time.Hour, 24 * time.Hour},
	{"h", time.Hour, time.Hour},
	{"m", time.Minute, time.Minute},
	{"s", time.Second, 0},
}

// Age renders how long something has been, compactly, for a row or a sentence: the two
// largest units, rounded down, the second left out when it is zero: 45s, 12m30s, 3h12m,
// 2d4h, 10d, 3w2d, 1y3w. Under a second it is "0s"; a negative d gets a minus sign. ParseDuration
// reads the result back (to the precision shown).
func Age(d time.Duration) string {
	if d < 0 {
		if d == time.Duration(-1<<63) {
			d++ // -MinInt64 does not fit
		}
		return "-" + Age(-d)
	}
	i := 0
	for d < ageUnits[i].from { // seconds are from 0: the loop ends there
		i++
	}
	u := ageUnits[i]
	n := d / u.unit
	out := strconv.FormatInt(int64(n), 10) + u.suffix
	if i+1 < len(ageUnits) {
		next := ageUnits[i+1]
		if r := (d - n*u.unit) / next.unit; r > 0 {
			out += strconv.FormatInt(int64(r), 10) + next.suffix
		}
	}
	return out
}

// Ago renders a time relative to now for a person: "12m ago", "2d4h ago"; "just now" within
// a second either way; "in 5m" for a time ahead of now (a clock that is off); "never" for
// the zero time (something that has not happened).
func Ago(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d > -time.Second && d < time.Second:
		return "just now"
	case d < 0:
		return "in " + Age(-d)
	}
	return Age(d) + " ago"
}

// Duration renders how long something took: 340ms, 1.2s, and from a minute on as Age does
// (2m5s, 1h30m).
func Duration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + Duration(-d)
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return Age(d)
}

// byteUnits are Bytes's units past bytes, in steps of 1024.
const byteUnits = "KMGTPE"

// Bytes renders a size with binary (IEC) units, as df -h and ls -lh do: "512 B", "1.5 KiB",
// "649.4 MiB", "1.0 GiB". The unit is chosen after rounding, so 1048575 bytes is
// "1.0 MiB", not "1024.0 KiB".
func Bytes[N ~int | ~int64 | ~uint64 | ~uint](n N) string {
	if n < 0 {
		return "-" + Bytes(uint64(-int64(n))) //nolint:gosec // uint64 of -MinInt64 (which wraps to itself) is still the magnitude
	}
	u := uint64(n)
	if u < 1024 {
		return fmt.Sprintf("%d B", u)
	}
	v, exp := float64(u)/1024, 0
	for exp < len(byteUnits)-1 && v >= 1024-0.05 {
		v /= 1024
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", v, byteUnits[exp])
}
