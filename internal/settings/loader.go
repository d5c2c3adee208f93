package settings

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// DefaultFile is read when present and neither --config nor CFROLLBACK_CONFIG names another.
const DefaultFile = "/etc/cfrollback/config.yaml"

// FlagKeys are the settings that have a global flag of their own: flag name -> dotted key.
var FlagKeys = map[string]string{
	"install-dir": "install_dir",
	"backup-dir":  "backup.dir",
	"manager":     "service.manager",
	"health-url":  "health.url",
}

// FileError is a settings file that cannot be read or is not YAML: a usage mistake, as a
// bad flag is. Its message names the file.
type FileError struct {
	msg string
	err error
}

func (e *FileError) Error() string { return e.msg }
func (e *FileError) Unwrap() error { return e.err }

func fileErrorf(err error, format string, a ...any) error {
	return &FileError{msg: fmt.Sprintf(format, a...), err: err}
}

// Loader builds the effective Config of one invocation: defaults < file < CFROLLBACK_* env <
// flags. Its zero value reads the file named by CFROLLBACK_CONFIG, else DefaultFile if present.
type Loader struct {
	// File is the settings file named on the command line (--config); empty means
	// CFROLLBACK_CONFIG, then DefaultFile when it exists.
	File string
	// Flag returns the value of a global flag (a name of FlagKeys) when it was given on the
	// command line; nil means no flags.
	Flag func(name string) (value string, given bool)

	v    *viper.Viper
	used string // the file actually read
	raw  []byte // its content
}

// Used is the settings file Load read ("" when none).
func (l *Loader) Used() string { return l.used }

// InFile reports whether the file Load read sets key.
func (l *Loader) InFile(key string) bool { return l.v != nil && l.used != "" && l.v.InConfig(key) }

// Keys lists every setting, as dotted keys, from the Config struct.
func Keys() []string {
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
	walk(reflect.TypeOf(Config{}), "")
	return out
}

// EnvVar is the environment variable that sets key: CFROLLBACK_BACKUP_DIR for backup.dir.
func EnvVar(key string) string {
	return "CFROLLBACK_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// DefaultValue is the built-in value of key as a settings file would spell it (durations and
// sizes as text).
func DefaultValue(key string) any { return defaultValueIn(reflect.ValueOf(Defaults()), key) }

// defaultValueIn is DefaultValue with the defaults given: Load makes them once for every key
// (Defaults() per key was a Config built and dropped ~80 times at every start).
func defaultValueIn(v reflect.Value, key string) any {
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
	case ByteSize:
		return x.String()
	default:
		return x
	}
}

// Load builds the effective Config. warn hears each unknown key of the file (ignored). A
// file that cannot be read is a *FileError, a bad value an *InvalidError naming its key.
func (l *Loader) Load(warn func(string)) (Config, error) {
	v := viper.New()
	l.v = v
	defaults := reflect.ValueOf(Defaults())
	for _, k := range Keys() {
		v.SetDefault(k, defaultValueIn(defaults, k))
	}
	v.SetEnvPrefix("CFROLLBACK")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	// CFROLLBACK_HEALTH_URL= must be able to switch the URL check off.
	v.AllowEmptyEnv(true)
	file := l.File
	if file == "" {
		file = os.Getenv("CFROLLBACK_CONFIG")
	}
	if file == "" {
		if _, err := os.Stat(DefaultFile); err == nil {
			file = DefaultFile
		}
	}
	if file != "" {
		if err := l.readFile(v, file, warn); err != nil {
			return Config{}, err
		}
	}
	if l.Flag != nil {
		for flag, key := range FlagKeys {
			if val, ok := l.Flag(flag); ok {
				v.Set(key, val)
			}
		}
	}
	var cfg Config
	hook := mapstructure.ComposeDecodeHookFunc(
		durationHook,
		mapstructure.StringToSliceHookFunc(","),
		wholeNumberHook,
		byteSizeHook,
	)
	if err := v.Unmarshal(&cfg, viper.DecodeHook(hook)); err != nil {
		key := keyFromDecodeError(err)
		return cfg, l.asTyped(&InvalidError{Key: key, Value: v.Get(key), Reason: decodeReason(err)})
	}
	if err := cfg.Validate(); err != nil {
		return cfg, l.asTyped(err)
	}
	return cfg, nil
}

func (l *Loader) readFile(v *viper.Viper, file string, warn func(string)) error {
	v.SetConfigType("yaml")
	// Read here, bounded and regular files only: viper would read a FIFO or /dev/zero
	// until it hangs or runs out of memory.
	b, err := fsutil.ReadFile(file, fsutil.MaxSmallFile)
	if errors.Is(err, fs.ErrNotExist) {
		return fileErrorf(err, "settings file %s does not exist", file)
	}
	if err != nil {
		return fileErrorf(err, "settings file: %v", err) // err names the file
	}
	if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
		return fileErrorf(err, "settings file %s: %v", file, err)
	}
	l.used, l.raw = file, b
	known := map[string]bool{}
	for _, k := range Keys() {
		known[k] = true
	}
	for _, k := range v.AllKeys() {
		if !known[k] && v.InConfig(k) {
			warn(fmt.Sprintf("unknown setting %s in %s (ignored)", k, file))
		}
	}
	return nil
}

// Source says where the effective value of key came from: "flag --install-dir",
// "env CFROLLBACK_BACKUP_DIR", "file /etc/cfrollback/config.yaml" or "default".
func (l *Loader) Source(key string) string {
	if l.Flag != nil {
		for flag, k := range FlagKeys {
			if k == key {
				if _, ok := l.Flag(flag); ok {
					return "flag --" + flag
				}
			}
		}
	}
	env := EnvVar(key)
	if _, ok := os.LookupEnv(env); ok {
		return "env " + env
	}
	if l.InFile(key) {
		return "file " + l.used
	}
	return "default"
}

// Setting is one effective setting as `cfrollback settings` shows it.
type Setting struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`
}

// Effective lists every setting of cfg, sorted by key, with its value as it would be typed
// (7d, 512MiB) and where it came from. cfg is shown as given: redact it first.
func (l *Loader) Effective(cfg Config) ([]Setting, error) {
	effective := viper.New()
	if err := effective.MergeConfigMap(AsMap(cfg)); err != nil {
		return nil, err
	}
	ks := Keys()
	sort.Strings(ks)
	rows := make([]Setting, 0, len(ks))
	for _, k := range ks {
		rows = append(rows, Setting{Key: k, Value: effective.Get(k), Source: l.Source(k)})
	}
	return rows, nil
}

// AsMap renders cfg with its keys, nested by section, durations and sizes as text.
func AsMap(cfg Config) map[string]any {
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
			case ByteSize:
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
