package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// Verdict is one check's outcome in a health-check level.
type Verdict string

// The verdicts, from best to worst; SKIP means "not checked" and never fails a run.
const (
	Pass Verdict = "PASS"
	Skip Verdict = "SKIP"
	Warn Verdict = "WARN"
	Fail Verdict = "FAIL"
)

// Level is how much health-check looks at.
type Level string

// The levels; each includes the one before it.
const (
	Critical      Level = "critical-only"
	Quick         Level = "quick"
	Comprehensive Level = "comprehensive"
)

// Check is one row of a health-check table.
type Check struct {
	Name       string
	Verdict    Verdict
	Detail     string // one line, for a person: why it passed, warned, failed or was skipped
	Duration   time.Duration
	StatusCode int // the HTTP status for a URL check
}

type checkJSON struct {
	Check      string  `json:"check"`
	Status     Verdict `json:"status"`
	OK         bool    `json:"ok"` // not FAIL; kept from the critical-only output
	Detail     string  `json:"detail"`
	DurationMS float64 `json:"duration_ms"`
	StatusCode int     `json:"status_code,omitempty"`
}

// MarshalJSON writes snake_case fields, the verdict as "status" and, for the
// scripts written against --critical-only, "ok" (true unless FAIL).
func (c Check) MarshalJSON() ([]byte, error) {
	return json.Marshal(checkJSON{Check: c.Name, Status: c.Verdict, OK: c.Verdict != Fail, Detail: c.Detail,
		DurationMS: float64(c.Duration.Microseconds()) / 1000, StatusCode: c.StatusCode})
}

// FromResult turns a Prober's Result into a PASS or FAIL row.
func FromResult(r Result) Check {
	v := Fail
	if r.OK {
		v = Pass
	}
	return Check{Name: r.Check, Verdict: v, Detail: r.Detail, Duration: r.Duration, StatusCode: r.StatusCode}
}

// DatabaseChecker checks the app's databases for health-check --comprehensive.
// The cli fills LevelOptions.Databases once the database commands exist; nil
// reports one SKIP row.
type DatabaseChecker interface {
	CheckDatabases(ctx context.Context) []Check
}

// DiskThresholds decide the disk rows: FAIL under FailPercent or under
// FailBytes available, WARN under WarnPercent.
type DiskThresholds struct {
	WarnPercent, FailPercent float64
	FailBytes                uint64
}

// DefaultDisk is WARN under 10 %, FAIL under 2 % or 1 GiB.
var DefaultDisk = DiskThresholds{WarnPercent: 10, FailPercent: 2, FailBytes: 1 << 30}

// AgeThresholds decide the newest-backup row.
type AgeThresholds struct{ Warn, Fail time.Duration }

// DefaultBackupAge is WARN over 26 h (a daily backup that is a little late is
// fine), FAIL over 7 days.
var DefaultBackupAge = AgeThresholds{Warn: 26 * time.Hour, Fail: 7 * 24 * time.Hour}

// LevelOptions is everything RunLevel needs, as plain values and functions.
type LevelOptions struct {
	Level Level
	// Critical are the critical-only probes (service active, health URL);
	// their results become PASS/FAIL rows exactly as before levels existed.
	Critical []Prober

	// Quick
	InstallDir    string
	BackupDir     string
	BackupPattern string
	Disk          DiskThresholds // zero means DefaultDisk
	BackupAge     AgeThresholds  // zero means DefaultBackupAge

	// Comprehensive
	Status func(ctx context.Context) (service.Status, error)
	// PIDVisible says whether Status's MainPID names the service's process in
	// our PID namespace (systemd reports pids of its own namespace); nil
	// means "visible if /proc/PID exists".
	PIDVisible func(pid int) (ok bool, why string)
	Databases  DatabaseChecker
	CPUSample  time.Duration // how long CPU use is measured; 0 means 200ms

	Now func() time.Time // nil means time.Now
}

// Report is the outcome of one level.
type Report struct {
	Level  Level
	Checks []Check
}

// Counts returns how many rows warned and failed.
func (r Report) Counts() (warnings, failures int) {
	for _, c := range r.Checks {
		switch c.Verdict {
		case Warn:
			warnings++
		case Fail:
			failures++
		}
	}
	return warnings, failures
}

// Healthy is false with any FAIL, and with strict, with any WARN too. SKIP
// never counts: it says what was not checked, not that something is wrong.
func (r Report) Healthy(strict bool) bool {
	w, f := r.Counts()
	return f == 0 && (!strict || w == 0) && len(r.Checks) > 0
}

