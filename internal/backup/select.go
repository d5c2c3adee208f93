package backup

import (
	"fmt"
	"strings"
	"time"
)

// Resolve finds the backup that arg names among cands: an ID
// (20250104-140000), a file name, or a path. Several backups with one stamp
// make an ID ambiguous; the file name then decides.
func Resolve(cands []Candidate, arg string) (Candidate, error) {
	var found []Candidate
	for _, c := range cands {
		if matchesID(c, arg) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Candidate{}, fmt.Errorf("no backup %q in the backup dir; 'cfrollback backup list' shows the ids", arg)
	}
	names := make([]string, len(found))
	for i, c := range found {
		names[i] = c.Name
	}
	return Candidate{}, fmt.Errorf("%q names %d backups (%s); give the file name", arg, len(found), strings.Join(names, ", "))
}

// Choice narrows the backups rollback may use.
type Choice struct {
	To         string    // an ID, a file name, or "latest"
	Before     time.Time // zero: no bound
	AppVersion string    // "" : any
}

// Choose picks the backup for rollback --to: the one named, or with
// "latest" the newest one taken before Before, of AppVersion, and not
// marked bad. The reasons others were passed over are returned for the
// plan.
func Choose(cands []Candidate, st *State, ch Choice) (Candidate, []string, error) {
	if ch.To != "latest" {
		c, err := Resolve(cands, ch.To)
		if err != nil {
			return Candidate{}, nil, err
		}
		if !ch.Before.IsZero() && !c.Time.Before(ch.Before) {
			return Candidate{}, nil, fmt.Errorf("backup %s was taken at %s, not before %s; drop --before or pick another", ID(c.Name), c.Time.Format(time.RFC3339), ch.Before.Format(time.RFC3339))
		}
		if ch.AppVersion != "" {
			if v := appVersionOf(c); v != ch.AppVersion {
				return Candidate{}, nil, fmt.Errorf("backup %s is of app version %q, not %q; drop --app-version or pick another", ID(c.Name), v, ch.AppVersion)
			}
		}
		return c, nil, nil
	}
	var passed []string
	for _, c := range cands {
		switch {
		case !ch.Before.IsZero() && !c.Time.Before(ch.Before):
			continue // newer than asked: not worth a line each
		case ch.AppVersion != "" && appVersionOf(c) != ch.AppVersion:
			passed = append(passed, fmt.Sprintf("%s: app version %q", ID(c.Name), appVersionOf(c)))
			continue
		}
		if m := st.Get(c.Name).Mark; m != nil && m.Value == MarkBad {
			passed = append(passed, fmt.Sprintf("%s: marked bad (%s)", ID(c.Name), m.Reason))
			continue
		}
		if v := st.Get(c.Name).Verify; v != nil && !v.OK {
			passed = append(passed, fmt.Sprintf("%s: last verify FAILED: %s", ID(c.Name), v.Error))
			continue
		}
		return c, passed, nil
	}
	return Candidate{}, passed, fmt.Errorf("no backup matches (--to latest%s%s); 'cfrollback backup list' shows what there is",
		optStr(" --before ", ch.Before), optVer(ch.AppVersion))
}

func optStr(prefix string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return prefix + t.Format(time.RFC3339)
}

func optVer(v string) string {
	if v == "" {
		return ""
	}
	return " --app-version " + v
}

func appVersionOf(c Candidate) string {
	m, err := c.ManifestHeader()
	if err != nil {
		return ""
	}
	return m.AppVersion
}

// ParseTime reads --before: RFC 3339, "2006-01-02 15:04[:05]", a date, or
// a backup stamp (20060102-150405), local time unless a zone is given.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02", "20060102-150405"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: use RFC 3339 (2025-01-04T14:00:00Z), '2025-01-04 14:00' or 20250104-140000", s)
}
