package settings

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Config is the effective settings of one cfrollback invocation.
type Config struct {
	InstallDir       string         `mapstructure:"install_dir" json:"install_dir"`
	FailedDirPattern string         `mapstructure:"failed_dir_pattern" json:"failed_dir_pattern"`
	Backup           BackupConfig   `mapstructure:"backup" json:"backup"`
	Restore          RestoreConfig  `mapstructure:"restore" json:"restore"`
	Standby          StandbyConfig  `mapstructure:"standby" json:"standby"`
	Service          ServiceConfig  `mapstructure:"service" json:"service"`
	Health           HealthConfig   `mapstructure:"health" json:"health"`
	Databases        []DatabaseRef  `mapstructure:"databases" json:"databases"`
	Database         DatabaseConfig `mapstructure:"database" json:"database"`
	// AppConfig is the app's own config file; empty means
	// <install_dir>/config.json, falling back to claude-flow.config.json.
	AppConfig string `mapstructure:"app_config" json:"app_config"`
	// AgentsDir holds the app's agent definitions; empty means
	// <install_dir>/.claude/agents.
	AgentsDir string        `mapstructure:"agents_dir" json:"agents_dir"`
	Version   VersionConfig `mapstructure:"version" json:"version"`
	Notify    NotifyConfig  `mapstructure:"notify" json:"notify"`
	// Logs says where the service's own log lines are (logs, verify, monitor, baseline).
	Logs LogsConfig `mapstructure:"logs" json:"logs"`
	// Deploy is `cfrollback deploy`'s gate (deploy.go).
	Deploy DeployConfig `mapstructure:"deploy" json:"deploy"`
	// Guard is when `cfrollback guard` rolls back by itself (docs/GUARD.md).
	Guard GuardConfig `mapstructure:"guard" json:"guard"`
	// StateDir keeps monitor samples and the recorded baseline.
	StateDir string `mapstructure:"state_dir" json:"state_dir"`
	Journal  string `mapstructure:"journal" json:"journal"`
	Lock     string `mapstructure:"lock" json:"lock"`
	LogDir   string `mapstructure:"log_dir" json:"log_dir"`
}

// BackupConfig says where backups live and what their file names look like.
type BackupConfig struct {
	Dir     string `mapstructure:"dir" json:"dir"`
	Pattern string `mapstructure:"pattern" json:"pattern"`
	// MaxSize bounds the uncompressed bytes one restore may write.
	MaxSize ByteSize `mapstructure:"max_size" json:"max_size"`
	// Exclude are globs (relative to install_dir) left out of backups.
	Exclude []string `mapstructure:"exclude" json:"exclude"`
	// Keep and MaxAge are prune's defaults: keep at least Keep backups,
	// delete those older than MaxAge (the seed's deployment guide: 7 days).
	Keep   int           `mapstructure:"keep" json:"keep"`
	MaxAge time.Duration `mapstructure:"max_age" json:"max_age"`
	// State is the catalog of verification results and good/bad marks;
	// empty means <state_dir>/backups.json (see DefaultBackupState).
	State string `mapstructure:"state" json:"state"`
}

// DatabaseRef is one SQLite database of the app. A relative Path is
// relative to install_dir.
type DatabaseRef struct {
	Name string `mapstructure:"name" json:"name"`
	Path string `mapstructure:"path" json:"path"`
}

// VersionConfig holds the command templates of rollback --to-version:
// {version}, {from} and {to} are replaced, values shell-quoted.
type VersionConfig struct {
	InstallCommand string `mapstructure:"install_command" json:"install_command"`
	MigrateCommand string `mapstructure:"migrate_command" json:"migrate_command"`
	ExportCommand  string `mapstructure:"export_command" json:"export_command"`
	ImportCommand  string `mapstructure:"import_command" json:"import_command"`
}

// NotifyConfig says who hears about rollbacks.
type NotifyConfig struct {
	Webhooks []Webhook     `mapstructure:"webhooks" json:"webhooks"`
	Timeout  time.Duration `mapstructure:"timeout" json:"timeout"`
	Retries  int           `mapstructure:"retries" json:"retries"`
}

// Webhook is one notification target. Kind is generic (cfrollback's JSON),
// slack (Slack-compatible {"text": ...}) or statuspage (an incident).
type Webhook struct {
	Name string `mapstructure:"name" json:"name"`
	URL  string `mapstructure:"url" json:"url"`
	Kind string `mapstructure:"kind" json:"kind"`
}

