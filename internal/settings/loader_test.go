package settings

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clearEnv unsets every CFROLLBACK_* variable for the test: the file and flags are under test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range append(Keys(), "config") {
		env := EnvVar(k)
		if _, ok := os.LookupEnv(env); ok {
			t.Setenv(env, "")
			os.Unsetenv(env)
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func flags(given map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := given[name]
		return v, ok
	}
}

// TestLoaderPrecedence: defaults < file < env < flags, and Source names each.
func TestLoaderPrecedence(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, "install_dir: /srv/file\nservice:\n  unit: file-unit\n  manager: pm2\nbackup:\n  max_age: 2w\n")
	t.Setenv("CFROLLBACK_SERVICE_UNIT", "env-unit")
	t.Setenv("CFROLLBACK_SERVICE_MANAGER", "systemd")
	l := &Loader{File: file, Flag: flags(map[string]string{"manager": "auto"})}
	cfg, err := l.Load(func(m string) { t.Errorf("unexpected warning %q", m) })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want, key, source string }{
		{cfg.InstallDir, "/srv/file", "install_dir", "file " + file},
		{cfg.Service.Unit, "env-unit", "service.unit", "env CFROLLBACK_SERVICE_UNIT"},
		{cfg.Service.Manager, "auto", "service.manager", "flag --manager"},
		{cfg.Backup.Pattern, Defaults().Backup.Pattern, "backup.pattern", "default"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.key, c.got, c.want)
		}
		if s := l.Source(c.key); s != c.source {
			t.Errorf("Source(%s) = %q, want %q", c.key, s, c.source)
		}
	}
	if cfg.Backup.MaxAge != 14*24*time.Hour {
		t.Errorf("backup.max_age 2w = %v", cfg.Backup.MaxAge)
	}
	if l.Used() != file || !l.InFile("install_dir") || l.InFile("journal") {
		t.Errorf("Used %q, InFile(install_dir) %v, InFile(journal) %v", l.Used(), l.InFile("install_dir"), l.InFile("journal"))
	}
	rows, err := l.Effective(cfg)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		if r.Key == "backup.max_age" {
			found = true
			if r.Value != "14d" || r.Source != "file "+file {
				t.Errorf("Effective backup.max_age = %+v, want 14d from the file", r)
			}
		}
	}
	if !found || len(rows) != len(Keys()) {
		t.Errorf("Effective: %d rows for %d keys, backup.max_age found %v", len(rows), len(Keys()), found)
	}
}

func TestLoaderFileErrors(t *testing.T) {
	clearEnv(t)
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := (&Loader{File: missing}).Load(func(string) {})
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "missing.yaml does not exist") {
		t.Errorf("missing file: %v", err)
	}
	_, err = (&Loader{File: writeFile(t, "service: [unclosed\n")}).Load(func(string) {})
	if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "settings file ") {
		t.Errorf("broken YAML: %v", err)
	}
	if errors.Is(err, ErrInvalid) {
		t.Errorf("a file error is not an invalid setting: %v", err)
	}
}

func TestLoaderUnknownKeyWarns(t *testing.T) {
	clearEnv(t)
	var warnings []string
	_, err := (&Loader{File: writeFile(t, "nonsense:\n  key: 1\n")}).Load(func(m string) { warnings = append(warnings, m) })
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "unknown setting nonsense.key") {
		t.Errorf("warnings %q", warnings)
	}
}

// TestLoaderInvalidShownAsTyped: a refused value names its key and shows the value as the
// file has it, not as YAML decoded it.
func TestLoaderInvalidShownAsTyped(t *testing.T) {
	clearEnv(t)
	for _, c := range []struct{ file, env, want string }{
		{file: "backup:\n  keep: 99999999999999999999\n", want: "setting backup.keep=99999999999999999999: out of range (at most 9223372036854775807)"},
		{file: "backup:\n  keep: 2.5\n", want: "setting backup.keep=2.5: not a whole number"},
		{env: "ten", want: "setting backup.keep=ten: not a whole number"},
		{file: "health:\n  timeout: soon\n", want: "setting health.timeout=soon: invalid duration"},
		{file: "backup:\n  max_size: lots\n", want: "backup.max_size"},
	} {
		l := &Loader{File: writeFile(t, c.file)}
		if c.env != "" {
			t.Setenv("CFROLLBACK_BACKUP_KEEP", c.env)
		}
		_, err := l.Load(func(string) {})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("file %q env %q: %v, want %q", c.file, c.env, err, c.want)
		}
		os.Unsetenv("CFROLLBACK_BACKUP_KEEP")
	}
}

func TestDefaultValueAndKeys(t *testing.T) {
	keys := Keys()
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Errorf("key %s listed twice", k)
		}
		seen[k] = true
	}
	for _, k := range []string{"install_dir", "backup.dir", "service.manager", "health.url", "notify.webhooks"} {
		if !seen[k] {
			t.Errorf("Keys() misses %s", k)
		}
	}
	for flag, key := range FlagKeys {
		if !seen[key] {
			t.Errorf("flag --%s sets %s, which is no key", flag, key)
		}
	}
	if got := DefaultValue("install_dir"); got != Defaults().InstallDir {
		t.Errorf("DefaultValue(install_dir) = %v", got)
	}
	if got := DefaultValue("backup.max_age"); got != Defaults().Backup.MaxAge.String() {
		t.Errorf("DefaultValue(backup.max_age) = %v, want the duration as text", got)
	}
	if EnvVar("backup.dir") != "CFROLLBACK_BACKUP_DIR" {
		t.Errorf("EnvVar(backup.dir) = %s", EnvVar("backup.dir"))
	}
}
