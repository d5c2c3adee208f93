package cli

import (
	"bytes"
	"errors"
	"fmt"
	"go.yaml.in/yaml/v3"
	"io/fs"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// DefaultConfigFile is read when present and --config is not given.
const DefaultConfigFile = "/etc/cfrollback/config.yaml"

// flagKeys are the settings that have a global flag of their own.
var flagKeys = map[string]string{
	"install-dir": "install_dir",
	"backup-dir":  "backup.dir",
	"manager":     "service.manager",
	"health-url":  "health.url",
}

type settingsLoader struct {
	file  string
	flags *pflag.FlagSet
	v     *viper.Viper
	used  string // the file actually read
	raw   []byte // its content
}

func newSettingsLoader() *settingsLoader { return &settingsLoader{} }

func (s *settingsLoader) bindFlags(fs *pflag.FlagSet) {
	s.flags = fs
	fs.String("install-dir", "", "the service's install dir (setting install_dir)")
	fs.String("backup-dir", "", "where backup-*.tar.gz live (setting backup.dir)")
	fs.String("manager", "", "auto, systemd, pm2 or command (setting service.manager)")
	fs.String("health-url", "", "URL that answers 2xx when healthy (setting health.url)")
}

// keys lists every setting, as dotted viper keys, from the Config struct.
func keys() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			k := prefix + f.Tag.Get("mapstructure")
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				walk(f.Type, k+".")
				continue
			}
			out = append(out, k)
		}
	}
	walk(reflect.TypeOf(settings.Config{}), "")
	return out
}

func defaultValue(key string) any {
	v := reflect.ValueOf(settings.Defaults())
	for _, part := range strings.Split(key, ".") {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).Tag.Get("mapstructure") == part {
				v = v.Field(i)
				break
			}
		}
	}
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case settings.ByteSize:
		return x.String()
	default:
		return x
	}
}

// Load builds the effective Config: defaults < file < CFROLLBACK_* env < flags.
func (s *settingsLoader) Load(warn func(string)) (settings.Config, error) {
	v := viper.New()
	s.v = v
	for _, k := range keys() {
		v.SetDefault(k, defaultValue(k))
	}
	v.SetEnvPrefix("CFROLLBACK")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	// CFROLLBACK_HEALTH_URL= must be able to switch the URL check off.
	v.AllowEmptyEnv(true)
	file := s.file
	if file == "" {
		file = os.Getenv("CFROLLBACK_CONFIG")
	}
	if file == "" {
		if _, err := os.Stat(DefaultConfigFile); err == nil {
			file = DefaultConfigFile
		}
	}
	if file != "" {
		v.SetConfigType("yaml")
		// Read here, bounded and regular files only: viper would read a FIFO or /dev/zero
		// until it hangs or runs out of memory.
		b, err := fsutil.ReadFile(file, fsutil.MaxSmallFile)
		if errors.Is(err, fs.ErrNotExist) {
			return settings.Config{}, usageErrorf("settings file %s does not exist", file)
		}
		if err != nil {
			return settings.Config{}, usageErrorf("settings file: %v", err) // err names the file
		}
		if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
			return settings.Config{}, usageErrorf("settings file %s: %v", file, err)
		}
		s.used, s.raw = file, b
		known := map[string]bool{}
		for _, k := range keys() {
			known[k] = true
		}
		for _, k := range v.AllKeys() {
			if !known[k] && v.InConfig(k) {
				warn(fmt.Sprintf("unknown setting %s in %s (ignored)", k, file))
			}
		}
	}
	if s.flags != nil {
		for flag, key := range flagKeys {
			if f := s.flags.Lookup(flag); f != nil && f.Changed {
				v.Set(key, f.Value.String())
			}
		}
	}
	var cfg settings.Config
	hook := mapstructure.ComposeDecodeHookFunc(
		durationHook,
		mapstructure.StringToSliceHookFunc(","),
		wholeNumberHook,
		byteSizeHook,
	)
	if err := v.Unmarshal(&cfg, viper.DecodeHook(hook)); err != nil {
		key := keyFromDecodeError(err)
		return cfg, s.asTyped(&settings.InvalidError{Key: key, Value: v.Get(key), Reason: decodeReason(err)}, s.raw)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, s.asTyped(err, s.raw)
	}
	return cfg, nil
}