// LogsConfig says where the service writes its log lines.
type LogsConfig struct {
	// Source is auto (journald for a systemd unit, pm2's log files for a pm2 app, else
	// Files), journald (the journal of service.unit), pm2 (the files 'pm2 jlist' names for
	// service.pm2_name) or files.
	Source string `mapstructure:"source" json:"source"`
	// Files is a glob of plain log files: source files, and auto's last resort.
	Files string `mapstructure:"files" json:"files"`
}

// GuardConfig is cfrollback guard's policy: which severities of the decision
// matrix roll back, after how many evaluations in a row, and how often at most.
type GuardConfig struct {
	// Act are the severities that roll back (P0, P1); others are only watched.
	Act []string `mapstructure:"act" json:"act"`
	// Consecutive evaluations must reach an acting severity before guard acts.
	Consecutive int           `mapstructure:"consecutive" json:"consecutive"`
	Interval    time.Duration `mapstructure:"interval" json:"interval"`
	// Requests to health.url per evaluation (the response time and "every request failed").
	Requests int `mapstructure:"requests" json:"requests"`
	// Cooldown is the least time between two of guard's decisions to act (acted,
	// would have acted, limit reached): a condition that persists is not re-announced sooner.
	Cooldown time.Duration `mapstructure:"cooldown" json:"cooldown"`
	// MaxRollbacks within Window: once reached, guard only notifies (no rollback storm).
	MaxRollbacks int           `mapstructure:"max_rollbacks" json:"max_rollbacks"`
	Window       time.Duration `mapstructure:"window" json:"window"`
	// Grace after guard's own rollback: samples taken then are no evidence, so a
	// rollback's own start-up is never rolled back again.
	Grace time.Duration `mapstructure:"grace" json:"grace"`
}

// DatabaseConfig holds the settings of the database commands.
type DatabaseConfig struct {
	// BackupDir is outside install_dir so a rollback never hides it.
	BackupDir   string        `mapstructure:"backup_dir" json:"backup_dir"`
	BusyTimeout time.Duration `mapstructure:"busy_timeout" json:"busy_timeout"`
}

// RestoreConfig says how a backup becomes the install dir.
type RestoreConfig struct {
	// Mode is "replace" (exactly the backup plus preserved paths) or
	// "overlay" (the seed's tar -xzf --overwrite: backup wins, files the
	// backup lacks are kept).
	Mode     string   `mapstructure:"mode" json:"mode"`
	Preserve []string `mapstructure:"preserve" json:"preserve"`
	// Owner is "user:group" or numeric "uid:gid" for restored files; empty
	// means the owner of the install dir being replaced.
	Owner string `mapstructure:"owner" json:"owner"`
}

// StandbyConfig is the warm standby: the backup an emergency would restore, kept extracted
// and sealed next to the install so that an emergency renames it in instead of extracting.
type StandbyConfig struct {
	// Enabled keeps the standby up to date (after backup create, after a rollback that
	// ended healthy) and lets emergency use it.
	Enabled bool `mapstructure:"enabled" json:"enabled"`
	// Dir is where it is kept: a sibling of install_dir on the same filesystem; empty
	// means <install_dir>.standby (see StandbyPath).
	Dir string `mapstructure:"dir" json:"dir"`
	// ReadOnlyMount bind-mounts a sealed standby onto itself read-only: no write can go
	// through its path, and emergency proves it unchanged in a few syscalls instead of a
	// stat walk of every entry (which it falls back to when the mount is gone).
	ReadOnlyMount bool `mapstructure:"read_only_mount" json:"read_only_mount"`
}

// ServiceConfig names the service and how to drive it.
type ServiceConfig struct {
	Manager       string        `mapstructure:"manager" json:"manager"`
	Unit          string        `mapstructure:"unit" json:"unit"`
	PM2Name       string        `mapstructure:"pm2_name" json:"pm2_name"`
	PM2Home       string        `mapstructure:"pm2_home" json:"pm2_home"`
	PM2Bin        string        `mapstructure:"pm2_bin" json:"pm2_bin"`
	StartCommand  string        `mapstructure:"start_command" json:"start_command"`
	StopCommand   string        `mapstructure:"stop_command" json:"stop_command"`
	StatusCommand string        `mapstructure:"status_command" json:"status_command"`
	StopTimeout   time.Duration `mapstructure:"stop_timeout" json:"stop_timeout"`
	StartTimeout  time.Duration `mapstructure:"start_timeout" json:"start_timeout"`
}

