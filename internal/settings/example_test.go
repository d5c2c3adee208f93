package settings_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/viper"

	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// commentedSetting is a commented-out line of configs/config.yaml that holds YAML: "# key: value"
// or "#   - item" (a list under a commented key). Any other comment is prose.
var commentedSetting = regexp.MustCompile(`^(\s*)# (\s*(?:[a-z0-9_]+:(?:\s|$)|- ).*)$`)

// uncomment turns every commented-out setting of the example into a live one and drops prose.
func uncomment(example string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(example, "\n"), "\n") {
		if m := commentedSetting.FindStringSubmatch(line); m != nil {
			line = m[1] + m[2]
		} else if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func loadSettingsFile(t *testing.T, path string) (settings.Config, *settings.Loader, []string) {
	t.Helper()
	for _, k := range settings.Keys() {
		env := settings.EnvVar(k)
		if _, ok := os.LookupEnv(env); ok {
			t.Setenv(env, "")
			os.Unsetenv(env) // the file's values are under test, not the environment's
		}
	}
	s := &settings.Loader{File: path}
	var warnings []string
	cfg, err := s.Load(func(msg string) { warnings = append(warnings, msg) })
	if err != nil {
		t.Fatalf("%s does not load as a settings file: %v", path, err)
	}
	return cfg, s, warnings
}

// effective renders cfg as `cfrollback settings` shows it, one value per key.
func effective(t *testing.T, cfg settings.Config) *viper.Viper {
	t.Helper()
	v := viper.New()
	if err := v.MergeConfigMap(settings.AsMap(cfg)); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestConfigExampleHasEveryKey holds configs/config.yaml (installed as /etc/cfrollback/config.yaml)
// to its promise, "a commented example of every key": as shipped it loads without a warning and
// changes nothing; with its commented-out lines uncommented it still loads without a warning
// (no unknown or misspelt key), sets every key `cfrollback settings` shows, and each to its
// real default (a default changed in internal/settings and not here fails).
func TestConfigExampleHasEveryKey(t *testing.T) {
	example := filepath.Join(testenv.RepoRoot(t), "configs", "config.yaml")
	raw, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	// The defaults as `cfrollback settings` shows them with an empty settings file (some are
	// derived from others when they are not set, as backup.state from state_dir).
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defCfg, _, _ := loadSettingsFile(t, empty)
	def := effective(t, defCfg)

	shippedCfg, _, shippedWarnings := loadSettingsFile(t, example)
	if len(shippedWarnings) != 0 {
		t.Errorf("configs/config.yaml as shipped loads with warnings: %q", shippedWarnings)
	}
	shipped := effective(t, shippedCfg)
	for _, k := range settings.Keys() {
		if got, want := fmt.Sprint(shipped.Get(k)), fmt.Sprint(def.Get(k)); got != want {
			t.Errorf("configs/config.yaml as shipped sets %s=%s; it must leave every key at its default %s", k, got, want)
		}
	}

	live := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(live, []byte(uncomment(string(raw))), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, s, warnings := loadSettingsFile(t, live)
	if len(warnings) != 0 {
		t.Errorf("configs/config.yaml uncommented loads with warnings: %q", warnings)
	}
	got := effective(t, cfg)
	for _, k := range settings.Keys() {
		if !s.InFile(k) {
			t.Errorf("setting %s is missing from configs/config.yaml: add it, commented out, with its default (%v) and a comment", k, def.Get(k))
			continue
		}
		if g, w := fmt.Sprint(got.Get(k)), fmt.Sprint(def.Get(k)); g != w {
			t.Errorf("configs/config.yaml shows %s: %s, but its default is %s", k, g, w)
		}
	}
}

// TestUncomment checks the helper the test above relies on: it must find a missing key, so a
// commented-out key is recognised and prose is not.
func TestUncomment(t *testing.T) {
	in := "# Prose, e.g. CFROLLBACK_X=1 (a comment never starts with \"word:\")\n# install_dir: /x   # why\nbackup:\n  # keep: 3\n  #      # more prose\n# databases:\n#   - {name: a, path: b}\n"
	want := "install_dir: /x   # why\nbackup:\n  keep: 3\ndatabases:\n  - {name: a, path: b}\n"
	if got := uncomment(in); got != want {
		t.Fatalf("uncomment:\n%s\nwant:\n%s", got, want)
	}
}