// wholeNumberHook refuses a YAML number that an integer setting cannot hold as written: YAML
// reads 99999999999999999999 as a float, which a plain conversion wraps to
// -9223372036854775808, and 2.5 would silently become 2.
func wholeNumberHook(_, to reflect.Type, data any) (any, error) {
	if str, ok := data.(string); ok && str != "" && isInt(to.Kind()) && to.PkgPath() == "" { // int, not ByteSize or Duration
		// an environment variable, a flag, or a quoted YAML value: "ten" is not a number
		n, err := strconv.ParseInt(strings.TrimSpace(str), 10, to.Bits())
		if errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("out of range (at most %d)", int64(math.MaxInt64>>(64-to.Bits())))
		}
		if err != nil {
			return nil, errors.New("not a whole number")
		}
		return n, nil
	}
	f, ok := data.(float64)
	if !ok {
		return data, nil
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8:
	default:
		return data, nil
	}
	if f != math.Trunc(f) {
		return nil, errors.New("not a whole number")
	}
	bits := to.Bits()
	if f >= math.Ldexp(1, bits-1) || f < -math.Ldexp(1, bits-1) {
		return nil, fmt.Errorf("out of range (at most %d)", int64(math.MaxInt64>>(64-bits)))
	}
	return int64(f), nil
}

// durationHook reads a duration setting as the duration flags do (ui.ParseDuration): 7d and
// 2w as well as 36h.
func durationHook(_, to reflect.Type, data any) (any, error) {
	str, ok := data.(string)
	if !ok || to != reflect.TypeOf(time.Duration(0)) {
		return data, nil
	}
	return ui.ParseDuration(str)
}

func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8:
		return true
	}
	return false
}

// asTyped shows a refused setting's value as the settings file has it: YAML reads
// 99999999999999999999 as the float 1e+20, which is not what was typed. Only for a key
// whose value came from the file.
func (s *settingsLoader) asTyped(err error, file []byte) error {
	var ie *settings.InvalidError
	if !errors.As(err, &ie) || !strings.HasPrefix(s.Source(ie.Key), "file ") {
		return err
	}
	if raw, ok := yamlScalar(file, ie.Key); ok {
		if strings.IndexFunc(raw, unicode.IsControl) >= 0 {
			raw = strconv.Quote(raw) // a NUL or an escape sequence is shown, not sent to the terminal
		}
		ie.Value = raw
	}
	return err
}

// yamlScalar returns the text of the scalar at the dotted key in a YAML document.
func yamlScalar(doc []byte, key string) (string, bool) {
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil || len(root.Content) == 0 {
		return "", false
	}
	n := root.Content[0]
	for _, part := range strings.Split(key, ".") {
		if n.Kind != yaml.MappingNode {
			return "", false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if strings.EqualFold(n.Content[i].Value, part) {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return "", false
		}
		n = next
	}
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	return n.Value, true
}

func byteSizeHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(settings.ByteSize(0)) {
		return data, nil
	}
	switch x := data.(type) {
	case string:
		return settings.ParseByteSize(x)
	case int:
		return settings.ByteSize(x), nil
	case int64:
		return settings.ByteSize(x), nil
	case float64:
		return settings.ByteSize(x), nil
	}
	return data, nil
}

func keyFromDecodeError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "'"); i >= 0 {
		if j := strings.Index(msg[i+1:], "'"); j >= 0 {
			return msg[i+1 : i+1+j]
		}
	}
	return "(settings)"
}

