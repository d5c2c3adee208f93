package logs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A `pm2 jlist` as pm2 5 prints it, trimmed: a warning line first, another app, and the app
// twice (cluster mode), its second instance logging errors to /dev/null.
const jlistSample = `[PM2] a warning first
[{"name":"other","pm2_env":{"pm_out_log_path":"/o.log"}},
 {"name":"claude-flow-assistant","pm2_env":{"pm_out_log_path":"/root/.pm2/logs/cf-out.log","pm_err_log_path":"/root/.pm2/logs/cf-error.log"}},
 {"name":"claude-flow-assistant","pm2_env":{"pm_out_log_path":"/root/.pm2/logs/cf-out.log","pm_err_log_path":"/dev/null"}}]`

func TestParsePM2LogPaths(t *testing.T) {
	paths, err := ParsePM2LogPaths([]byte(jlistSample), "claude-flow-assistant")
	if err != nil || strings.Join(paths, " ") != "/root/.pm2/logs/cf-out.log /root/.pm2/logs/cf-error.log" {
		t.Errorf("%q %v", paths, err)
	}
	if _, err := ParsePM2LogPaths([]byte(`[]`), "claude-flow-assistant"); !errors.Is(err, ErrNoFiles) {
		t.Errorf("no app: %v", err)
	}
	if _, err := ParsePM2LogPaths([]byte("[PM2] Spawning PM2 daemon\n"), "x"); err == nil || errors.Is(err, ErrNoFiles) {
		t.Errorf("no JSON: %v", err)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2025, 1, 4, 15, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"90m":                  now.Add(-90 * time.Minute),
		"2d":                   now.Add(-48 * time.Hour),
		"2025-01-04T14:00:00Z": time.Date(2025, 1, 4, 14, 0, 0, 0, time.UTC),
		"2025-01-04 14:00":     time.Date(2025, 1, 4, 14, 0, 0, 0, time.Local),
	} {
		if got, err := ParseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-1h", ""} {
		if _, err := ParseSince(bad, now); err == nil {
			t.Errorf("ParseSince(%q) passed", bad)
		}
	}
}

// TestResolve: which source each value of logs.source (and service.manager, for auto) reads.
func TestResolve(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.log"), "x\n")
	writeFile(t, filepath.Join(dir, "b.log"), "y\n")
	glob := filepath.Join(dir, "*.log")
	base := Settings{Files: glob, Unit: "claude-flow", PM2Name: "claude-flow-assistant", Manager: "auto"}
	jlist := func(context.Context) ([]byte, error) { return []byte(jlistSample), nil }
	listed := func(ok bool) func(context.Context) (bool, error) {
		return func(context.Context) (bool, error) { return ok, nil }
	}
	detected := func(kind string, err error) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return kind, err }
	}
	pm2Files := "/root/.pm2/logs/cf-out.log /root/.pm2/logs/cf-error.log"
	for _, tc := range []struct {
		name, source, manager, override string
		detect                          func(context.Context) (string, error)
		listed                          bool
		unit, files, warn, err          string
	}{
		{name: "files", source: Files, files: glob},
		{name: "journald whatever the manager", source: Journald, manager: "command", unit: "claude-flow.service"},
		{name: "pm2", source: PM2, manager: "systemd", listed: true, files: pm2Files},
		{name: "pm2 not running", source: PM2, listed: false, err: "pm2 app claude-flow-assistant is not in 'pm2 jlist'"},
		{name: "auto, systemd", source: Auto, manager: "systemd", unit: "claude-flow.service"},
		{name: "auto, command", source: Auto, manager: "command", files: glob},
		{name: "auto detects systemd", source: Auto, detect: detected("systemd", nil), unit: "claude-flow.service"},
		{name: "auto detects pm2", source: "", detect: detected("pm2", nil), listed: true, files: pm2Files},
		{name: "auto finds no service", source: Auto, detect: detected("", errors.New("service not found")), files: glob,
			warn: "service not found; reading " + glob + " (logs.files) instead"},
		{name: "the flag wins", source: Journald, override: filepath.Join(dir, "a.*"), files: filepath.Join(dir, "a.log")},
		{name: "bad glob", source: Files, override: "[", err: "syntax error in pattern"},
		{name: "nothing matches", source: Files, override: filepath.Join(dir, "*.txt"), err: "no log files match " + filepath.Join(dir, "*.txt")},
		{name: "unknown source", source: "syslog", err: `logs.source "syslog"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			s.Source = tc.source
			if tc.manager != "" {
				s.Manager = tc.manager
			}
			var warnings []string
			r := Resolver{Settings: s, Detect: tc.detect, PM2Listed: listed(tc.listed), PM2Jlist: jlist,
				Warn: func(m string) { warnings = append(warnings, m) }}
			src, err := r.Resolve(t.Context(), tc.override)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src.Unit != tc.unit {
				t.Errorf("unit %q, want %q", src.Unit, tc.unit)
			}
			if got := strings.Join(src.Files, " "); tc.files != glob && got != tc.files {
				t.Errorf("files %q, want %q", got, tc.files)
			} else if tc.files == glob && len(src.Files) != 2 {
				t.Errorf("files %q, want the two matching %s", src.Files, glob)
			}
			if strings.Join(warnings, "|") != tc.warn {
				t.Errorf("warnings %q, want %q", warnings, tc.warn)
			}
		})
	}
	if _, err := (Resolver{Settings: Settings{Source: Files, Files: "["}}).Resolve(t.Context(), "["); !errors.Is(err, filepath.ErrBadPattern) {
		t.Errorf("bad pattern: %v", err)
	}
}

// TestGlobSkips: a FIFO, a directory and a link another user owns among the matches are
// skipped with a warning (nothing is opened, so the FIFO cannot block); only them is an error.
func TestGlobSkips(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app.log"), "x\n")
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.log"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	warn := func(m string) { warnings = append(warnings, m) }
	src, err := Glob(filepath.Join(dir, "*.log"), warn)
	if err != nil || strings.Join(src.Files, " ") != filepath.Join(dir, "app.log") {
		t.Fatalf("%q, %v", src.Files, err)
	}
	w := strings.Join(warnings, "\n")
	if !strings.Contains(w, "fifo.log: not a regular file (a FIFO); skipped") || !strings.Contains(w, "dir.log: not a regular file (a directory); skipped") {
		t.Errorf("warnings:\n%s", w)
	}
	if _, err := Glob(filepath.Join(dir, "fifo.log"), nil); !errors.Is(err, ErrNoFiles) {
		t.Errorf("only a FIFO: %v", err)
	}

	secret := filepath.Join(dir, "secret")
	writeFile(t, secret, "root only\n")
	foreignLink(t, secret, filepath.Join(dir, "evil.log"))
	warnings = nil
	src, err = Glob(filepath.Join(dir, "*.log"), warn)
	if err != nil || strings.Join(src.Files, " ") != filepath.Join(dir, "app.log") {
		t.Fatalf("%q, %v", src.Files, err)
	}
	if w := strings.Join(warnings, "\n"); !strings.Contains(w, "evil.log: reached through a symbolic link owned by another user") {
		t.Errorf("warnings:\n%s", w)
	}
}