// HealthConfig says how to tell that the service is healthy.
type HealthConfig struct {
	URL         string        `mapstructure:"url" json:"url"`
	Timeout     time.Duration `mapstructure:"timeout" json:"timeout"`
	Interval    time.Duration `mapstructure:"interval" json:"interval"`
	Consecutive int           `mapstructure:"consecutive" json:"consecutive"`
	// WaitTimeout bounds the whole wait-until-healthy after a start.
	WaitTimeout time.Duration `mapstructure:"wait_timeout" json:"wait_timeout"`
}

// Defaults is the Claude Flow profile from the seed runbook.
func Defaults() Config {
	return Config{
		InstallDir:       "/opt/claude-flow",
		FailedDirPattern: "{install}-failed-{ts}",
		Backup: BackupConfig{
			Dir:     "/var/backups/claude-flow",
			Pattern: "backup-*.tar.gz",
			MaxSize: 256 << 30,
			Exclude: []string{"logs", "*.log", ".cache", "node_modules/.cache", "tmp"},
			Keep:    10,
			MaxAge:  7 * 24 * time.Hour,
			// State is empty: DefaultBackupState(state_dir), filled in by Validate.
		},
		// What the real claude-flow keeps in SQLite (docs/CLAUDE_FLOW.md): the hooks'
		// memory and the hive mind's agents, swarms, tasks and messages. The runbook's
		// config.db does not exist in the app.
		Databases: []DatabaseRef{
			{Name: "memory", Path: ".swarm/memory.db"},
			{Name: "hive", Path: ".hive-mind/hive.db"},
		},
		Database: DatabaseConfig{
			BackupDir:   "/var/backups/claude-flow/db",
			BusyTimeout: 5 * time.Second,
		},
		Restore: RestoreConfig{
			Mode: "replace",
			// Everything the real app writes while it runs (docs/CLAUDE_FLOW.md): the
			// SQLite memory, the hive mind, `memory store`'s JSON store, coordination
			// state and metrics; and backups/, where the runbook's database procedure
			// keeps memory-backup-*.db (the app itself does not write it). Code,
			// node_modules, CLAUDE.md and .claude/ come from the backup.
			Preserve: []string{".swarm", ".hive-mind", "memory", "coordination", ".claude-flow", "backups"},
		},
		Standby: StandbyConfig{Enabled: true, ReadOnlyMount: true},
		Service: ServiceConfig{
			Manager:      "auto",
			Unit:         "claude-flow",
			PM2Name:      "claude-flow-assistant",
			PM2Bin:       "pm2",
			StopTimeout:  30 * time.Second,
			StartTimeout: 30 * time.Second,
		},
		Health: HealthConfig{
			// `claude-flow start --ui` serves GET /api/health (200 {"status":"ok"}) from
			// its web server; it has no /health (404). The process outlives a web
			// server that failed to start, so "service active" alone is no proof.
			URL:         "http://127.0.0.1:3000/api/health",
			Timeout:     2 * time.Second,
			Interval:    500 * time.Millisecond,
			Consecutive: 3,
			WaitTimeout: 60 * time.Second,
		},
		// A host install is an npm prefix (node_modules in install_dir), not npm -g.
		Version: VersionConfig{InstallCommand: "npm install --prefix {install_dir} --save-exact --no-audit --no-fund claude-flow@{version}"},
		Notify:  NotifyConfig{Timeout: 5 * time.Second, Retries: 3},
		Logs:    LogsConfig{Source: "auto", Files: "/var/log/claude-flow/*.log"},
		Deploy:  DefaultDeploy(),
		Guard: GuardConfig{Act: []string{"P0"}, Consecutive: 3, Interval: 10 * time.Second, Requests: 5,
			Cooldown: 5 * time.Minute, MaxRollbacks: 2, Window: time.Hour, Grace: 2 * time.Minute},
		StateDir: "/var/lib/cfrollback",
		Journal:  "/var/log/cfrollback/journal.jsonl",
		Lock:     "/run/cfrollback/cfrollback.lock",
		LogDir:   "/var/log",
	}
}