// RunLevel runs the checks of opt.Level, in order, and returns every row.
func RunLevel(ctx context.Context, opt LevelOptions) Report {
	rep := Report{Level: opt.Level}
	_, results := All(ctx, opt.Critical...)
	for _, r := range results {
		rep.Checks = append(rep.Checks, FromResult(r))
	}
	if opt.Level == Critical {
		return rep
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	disk := opt.Disk
	if disk == (DiskThresholds{}) {
		disk = DefaultDisk
	}
	age := opt.BackupAge
	if age == (AgeThresholds{}) {
		age = DefaultBackupAge
	}
	rep.Checks = append(rep.Checks, timed(func() Check { return CheckDisk("disk install", opt.InstallDir, disk) }))
	if !SameFilesystem(opt.InstallDir, opt.BackupDir) {
		rep.Checks = append(rep.Checks, timed(func() Check { return CheckDisk("disk backups", opt.BackupDir, disk) }))
	} else {
		rep.Checks[len(rep.Checks)-1].Name = "disk install+backups"
	}
	rep.Checks = append(rep.Checks,
		timed(func() Check { return CheckAppConfig(opt.InstallDir) }),
		timed(func() Check { return CheckNewestBackup(opt.BackupDir, opt.BackupPattern, now(), age) }),
	)
	if opt.Level == Quick {
		return rep
	}

	var st service.Status
	var stErr error
	if opt.Status != nil {
		st, stErr = opt.Status(ctx)
	} else {
		stErr = errors.New("no service status available")
	}
	rep.Checks = append(rep.Checks,
		timed(func() Check { return CheckRestarts(st, stErr) }),
		timed(func() Check { return CheckProcess(ctx, st, stErr, opt.PIDVisible, opt.CPUSample) }),
	)
	if opt.Databases == nil {
		rep.Checks = append(rep.Checks, Check{Name: "databases", Verdict: Skip, Detail: "database checks arrive with the database commands"})
	} else {
		start := time.Now()
		rows := opt.Databases.CheckDatabases(ctx)
		for i := range rows {
			if rows[i].Duration == 0 {
				rows[i].Duration = time.Since(start)
			}
		}
		rep.Checks = append(rep.Checks, rows...)
	}
	return rep
}

// timed fills in a row's Duration when the check left it empty.
func timed(f func() Check) Check {
	start := time.Now()
	c := f()
	if c.Duration == 0 {
		c.Duration = time.Since(start)
	}
	return c
}

// CheckDisk judges the space available (to unprivileged users, as the app
// is) on the filesystem holding dir.
func CheckDisk(name, dir string, th DiskThresholds) Check {
	c := Check{Name: name}
	u, err := DiskUsage(dir)
	if err != nil {
		c.Verdict, c.Detail = Fail, err.Error()
		return c
	}
	pct := u.AvailPercent()
	c.Detail = fmt.Sprintf("%s free of %s (%.1f%%) on %s", ui.Bytes(u.Avail), ui.Bytes(u.Total), pct, dir)
	switch {
	case pct < th.FailPercent || u.Avail < th.FailBytes:
		c.Verdict = Fail
		c.Detail += fmt.Sprintf("; below %.0f%% or %s: free space now", th.FailPercent, ui.Bytes(th.FailBytes))
	case pct < th.WarnPercent:
		c.Verdict = Warn
		c.Detail += fmt.Sprintf("; below %.0f%%", th.WarnPercent)
	default:
		c.Verdict = Pass
	}
	return c
}

// AppConfigNames are the app config files CheckAppConfig looks for, in order.
var AppConfigNames = []string{"config.json", "claude-flow.config.json"}

// CheckAppConfig passes when the first of AppConfigNames present in
// installDir is valid JSON; none present is a WARN (the app may not need one).
func CheckAppConfig(installDir string) Check {
	c := Check{Name: "app config"}
	for _, name := range AppConfigNames {
		p := filepath.Join(installDir, name)
		b, err := fsutil.ReadFile(p, fsutil.MaxSmallFile)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			c.Verdict, c.Detail = Fail, err.Error()
			return c
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			c.Verdict, c.Detail = Fail, fmt.Sprintf("%s is not valid JSON: %s", p, describeJSONError(b, err))
			return c
		}
		c.Verdict, c.Detail = Pass, p+" is valid JSON"
		return c
	}
	c.Verdict = Warn
	c.Detail = fmt.Sprintf("no %s or %s in %s", AppConfigNames[0], AppConfigNames[1], installDir)
	return c
}

