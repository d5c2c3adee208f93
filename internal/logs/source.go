package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// The values of the setting logs.source.
const (
	Auto     = "auto"     // journald for a systemd unit, pm2's files for a pm2 app, else Files
	Journald = "journald" // journalctl -u service.unit
	PM2      = "pm2"      // the out and err files 'pm2 jlist' names for service.pm2_name
	Files    = "files"    // the glob logs.files
)

// Sources lists the values of logs.source, for messages and completion.
var Sources = []string{Auto, Journald, PM2, Files}

// ErrNoFiles is wrapped by the errors that say no log file was found to read: callers add
// where to point cfrollback instead.
var ErrNoFiles = errors.New("no log files")

// Source is where the service's lines are: a journald unit, or plain files.
type Source struct {
	Unit  string   // the systemd unit whose journal is read; "" means Files
	Files []string // plain log files
	Desc  string   // for messages: "journald (claude-flow.service)", "pm2 app claude-flow-assistant's log files"
}

// JournalSource reads the journal of a systemd unit; a name without a unit type is a
// .service.
func JournalSource(unit string) Source {
	if !strings.Contains(unit, ".") {
		unit += ".service"
	}
	return Source{Unit: unit, Desc: "journald (" + unit + ")"}
}

// Settings say where the service's logs are: the logs setting and the service it belongs to.
type Settings struct {
	Source  string // logs.source: Auto, Journald, PM2 or Files ("" is Auto)
	Files   string // logs.files: a glob of plain log files
	Manager string // service.manager, which Auto follows: auto, systemd, pm2 or command
	Unit    string // service.unit: the unit of Journald
	PM2Name string // service.pm2_name: the app of PM2
	PM2Bin  string // service.pm2_bin
	PM2Home string // service.pm2_home
}

// Resolver turns Settings into a Source. Its function fields are the effects it needs;
// the cli passes the service package's, tests pass fakes.
type Resolver struct {
	Settings Settings
	// Detect names the manager that runs the service (systemd, pm2 or command) for
	// service.manager auto. When it fails, Auto reads Files, with a warning.
	Detect func(ctx context.Context) (string, error)
	// PM2Listed reports whether pm2 lists the app, without ever starting a pm2 daemon (a
	// bare 'pm2 jlist' would, as root, at 3 am). Nil: not asked.
	PM2Listed func(ctx context.Context) (bool, error)
	// PM2Jlist runs 'pm2 jlist'; nil runs the real pm2 with PM2Bin and PM2Home.
	PM2Jlist func(ctx context.Context) ([]byte, error)
	// Warn is told what the operator should know: a skipped file, a fallback. Nil drops it.
	Warn func(string)
}

// Resolve says where to read. A glob given on the command line (override, "" for none)
// wins over the setting; a bad glob wraps filepath.ErrBadPattern.
func (r Resolver) Resolve(ctx context.Context, override string) (Source, error) {
	if override != "" {
		return Glob(override, r.Warn)
	}
	s := r.Settings
	switch s.Source {
	case Files:
		return Glob(s.Files, r.Warn)
	case Journald:
		return JournalSource(s.Unit), nil
	case PM2:
		return r.pm2(ctx)
	case Auto, "":
	default:
		return Source{}, fmt.Errorf("logs.source %q: give %s", s.Source, strings.Join(Sources, ", "))
	}
	kind := s.Manager
	if kind == "auto" || kind == "" {
		if r.Detect == nil {
			return Glob(s.Files, r.Warn)
		}
		var err error
		if kind, err = r.Detect(ctx); err != nil {
			r.warn(fmt.Sprintf("%v; reading %s (logs.files) instead", err, s.Files))
			return Glob(s.Files, r.Warn)
		}
	}
	switch kind {
	case "systemd":
		return JournalSource(s.Unit), nil
	case "pm2":
		return r.pm2(ctx)
	}
	return Glob(s.Files, r.Warn)
}

func (r Resolver) warn(msg string) {
	if r.Warn != nil {
		r.Warn(msg)
	}
}

