package logs

import (
	"fmt"
	"regexp"
	"time"

	"github.com/cfrollback/cfrollback/internal/ui"
)

// Line is one line of the service's log.
type Line struct {
	Time    time.Time // zero when the line carries no time (plain files)
	Source  string    // "journal" or the file's path
	Message string
	PID     int // journal only; 0 when unknown
}

// Filter selects lines. A zero Filter selects everything.
type Filter struct {
	Since time.Time      // zero: no lower bound; undated lines always pass
	Grep  *regexp.Regexp // nil: every line
}

// Match applies the filter.
func (f Filter) Match(l Line) bool {
	if !f.Since.IsZero() && !l.Time.IsZero() && l.Time.Before(f.Since) {
		return false
	}
	return f.Grep == nil || f.Grep.MatchString(l.Message)
}

// sinceLayouts are the times ParseSince takes, besides a duration.
var sinceLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

// ParseSince reads a lower bound for Filter.Since: a duration back from now (1h, 30m) or a
// time (2025-01-04T14:00:00Z, "2025-01-04 14:00", local time without a zone). Durations
// take days and weeks as every duration flag does (7d, 2w: ui.ParseDuration).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if d, err := ui.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%s: give a positive duration back from now, e.g. 1h", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range sinceLayouts {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: not a duration (1h, 30m, 7d) or a time (2025-01-04T14:00:00Z, \"2025-01-04 14:00\")", s)
}

// maxLine bounds one log line; a longer one is cut, not an error.
const maxLine = 1 << 20