// decodeReason keeps the last line of a mapstructure error, without the key
// (InvalidError names it) or Go's package prefix: "invalid duration".
func decodeReason(err error) string {
	msg := strings.TrimSpace(err.Error())
	if i := strings.LastIndex(msg, "\n"); i >= 0 {
		msg = msg[i+1:]
	}
	if i := strings.LastIndex(msg, "' "); i >= 0 {
		msg = msg[i+2:]
	}
	msg = strings.TrimPrefix(msg, "time: ")
	return strings.ReplaceAll(msg, `"`, "")
}

// Source says where the effective value of key came from.
func (s *settingsLoader) Source(key string) string {
	if s.flags != nil {
		for flag, k := range flagKeys {
			if k == key {
				if f := s.flags.Lookup(flag); f != nil && f.Changed {
					return "flag --" + flag
				}
			}
		}
	}
	env := "CFROLLBACK_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
	if _, ok := os.LookupEnv(env); ok {
		return "env " + env
	}
	if s.v != nil && s.used != "" && s.v.InConfig(key) {
		return "file " + s.used
	}
	return "default"
}

// loadConfig is what every command calls first.
func (f *Factory) loadConfig() (settings.Config, error) {
	return f.Settings.Load(func(msg string) {
		f.IO.Warnf("%s", msg)
	})
}

type settingRow struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`
}

func newSettingsCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "settings",
		Short: "Print the effective settings and where each came from",
		Long: `Print every setting cfrollback will use and where its value came from:
default (the Claude Flow profile), file (--config, or /etc/cfrollback/config.yaml),
env (CFROLLBACK_<KEY> with dots as underscores, e.g. CFROLLBACK_BACKUP_DIR), or flag.` +
			exitStatusHelp("0  settings are valid", "2  a setting is invalid (the key is named)"),
		Example: `  cfrollback settings
  CFROLLBACK_INSTALL_DIR=/srv/app cfrollback settings --json
  cfrollback --config ./staging.yaml settings`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			return runSettings(f.IO, f.JSON, f.Settings, cfg)
		},
	}
}

func runSettings(io *ui.IO, asJSON bool, s *settingsLoader, cfg settings.Config) error {
	// Shown, never the credentials in them.
	cfg.Health.URL = appconfig.RedactURL(cfg.Health.URL)
	hooks := make([]settings.Webhook, len(cfg.Notify.Webhooks))
	for i, w := range cfg.Notify.Webhooks {
		w.URL = appconfig.RedactWebhookURL(w.URL)
		hooks[i] = w
	}
	cfg.Notify.Webhooks = hooks
	effective := viper.New()
	if err := effective.MergeConfigMap(structToMap(cfg)); err != nil {
		return err
	}
	ks := keys()
	sort.Strings(ks)
	rows := make([]settingRow, 0, len(ks))
	for _, k := range ks {
		rows = append(rows, settingRow{Key: k, Value: effective.Get(k), Source: s.Source(k)})
	}
	if asJSON {
		return ui.JSON(io.Out, map[string]any{"file": s.used, "settings": rows})
	}
	tb := ui.NewTable("KEY", "VALUE", "SOURCE")
	for _, r := range rows {
		tb.Row(r.Key, fmt.Sprint(r.Value), r.Source)
	}
	return tb.Render(io.Out)
}

// structToMap renders cfg with its mapstructure keys, durations as text.
func structToMap(cfg settings.Config) map[string]any {
	var walk func(v reflect.Value) map[string]any
	walk = func(v reflect.Value) map[string]any {
		m := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			k := f.Tag.Get("mapstructure")
			fv := v.Field(i)
			switch x := fv.Interface().(type) {
			case time.Duration:
				m[k] = ui.FormatDuration(x) // as it would be typed: 7d, not 168h0m0s
			case settings.ByteSize:
				m[k] = x.String()
			default:
				if fv.Kind() == reflect.Struct {
					m[k] = walk(fv)
				} else {
					m[k] = x
				}
			}
		}
		return m
	}
	return walk(reflect.ValueOf(cfg))
}