// pm2 asks pm2 where the app's out and err logs are.
func (r Resolver) pm2(ctx context.Context) (Source, error) {
	app := r.Settings.PM2Name
	if r.PM2Listed != nil {
		listed, err := r.PM2Listed(ctx)
		if err != nil {
			return Source{}, err
		}
		if !listed {
			return Source{}, fmt.Errorf("%w: pm2 app %s is not in 'pm2 jlist' (or no pm2 daemon runs for its PM2_HOME: service.pm2_home)", ErrNoFiles, app)
		}
	}
	jlist := r.PM2Jlist
	if jlist == nil {
		jlist = func(ctx context.Context) ([]byte, error) { return runJlist(ctx, r.Settings.PM2Bin, r.Settings.PM2Home) }
	}
	out, err := jlist(ctx)
	if err != nil {
		return Source{}, err
	}
	paths, err := ParsePM2LogPaths(out, app)
	if err != nil {
		return Source{}, err
	}
	return Source{Files: paths, Desc: fmt.Sprintf("pm2 app %s's log files", app)}, nil
}

func runJlist(ctx context.Context, bin, home string) ([]byte, error) {
	if bin == "" {
		bin = "pm2"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "jlist")
	if home != "" {
		cmd.Env = append(os.Environ(), "PM2_HOME="+home)
	}
	KillGroupOnCancel(cmd)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("pm2 jlist: %w", err)
	}
	return out, nil
}

// ParsePM2LogPaths reads the app's log files (pm_out_log_path, pm_err_log_path) from
// 'pm2 jlist' output, in order and without repeats; /dev/null is no file. pm2 may print
// warnings before the JSON.
func ParsePM2LogPaths(out []byte, app string) ([]string, error) {
	var procs []struct {
		Name string `json:"name"`
		Env  struct {
			Out string `json:"pm_out_log_path"`
			Err string `json:"pm_err_log_path"`
		} `json:"pm2_env"`
	}
	// The JSON starts at a line that starts with '[' ("[PM2] ..." warnings do too).
	var err error
	for rest := out; ; {
		if err = json.Unmarshal(rest, &procs); err == nil {
			break
		}
		i := bytes.Index(rest, []byte("\n["))
		if i < 0 {
			return nil, fmt.Errorf("pm2 jlist: %w", err)
		}
		rest = rest[i+1:]
	}
	var paths []string
	for _, p := range procs {
		if p.Name != app {
			continue
		}
		for _, path := range []string{p.Env.Out, p.Env.Err} {
			if path != "" && path != "/dev/null" && !slices.Contains(paths, path) {
				paths = append(paths, path)
			}
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: pm2 app %s has none in 'pm2 jlist'", ErrNoFiles, app)
	}
	return paths, nil
}

// Glob is the plain files matching pattern that can be read as logs. A match that is not
// a regular file (a FIFO, a device, a directory) or that resolves through a symbolic link
// another user owns is skipped, and warn is told why; none left is an error wrapping
// ErrNoFiles. Nothing is opened here, so a FIFO cannot block.
func Glob(pattern string, warn func(string)) (Source, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return Source{}, fmt.Errorf("%s: %w", pattern, err)
	}
	if len(matches) == 0 {
		return Source{}, fmt.Errorf("%w match %s", ErrNoFiles, pattern)
	}
	var files []string
	for _, m := range matches {
		if err := usable(m); err != nil {
			if warn != nil {
				warn(err.Error() + "; skipped")
			}
			continue
		}
		files = append(files, m)
	}
	if len(files) == 0 {
		return Source{}, fmt.Errorf("%w to read: none of the %d matching %s is a regular file reached safely", ErrNoFiles, len(matches), pattern)
	}
	return Source{Files: files, Desc: pattern}, nil
}

// usable says why path cannot be read as a log, without opening it.
func usable(path string) error {
	if err := checkLinks(path); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %w (%s)", path, fsutil.ErrNotRegular, fsutil.Kind(fi.Mode()))
	}
	return nil
}