// describeJSONError names the line and column of a syntax error.
func describeJSONError(b []byte, err error) string {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return err.Error()
	}
	line, col := 1, 1
	for _, ch := range b[:min(int(se.Offset), len(b))] {
		if ch == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d column %d: %v", line, col, se)
}

// CheckNewestBackup judges the age of the newest backup in dir: a rollback
// to a week-old backup loses a week.
func CheckNewestBackup(dir, pattern string, now time.Time, th AgeThresholds) Check {
	c := Check{Name: "newest backup"}
	if pattern == "" {
		pattern = "backup-*.tar.gz"
	}
	cands, _, err := backup.Discover(dir, pattern)
	if err != nil {
		c.Verdict, c.Detail = Fail, err.Error()
		return c
	}
	if len(cands) == 0 {
		c.Verdict, c.Detail = Fail, fmt.Sprintf("no backup in %s matching %s: nothing to roll back to", dir, pattern)
		return c
	}
	n := cands[0]
	age := now.Sub(n.Time)
	c.Detail = fmt.Sprintf("%s, %s old", n.Name, ui.Age(age))
	if age < 0 {
		c.Detail = fmt.Sprintf("%s, dated %s (ahead of this host's clock)", n.Name, ui.Ago(n.Time, now))
	}
	switch {
	case age > th.Fail:
		c.Verdict = Fail
		c.Detail += fmt.Sprintf(" (over %s)", ui.FormatDuration(th.Fail))
	case age > th.Warn:
		c.Verdict = Warn
		c.Detail += fmt.Sprintf(" (over %s)", ui.FormatDuration(th.Warn))
	default:
		c.Verdict = Pass
	}
	return c
}

// CheckRestarts warns when the manager has restarted the service and fails
// when it is waiting to restart it again (a crash loop).
func CheckRestarts(st service.Status, err error) Check {
	c := Check{Name: "restarts"}
	switch {
	case err != nil:
		c.Verdict, c.Detail = Fail, err.Error()
	case CrashLooping(st):
		c.Verdict, c.Detail = Fail, fmt.Sprintf("crash loop: %s, %d restarts", stateOf(st), st.Restarts)
	case st.Restarts > 0:
		c.Verdict, c.Detail = Warn, fmt.Sprintf("%d restarts by %s since it was started or loaded", st.Restarts, st.Manager)
	default:
		c.Verdict, c.Detail = Pass, "no restarts"
		if st.Manager == service.KindCommand {
			c.Detail = "no restart count from the command manager"
		}
	}
	return c
}

// CrashLooping reports whether the manager is between two restarts of a
// service that keeps dying: systemd activating/auto-restart, pm2 "waiting
// restart".
func CrashLooping(st service.Status) bool {
	return st.SubState == "auto-restart" || st.State == "waiting restart"
}

func stateOf(st service.Status) string {
	if st.SubState != "" {
		return st.State + "/" + st.SubState
	}
	return st.State
}

// CheckProcess reports the main process's RSS and CPU use. CPU at or above
// 90% of one core over the sample is a WARN; RSS is reported, not judged
// (a leak is a trend, which one sample cannot show).
func CheckProcess(ctx context.Context, st service.Status, err error, visible func(int) (bool, string), sample time.Duration) Check {
	c := Check{Name: "process"}
	switch {
	case err != nil:
		c.Verdict, c.Detail = Skip, "no service status: "+err.Error()
		return c
	case st.MainPID <= 0:
		c.Verdict, c.Detail = Skip, "the manager reports no main pid"
		return c
	}
	if visible == nil {
		visible = func(pid int) (bool, string) { return PIDVisible(pid, "") }
	}
	if ok, why := visible(st.MainPID); !ok {
		c.Verdict, c.Detail = Skip, why
		return c
	}
	if sample <= 0 {
		sample = 200 * time.Millisecond
	}
	ps, err := SampleProcess(ctx, st.MainPID, sample)
	if err != nil {
		c.Verdict, c.Detail = Skip, err.Error()
		return c
	}
	c.Detail = fmt.Sprintf("pid %d: RSS %s, CPU %.0f%% over %s", st.MainPID, ui.Bytes(ps.RSS), ps.CPUPercent, sample)
	c.Verdict = Pass
	if ps.CPUPercent >= 90 {
		c.Verdict = Warn
		c.Detail += " (at or above 90% of one core)"
	}
	return c
}