// InvalidError names the setting that is wrong.
type InvalidError struct {
	Key    string
	Value  any
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("setting %s=%v: %s", e.Key, e.Value, e.Reason)
}

// ErrInvalid matches every *InvalidError.
var ErrInvalid = errors.New("invalid setting")

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// DefaultBackupState is backup.state when it is not set: in state_dir, so that
// a settings file that moves state_dir moves the marks along with the rest.
func DefaultBackupState(stateDir string) string {
	return filepath.Join(stateDir, "backups.json")
}

// Validate checks every setting and returns the first problem, key named.
// It fills in backup.state when it is empty (DefaultBackupState).
func (c *Config) Validate() error {
	if c.Backup.State == "" && filepath.IsAbs(c.StateDir) {
		c.Backup.State = DefaultBackupState(c.StateDir)
	}
	bad := func(key string, v any, reason string) error { return &InvalidError{Key: key, Value: v, Reason: reason} }
	absPath := func(key, p string) error {
		if p == "" {
			return bad(key, p, "must not be empty")
		}
		if !filepath.IsAbs(p) {
			return bad(key, p, "must be an absolute path")
		}
		if strings.ContainsRune(p, 0) {
			return bad(key, strings.ReplaceAll(p, "\x00", `\0`), "must not contain a NUL byte (no file can be named so)")
		}
		return nil
	}
	for _, kv := range []struct{ k, v string }{
		{"install_dir", c.InstallDir}, {"backup.dir", c.Backup.Dir}, {"state_dir", c.StateDir}, {"backup.state", c.Backup.State},
		{"database.backup_dir", c.Database.BackupDir}, {"journal", c.Journal},
		{"lock", c.Lock}, {"log_dir", c.LogDir},
	} {
		if err := absPath(kv.k, kv.v); err != nil {
			return err
		}
	}
	if filepath.Clean(c.InstallDir) == "/" {
		return bad("install_dir", c.InstallDir, "must not be the root directory")
	}
	// What a rollback must never take away with the failed install: a swap moves install_dir
	// (and everything under it) to the failed dir, and a restore replaces it with the backup.
	for _, kv := range []struct{ k, v, def string }{
		{"backup.dir", c.Backup.Dir, "/var/backups/claude-flow"}, {"state_dir", c.StateDir, "/var/lib/cfrollback"},
		{"backup.state", c.Backup.State, "/var/lib/cfrollback/backups.json"}, {"database.backup_dir", c.Database.BackupDir, "/var/backups/claude-flow/db"},
		{"journal", c.Journal, "/var/log/cfrollback/journal.jsonl"}, {"lock", c.Lock, "/run/cfrollback/cfrollback.lock"}, {"log_dir", c.LogDir, "/var/log"},
	} {
		if Within(c.InstallDir, kv.v) {
			return bad(kv.k, kv.v, fmt.Sprintf("is inside install_dir (%s): a rollback swaps install_dir away and would take it along; put it outside, e.g. %s", c.InstallDir, kv.def))
		}
	}
	if c.Standby.Dir != "" {
		if err := absPath("standby.dir", c.Standby.Dir); err != nil {
			return err
		}
		sd := filepath.Clean(c.Standby.Dir)
		if Within(c.InstallDir, sd) || Within(sd, c.InstallDir) {
			return bad("standby.dir", c.Standby.Dir, fmt.Sprintf("must be outside install_dir (%s) and not contain it; leave it empty for %s.standby", c.InstallDir, filepath.Clean(c.InstallDir)))
		}
		if sd == "/" {
			return bad("standby.dir", c.Standby.Dir, "must not be the root directory")
		}
	}
	if !strings.Contains(c.FailedDirPattern, "{ts}") {
		return bad("failed_dir_pattern", c.FailedDirPattern, "must contain {ts} so every run gets its own failed dir")
	}
	if fd := c.FailedDir(time.Unix(0, 0)); filepath.Dir(fd) != filepath.Dir(filepath.Clean(c.InstallDir)) {
		return bad("failed_dir_pattern", c.FailedDirPattern, "must name a sibling of install_dir (same parent directory) so the swap is a rename")
	}
	if c.Backup.Pattern == "" || strings.Contains(c.Backup.Pattern, "/") {
		return bad("backup.pattern", c.Backup.Pattern, "must be a file name glob such as backup-*.tar.gz")
	}
	if _, err := filepath.Match(c.Backup.Pattern, "x"); err != nil {
		return bad("backup.pattern", c.Backup.Pattern, err.Error())
	}
	if c.Backup.MaxSize <= 0 {
		return bad("backup.max_size", c.Backup.MaxSize, "must be positive")
	}
	if c.Backup.Keep < 1 {
		return bad("backup.keep", c.Backup.Keep, "must be at least 1")
	}
	if c.Backup.MaxAge <= 0 {
		return bad("backup.max_age", c.Backup.MaxAge, "must be a positive duration such as 168h")
	}
	seen := map[string]bool{}
	for _, d := range c.Databases {
		if d.Name == "" || d.Path == "" || seen[d.Name] {
			return bad("databases", d, "each entry needs a unique name and a path")
		}
		seen[d.Name] = true
	}
	for _, w := range c.Notify.Webhooks {
		u, err := url.Parse(w.URL)
		if w.Name == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("notify.webhooks", w.Name, "each webhook needs a name and an http(s) url")
		}
		switch w.Kind {
		case "", "generic", "slack", "statuspage":
		default:
			return bad("notify.webhooks", w.Name, "kind must be generic, slack or statuspage")
		}
	}
	if c.Notify.Timeout <= 0 {
		return bad("notify.timeout", c.Notify.Timeout, "must be a positive duration such as 5s")
	}
	if c.Notify.Retries < 0 {
		return bad("notify.retries", c.Notify.Retries, "must be at least 0")
	}
	for _, kv := range []struct{ k, v string }{{"app_config", c.AppConfig}, {"agents_dir", c.AgentsDir}} {
		if kv.v != "" && !filepath.IsAbs(kv.v) {
			return bad(kv.k, kv.v, "must be an absolute path, or empty for the default under install_dir")
		}
		if kv.v != "" {
			if err := absPath(kv.k, kv.v); err != nil {
				return err
			}
		}
	}
	if c.Database.BusyTimeout <= 0 {
		return bad("database.busy_timeout", c.Database.BusyTimeout, "must be a positive duration such as 5s")
	}
	switch c.Restore.Mode {
	case "replace", "overlay":
	default:
		return bad("restore.mode", c.Restore.Mode, "must be replace or overlay")
	}
	for _, p := range c.Restore.Preserve {
		cl := filepath.Clean(p)
		if p == "" || filepath.IsAbs(p) || cl == "." || cl == ".." || strings.HasPrefix(cl, "../") {
			return bad("restore.preserve", p, "each entry must be a path relative to install_dir, inside it")
		}
	}
	switch c.Service.Manager {
	case "auto", "systemd", "pm2":
	case "command":
		if c.Service.StartCommand == "" || c.Service.StopCommand == "" || c.Service.StatusCommand == "" {
			return bad("service.manager", c.Service.Manager, "command needs service.start_command, service.stop_command and service.status_command")
		}
	default:
		return bad("service.manager", c.Service.Manager, "must be auto, systemd, pm2 or command")
	}
	if (c.Service.Manager == "auto" || c.Service.Manager == "systemd") && c.Service.Unit == "" {
		return bad("service.unit", c.Service.Unit, "must not be empty")
	}
	if (c.Service.Manager == "auto" || c.Service.Manager == "pm2") && c.Service.PM2Name == "" {
		return bad("service.pm2_name", c.Service.PM2Name, "must not be empty")
	}
	for _, kv := range []struct {
		k string
		d time.Duration
	}{
		{"service.stop_timeout", c.Service.StopTimeout}, {"service.start_timeout", c.Service.StartTimeout},
		{"health.timeout", c.Health.Timeout}, {"health.interval", c.Health.Interval},
		{"health.wait_timeout", c.Health.WaitTimeout},
	} {
		if kv.d <= 0 {
			return bad(kv.k, kv.d, "must be a positive duration such as 30s")
		}
	}
	switch c.Logs.Source {
	case "auto", "journald", "pm2", "files":
	default:
		return bad("logs.source", c.Logs.Source, "must be auto, journald, pm2 or files")
	}
	if c.Logs.Source == "journald" && c.Service.Unit == "" {
		return bad("service.unit", c.Service.Unit, "must name the unit whose journal logs.source journald reads")
	}
	if c.Logs.Source == "pm2" && c.Service.PM2Name == "" {
		return bad("service.pm2_name", c.Service.PM2Name, "must name the app whose log files logs.source pm2 reads")
	}
	if err := absPath("logs.files", c.Logs.Files); err != nil {
		return err
	}
	if _, err := filepath.Match(c.Logs.Files, "x"); err != nil {
		return bad("logs.files", c.Logs.Files, "must be a glob of the service's log files: "+err.Error())
	}
	if err := c.Deploy.validate(); err != nil {
		return err
	}
	if err := c.Guard.validate(); err != nil {
		return err
	}
	if c.Health.Consecutive < 1 {
		return bad("health.consecutive", c.Health.Consecutive, "must be at least 1")
	}
	if c.Health.URL != "" {
		u, err := url.Parse(c.Health.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("health.url", c.Health.URL, "must be an http:// or https:// URL, or empty to rely on the service manager alone")
		}
	}
	return nil
}

