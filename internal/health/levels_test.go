package health

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/service"
)

// fakeDB is a DatabaseChecker made of a function field.
type fakeDB struct {
	check func(ctx context.Context) []Check
}

var _ DatabaseChecker = (*fakeDB)(nil)

func (f *fakeDB) CheckDatabases(ctx context.Context) []Check { return f.check(ctx) }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckDisk(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		th   DiskThresholds
		want Verdict
	}{
		{"plenty", DiskThresholds{WarnPercent: 0, FailPercent: 0, FailBytes: 0}, Pass},
		{"under warn percent", DiskThresholds{WarnPercent: 100.1}, Warn},
		{"under fail percent", DiskThresholds{WarnPercent: 100.1, FailPercent: 100.1}, Fail},
		{"under fail bytes", DiskThresholds{FailBytes: 1 << 62}, Fail},
	} {
		c := CheckDisk("disk install", dir, tt.th)
		if c.Verdict != tt.want || !strings.Contains(c.Detail, "free of") || !strings.Contains(c.Detail, dir) {
			t.Errorf("%s: %+v, want %s", tt.name, c, tt.want)
		}
	}
	if c := CheckDisk("disk backups", filepath.Join(dir, "missing"), DefaultDisk); c.Verdict != Fail || !strings.Contains(c.Detail, "no such file") {
		t.Errorf("missing dir: %+v", c)
	}
}

func TestCheckAppConfig(t *testing.T) {
	for _, tt := range []struct {
		name   string
		files  map[string]string
		want   Verdict
		detail string
	}{
		{"config.json valid", map[string]string{"config.json": `{"port": 3000}`}, Pass, "config.json is valid JSON"},
		{"fallback name", map[string]string{"claude-flow.config.json": `[]`}, Pass, "claude-flow.config.json is valid JSON"},
		{"config.json wins", map[string]string{"config.json": `{`, "claude-flow.config.json": `{}`}, Fail, "config.json is not valid JSON"},
		{"syntax error line", map[string]string{"config.json": "{\n  \"a\": 1,\n  \"b\": ,\n}"}, Fail, "line 3 column"},
		{"absent", nil, Warn, "no config.json or claude-flow.config.json"},
	} {
		dir := t.TempDir()
		for name, content := range tt.files {
			writeFile(t, filepath.Join(dir, name), content)
		}
		c := CheckAppConfig(dir)
		if c.Verdict != tt.want || !strings.Contains(c.Detail, tt.detail) {
			t.Errorf("%s: %+v, want %s with %q", tt.name, c, tt.want, tt.detail)
		}
	}
}

func TestCheckNewestBackup(t *testing.T) {
	now := time.Date(2025, 1, 10, 12, 0, 0, 0, time.Local)
	for _, tt := range []struct {
		name  string
		files []string
		want  Verdict
		inDet string
	}{
		{"none", nil, Fail, "no backup in"},
		{"fresh", []string{"backup-20250110-020000.tar.gz", "backup-20250101-020000.tar.gz"}, Pass, "backup-20250110-020000.tar.gz, 10h old"},
		{"late", []string{"backup-20250109-080000.tar.gz"}, Warn, "1d4h old (over 1d2h)"},
		{"stale", []string{"backup-20250102-120000.tar.gz"}, Fail, "8d old (over 7d)"},
		{"ahead of the clock", []string{"backup-20250110-130500.tar.gz"}, Pass, "backup-20250110-130500.tar.gz, dated in 1h5m (ahead of"},
	} {
		dir := t.TempDir()
		for _, f := range tt.files {
			writeFile(t, filepath.Join(dir, f), "x")
		}
		c := CheckNewestBackup(dir, "backup-*.tar.gz", now, DefaultBackupAge)
		if c.Verdict != tt.want || !strings.Contains(c.Detail, tt.inDet) {
			t.Errorf("%s: %+v, want %s with %q", tt.name, c, tt.want, tt.inDet)
		}
	}
	if c := CheckNewestBackup(filepath.Join(t.TempDir(), "nope"), "", now, DefaultBackupAge); c.Verdict != Fail {
		t.Errorf("missing dir: %+v", c)
	}
}

func TestCheckRestarts(t *testing.T) {
	for _, tt := range []struct {
		name string
		st   service.Status
		err  error
		want Verdict
	}{
		{"none", service.Status{Manager: "systemd", State: "active", SubState: "running"}, nil, Pass},
		{"some", service.Status{Manager: "systemd", State: "active", SubState: "running", Restarts: 2}, nil, Warn},
		{"systemd crash loop", service.Status{Manager: "systemd", State: "activating", SubState: "auto-restart", Restarts: 5}, nil, Fail},
		{"pm2 crash loop", service.Status{Manager: "pm2", State: "waiting restart", Restarts: 9}, nil, Fail},
		{"status error", service.Status{}, errors.New("pm2 jlist: boom"), Fail},
	} {
		if c := CheckRestarts(tt.st, tt.err); c.Verdict != tt.want || c.Detail == "" {
			t.Errorf("%s: %+v, want %s", tt.name, c, tt.want)
		}
	}
}

