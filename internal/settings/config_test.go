package settings

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValidAndTheSeedProfile(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.InstallDir != "/opt/claude-flow" || c.Backup.Dir != "/var/backups/claude-flow" || c.Service.Unit != "claude-flow" ||
		c.Service.PM2Name != "claude-flow-assistant" || c.Backup.Pattern != "backup-*.tar.gz" {
		t.Fatalf("defaults drifted from the seed: %+v", c)
	}
	ts := time.Date(2025, 1, 4, 14, 5, 0, 0, time.UTC)
	if got := c.FailedDir(ts); got != "/opt/claude-flow-failed-20250104-140500" {
		t.Fatalf("failed dir %s, want the seed's name", got)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	cases := []struct {
		key string
		mod func(*Config)
	}{
		{"install_dir", func(c *Config) { c.InstallDir = "rel" }},
		{"install_dir", func(c *Config) { c.InstallDir = "/" }},
		{"failed_dir_pattern", func(c *Config) { c.FailedDirPattern = "{install}-failed" }},
		{"failed_dir_pattern", func(c *Config) { c.FailedDirPattern = "/elsewhere/x-{ts}" }},
		{"backup.pattern", func(c *Config) { c.Backup.Pattern = "a/b*.tar.gz" }},
		{"backup.pattern", func(c *Config) { c.Backup.Pattern = "[" }},
		{"restore.mode", func(c *Config) { c.Restore.Mode = "merge" }},
		{"restore.preserve", func(c *Config) { c.Restore.Preserve = []string{"../etc"} }},
		{"restore.preserve", func(c *Config) { c.Restore.Preserve = []string{"/abs"} }},
		{"service.manager", func(c *Config) { c.Service.Manager = "upstart" }},
		{"service.manager", func(c *Config) { c.Service.Manager = "command" }},
		{"service.stop_timeout", func(c *Config) { c.Service.StopTimeout = 0 }},
		{"health.consecutive", func(c *Config) { c.Health.Consecutive = 0 }},
		{"health.url", func(c *Config) { c.Health.URL = "ftp://x" }},
		{"journal", func(c *Config) { c.Journal = "" }},
		{"logs.source", func(c *Config) { c.Logs.Source = "syslog" }},
		{"logs.files", func(c *Config) { c.Logs.Files = "logs/*.log" }},
		{"logs.files", func(c *Config) { c.Logs.Files = "/var/log/[app.log" }},
		{"logs.files", func(c *Config) { c.Logs.Files = "" }},
		{"service.unit", func(c *Config) { c.Service.Manager, c.Logs.Source, c.Service.Unit = "pm2", "journald", "" }},
		{"service.pm2_name", func(c *Config) { c.Service.Manager, c.Logs.Source, c.Service.PM2Name = "systemd", "pm2", "" }},
		// the safety net inside what a rollback swaps away
		{"backup.dir", func(c *Config) { c.Backup.Dir = "/opt/claude-flow/backups" }},
		{"backup.dir", func(c *Config) { c.Backup.Dir = "/opt/claude-flow" }},
		{"backup.state", func(c *Config) { c.Backup.State = "/opt/claude-flow/.state/backups.json" }},
		{"database.backup_dir", func(c *Config) { c.Database.BackupDir = "/opt/claude-flow/./db" }},
		{"state_dir", func(c *Config) { c.StateDir = "/opt/claude-flow/state" }},
		{"journal", func(c *Config) { c.Journal = "/opt/claude-flow/journal.jsonl" }},
		{"lock", func(c *Config) { c.Lock = "/opt/claude-flow/run/lock" }},
		{"log_dir", func(c *Config) { c.LogDir = "/opt/claude-flow/logs/" }},
	}
	for _, tc := range cases {
		c := Defaults()
		tc.mod(&c)
		err := c.Validate()
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Key != tc.key || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want an InvalidError naming %s", tc.key, err, tc.key)
		}
		if err != nil && !strings.Contains(err.Error(), tc.key) {
			t.Errorf("message %q does not name %s", err, tc.key)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		dir, path string
		want      bool
	}{
		{"/opt/claude-flow", "/opt/claude-flow", true},
		{"/opt/claude-flow", "/opt/claude-flow/x", true},
		{"/opt/claude-flow/", "/opt/claude-flow/x/../y", true},
		{"/opt/claude-flow", "/opt/claude-flow-failed-1/x", false},
		{"/opt/claude-flow", "/opt/claude-flow.staging-1", false},
		{"/opt/claude-flow", "/opt", false},
		{"/opt/claude-flow", "/opt/claude-flow/../backups", false},
	} {
		if got := Within(c.dir, c.path); got != c.want {
			t.Errorf("Within(%q, %q) = %v", c.dir, c.path, got)
		}
	}
	// siblings of install_dir are fine (the default failed dir and staging are siblings)
	cfg := Defaults()
	cfg.Backup.Dir = "/opt/claude-flow-backups"
	if err := cfg.Validate(); err != nil {
		t.Errorf("a sibling backup dir refused: %v", err)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"100": 100, "1KiB": 1024, "2G": 2 << 30, "1.5MiB": 3 << 19, "10MB": 10_000_000} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1", "1XB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if s := ByteSize(256 << 30).String(); s != "256GiB" {
		t.Errorf("String() = %s", s)
	}
}