// Within reports whether path is dir or below it, comparing the cleaned paths (settings are
// checked as written; a symlink is not followed).
func Within(dir, path string) bool {
	d, p := filepath.Clean(dir), filepath.Clean(path)
	return p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/")
}

// DatabasePath resolves a database's path against install_dir.
func (c *Config) DatabasePath(d DatabaseRef) string {
	if filepath.IsAbs(d.Path) {
		return filepath.Clean(d.Path)
	}
	return filepath.Join(c.InstallDir, d.Path)
}

// AppConfigPaths are the app config files to try, in order.
func (c *Config) AppConfigPaths() []string {
	if c.AppConfig != "" {
		return []string{c.AppConfig}
	}
	return []string{filepath.Join(c.InstallDir, "config.json"), filepath.Join(c.InstallDir, "claude-flow.config.json")}
}

// AgentsPath is agents_dir, or its default under install_dir.
func (c *Config) AgentsPath() string {
	if c.AgentsDir != "" {
		return c.AgentsDir
	}
	return filepath.Join(c.InstallDir, ".claude", "agents")
}

// StandbyPath is standby.dir, or its default <install_dir>.standby.
func (c *Config) StandbyPath() string {
	if c.Standby.Dir != "" {
		return filepath.Clean(c.Standby.Dir)
	}
	return filepath.Clean(c.InstallDir) + ".standby"
}