func TestCheckProcess(t *testing.T) {
	ctx := t.Context()
	me := service.Status{Active: true, MainPID: os.Getpid()}
	c := CheckProcess(ctx, me, nil, nil, 20*time.Millisecond)
	if c.Verdict != Pass || !strings.Contains(c.Detail, "RSS") || !strings.Contains(c.Detail, "CPU") {
		t.Errorf("own pid: %+v", c)
	}
	hidden := func(int) (bool, string) { return false, "pid 7 is not visible" }
	if c := CheckProcess(ctx, me, nil, hidden, time.Millisecond); c.Verdict != Skip || c.Detail != "pid 7 is not visible" {
		t.Errorf("hidden pid: %+v", c)
	}
	if c := CheckProcess(ctx, service.Status{}, nil, nil, time.Millisecond); c.Verdict != Skip || !strings.Contains(c.Detail, "no main pid") {
		t.Errorf("no pid: %+v", c)
	}
	if c := CheckProcess(ctx, me, errors.New("dbus down"), nil, time.Millisecond); c.Verdict != Skip || !strings.Contains(c.Detail, "dbus down") {
		t.Errorf("status error: %+v", c)
	}
}

func names(cs []Check) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name+"="+string(c.Verdict))
	}
	return out
}

func TestRunLevel(t *testing.T) {
	install, backups := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(install, "config.json"), `{}`)
	now := time.Now()
	writeFile(t, filepath.Join(backups, "backup-"+now.Add(-time.Hour).Format("20060102-150405")+".tar.gz"), "x")
	active := FuncProbe{Name: "service active", F: func(context.Context) Result { return Result{OK: true, Detail: "active"} }}
	status := func(context.Context) (service.Status, error) {
		return service.Status{Manager: "pm2", Active: true, State: "online", MainPID: os.Getpid(), Restarts: 1}, nil
	}
	base := LevelOptions{Critical: []Prober{active}, InstallDir: install, BackupDir: backups,
		Disk: DiskThresholds{WarnPercent: 0.0001}, Status: status, CPUSample: 10 * time.Millisecond}

	opt := base
	opt.Level = Critical
	rep := RunLevel(t.Context(), opt)
	if got := strings.Join(names(rep.Checks), " "); got != "service active=PASS" || !rep.Healthy(true) {
		t.Errorf("critical: %s", got)
	}

	opt.Level = Quick
	rep = RunLevel(t.Context(), opt)
	got := strings.Join(names(rep.Checks), " ")
	// The temp dirs share a filesystem: one disk row covers both.
	if got != "service active=PASS disk install+backups=PASS app config=PASS newest backup=PASS" || !rep.Healthy(true) {
		t.Errorf("quick: %s", got)
	}
	for _, c := range rep.Checks {
		if c.Duration <= 0 {
			t.Errorf("quick: %s has no duration", c.Name)
		}
	}

	opt.Level = Comprehensive
	rep = RunLevel(t.Context(), opt)
	got = strings.Join(names(rep.Checks), " ")
	if !strings.HasSuffix(got, "restarts=WARN process=PASS databases=SKIP") && !strings.HasSuffix(got, "restarts=WARN process=WARN databases=SKIP") {
		t.Errorf("comprehensive: %s", got)
	}
	if !rep.Healthy(false) || rep.Healthy(true) {
		t.Errorf("comprehensive: a WARN must fail only --strict: %s", got)
	}
	if last := rep.Checks[len(rep.Checks)-1]; last.Detail != "database checks arrive with the database commands" {
		t.Errorf("databases row: %+v", last)
	}

	opt.Databases = &fakeDB{check: func(context.Context) []Check {
		return []Check{{Name: "database memory", Verdict: Pass, Detail: "integrity_check ok"},
			{Name: "database config", Verdict: Fail, Detail: "row 3: page 7 is never used"}}
	}}
	rep = RunLevel(t.Context(), opt)
	if got := strings.Join(names(rep.Checks[len(rep.Checks)-2:]), " "); got != "database memory=PASS database config=FAIL" || rep.Healthy(false) {
		t.Errorf("databases: %s", got)
	}
	// restarts is a WARN; the process row may WARN too when this test
	// process is busy (CPU over 90% of a core under -race on 2 cores).
	wantWarn := 1
	for _, c := range rep.Checks {
		if c.Name == "process" && c.Verdict == Warn {
			wantWarn++
		}
	}
	if w, f := rep.Counts(); w != wantWarn || f != 1 {
		t.Errorf("counts: %d warnings %d failures, want %d and 1", w, f, wantWarn)
	}

	// A failing critical probe fails every level.
	opt = base
	opt.Level = Quick
	opt.Critical = []Prober{FuncProbe{Name: "service active", F: func(context.Context) Result { return Result{Detail: "inactive"} }}}
	if rep := RunLevel(t.Context(), opt); rep.Healthy(false) || rep.Checks[0].Verdict != Fail {
		t.Errorf("critical failure: %s", names(rep.Checks))
	}
	if (Report{}).Healthy(false) {
		t.Error("nothing checked is not healthy")
	}
}

func TestCheckJSON(t *testing.T) {
	b, err := json.Marshal(Check{Name: "GET http://x/health", Verdict: Warn, Detail: "d", Duration: 1500 * time.Microsecond, StatusCode: 200})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"check":"GET http://x/health","status":"WARN","ok":true,"detail":"d","duration_ms":1.5,"status_code":200}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(Check{Name: "x", Verdict: Fail})
	if !strings.Contains(string(b), `"ok":false`) || strings.Contains(string(b), "status_code") {
		t.Errorf("fail row: %s", b)
	}
}