// TimestampLayout is the seed's `date +%Y%m%d-%H%M%S`.
const TimestampLayout = "20060102-150405"

// FailedDir renders failed_dir_pattern for a run that started at t.
func (c *Config) FailedDir(t time.Time) string {
	s := strings.ReplaceAll(c.FailedDirPattern, "{install}", filepath.Clean(c.InstallDir))
	return filepath.Clean(strings.ReplaceAll(s, "{ts}", t.Format(TimestampLayout)))
}

func (g GuardConfig) validate() error {
	bad := func(key string, v any, reason string) error {
		return &InvalidError{Key: "guard." + key, Value: v, Reason: reason}
	}
	if len(g.Act) == 0 {
		return bad("act", g.Act, "name the severities that roll back: P0, or P0,P1 (to only watch, run 'cfrollback guard --dry-run')")
	}
	for _, s := range g.Act {
		if s != "P0" && s != "P1" {
			return bad("act", s, "must be P0 or P1: P2 and P3 are scheduled rollbacks a person decides on")
		}
	}
	switch {
	case g.Consecutive < 1:
		return bad("consecutive", g.Consecutive, "must be at least 1")
	case g.Interval < 100*time.Millisecond:
		return bad("interval", g.Interval, "must be at least 100ms, e.g. 10s")
	case g.Requests < 1 || g.Requests > 100:
		return bad("requests", g.Requests, "must be 1 to 100")
	case g.Cooldown < 0:
		return bad("cooldown", g.Cooldown, "must be 0 or a positive duration such as 5m")
	case g.MaxRollbacks < 1:
		return bad("max_rollbacks", g.MaxRollbacks, "must be at least 1 (to never roll back, run 'cfrollback guard --dry-run')")
	case g.Window <= 0:
		return bad("window", g.Window, "must be a positive duration such as 1h")
	case g.Grace < 0:
		return bad("grace", g.Grace, "must be 0 or a positive duration such as 2m")
	}
	return nil
}
