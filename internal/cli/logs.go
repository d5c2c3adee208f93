package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/config"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// DefaultLogFiles is where the Claude Flow service writes logs when neither
// journald nor pm2 keeps them.
const DefaultLogFiles = "/var/log/claude-flow/*.log"

// logSource is where the service's lines are: journald for a systemd unit,
// files otherwise (pm2's own log files, or --files).
type logSource struct {
	Unit  string   // systemd unit; "" means Files
	Files []string // plain log files
	Desc  string   // for messages: "journald (claude-flow.service)", "pm2 app ...'s log files"
}

type logsOptions struct {
	IO     *ui.IO
	JSON   bool
	Source logSource
	Filter health.LogFilter
	Count  bool
	Follow bool
	Poll   time.Duration // file follow interval
	// Journal runs journalctl with args and streams its stdout; wait reports
	// its exit once the stream is drained (or ctx ended).
	Journal func(ctx context.Context, args []string) (stdout io.Reader, wait func() error, err error)
}

type logLineJSON struct {
	Time    *time.Time `json:"time,omitempty"`
	Source  string     `json:"source"`
	PID     int        `json:"pid,omitempty"`
	Message string     `json:"message"`
}

type logCountJSON struct {
	Count  int       `json:"count"`
	Source string    `json:"source"`
	Since  time.Time `json:"since,omitzero"`
	Grep   string    `json:"grep,omitempty"`
}

func newLogsCmd(f *Factory) *cobra.Command {
	var grep, since, files string
	var lastHour, count, follow bool
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Show, filter or count the service's log lines",
		Long: `Show the service's log lines: from journald (journalctl -u UNIT -o json) for a
systemd unit, from the app's log files (pm2 jlist: pm_out_log_path, pm_err_log_path)
for pm2, and from --files (default ` + DefaultLogFiles + `) otherwise or when --files
is given.

--since takes a duration back from now (1h, 30m) or a time (2025-01-04T14:00:00Z,
"2025-01-04 14:00"). For plain files it is judged simply: a file last modified
before --since is skipped, a line is dated by a timestamp at its start (ISO 8601 /
RFC 3339, as pm2 --time writes), a line without one takes the time of the line
above it, and lines before a file's first timestamp always count.

--grep is a Go regular expression (RE2) matched against each line's message.
--count prints only the number of matching lines. --follow keeps printing new
lines until interrupted. --json prints one JSON object per line (JSON Lines), or
{"count": N, ...} with --count.` +
			exitStatusHelp("0  done (also when no line matched; --count then prints 0)",
				"1  the log source could not be read (journalctl failed, no log files)",
				"2  bad usage: invalid --grep, --since, or --count with --follow"),
		Example: `  cfrollback logs --since 1h
  cfrollback logs --grep ERROR --last-hour --count
  cfrollback logs --grep 'ERROR|FATAL' --since 30m --json
  cfrollback logs --follow --grep 'spawn failed'
  cfrollback logs --files '/srv/app/logs/*.log' --since '2025-01-04 14:00'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := &logsOptions{IO: f.IO, JSON: f.JSON, Count: count, Follow: follow, Journal: execJournalctl}
			if count && follow {
				return usageErrorf("--count and --follow do not go together: a count needs an end")
			}
			if lastHour {
				if since != "" {
					return usageErrorf("--last-hour and --since do not go together")
				}
				since = "1h"
			}
			var err error
			if opts.Filter, err = parseLogFilter(grep, since, time.Now()); err != nil {
				return err
			}
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			if opts.Source, err = resolveLogSource(cmd.Context(), f.IO, cfg, files, cmd.Flags().Changed("files")); err != nil {
				return err
			}
			return runLogs(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&grep, "grep", "", "only lines matching this regular expression (RE2)")
	fl.StringVar(&since, "since", "", "only lines since a duration ago (1h) or a time (2025-01-04T14:00:00Z)")
	fl.BoolVar(&lastHour, "last-hour", false, "same as --since 1h")
	fl.BoolVar(&count, "count", false, "print only the number of matching lines")
	fl.BoolVar(&follow, "follow", false, "keep printing new lines until interrupted")
	fl.StringVar(&files, "files", DefaultLogFiles, "read these log files (a glob) instead of journald or pm2's files")
	return cmd
}

// parseLogFilter turns --grep and --since into a filter.
func parseLogFilter(grep, since string, now time.Time) (health.LogFilter, error) {
	var f health.LogFilter
	if grep != "" {
		re, err := regexp.Compile(grep)
		if err != nil {
			return f, usageErrorf("--grep %q: %v", grep, err)
		}
		f.Grep = re
	}
	if since != "" {
		if d, err := time.ParseDuration(since); err == nil {
			if d < 0 {
				return f, usageErrorf("--since %s: give a positive duration back from now, e.g. 1h", since)
			}
			f.Since = now.Add(-d)
			return f, nil
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
			if t, err := time.ParseInLocation(layout, since, time.Local); err == nil {
				f.Since = t
				return f, nil
			}
		}
		return f, usageErrorf("--since %q: not a duration (1h, 30m) or a time (2025-01-04T14:00:00Z, \"2025-01-04 14:00\")", since)
	}
	return f, nil
}

// resolveLogSource picks where the service logs: explicit --files, else the
// manager's own place, else the default files.
func resolveLogSource(ctx context.Context, io *ui.IO, cfg config.Config, files string, filesSet bool) (logSource, error) {
	if filesSet {
		return globSource(files)
	}
	switch cfg.Service.Manager {
	case service.KindCommand:
		return globSource(files)
	case service.KindSystemd:
		return journalSource(cfg.Service.Unit), nil
	}
	m, err := newServiceManager(ctx, cfg)
	if err != nil {
		fmt.Fprintf(io.ErrOut, "%s %v; reading %s instead\n", io.ErrPalette().Yellow("note:"), errors.Unwrap(err), files)
		return globSource(files)
	}
	switch m.Kind() {
	case service.KindSystemd:
		return journalSource(cfg.Service.Unit), nil
	case service.KindPM2:
		if _, err := m.Status(ctx); err != nil { // never lets 'pm2 jlist' spawn a daemon
			return logSource{}, err
		}
		paths, err := pm2LogFiles(ctx, runbook.ServiceConfig(cfg))
		if err != nil {
			return logSource{}, err
		}
		return logSource{Files: paths, Desc: fmt.Sprintf("pm2 app %s's log files", cfg.Service.PM2Name)}, nil
	}
	return globSource(files)
}

func journalSource(unit string) logSource {
	if !strings.Contains(unit, ".") {
		unit += ".service"
	}
	return logSource{Unit: unit, Desc: "journald (" + unit + ")"}
}

func globSource(glob string) (logSource, error) {
	paths, err := filepath.Glob(glob)
	if err != nil {
		return logSource{}, usageErrorf("--files %q: %v", glob, err)
	}
	if len(paths) == 0 {
		return logSource{}, fmt.Errorf("no log files match %s; point --files at the service's logs", glob)
	}
	return logSource{Files: paths, Desc: glob}, nil
}

// pm2LogFiles asks pm2 where the app's out and err logs are.
func pm2LogFiles(ctx context.Context, c service.Config) ([]string, error) {
	bin := c.PM2Bin
	if bin == "" {
		bin = "pm2"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "jlist")
	if c.PM2Home != "" {
		cmd.Env = append(os.Environ(), "PM2_HOME="+c.PM2Home)
	}
	killGroupOnCancel(cmd)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("pm2 jlist: %w", err)
	}
	return parsePM2LogPaths(out, c.PM2Name)
}

// parsePM2LogPaths reads the app's log files from 'pm2 jlist' output; pm2
// may print warnings before the JSON.
func parsePM2LogPaths(out []byte, app string) ([]string, error) {
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
		return nil, fmt.Errorf("pm2 app %s has no log files in 'pm2 jlist'; use --files", app)
	}
	return paths, nil
}

// execJournalctl runs the real journalctl.
func execJournalctl(ctx context.Context, args []string) (io.Reader, func() error, error) {
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	killGroupOnCancel(cmd)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("journalctl: %w", err)
	}
	return stdout, func() error {
		err := cmd.Wait()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("journalctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}, nil
}

func runLogs(ctx context.Context, opts *logsOptions) error {
	var mu sync.Mutex
	n := 0
	emit := func(l health.LogLine) error {
		mu.Lock()
		defer mu.Unlock()
		n++
		if opts.Count {
			return nil
		}
		return printLogLine(opts.IO.Out, opts.JSON, l)
	}
	var err error
	if opts.Source.Unit != "" {
		err = readJournal(ctx, opts, emit)
	} else {
		err = readFiles(ctx, opts, emit)
	}
	if err != nil {
		return err
	}
	if opts.Count {
		if opts.JSON {
			res := logCountJSON{Count: n, Source: opts.Source.Desc, Since: opts.Filter.Since}
			if opts.Filter.Grep != nil {
				res.Grep = opts.Filter.Grep.String()
			}
			return ui.JSON(opts.IO.Out, res)
		}
		fmt.Fprintln(opts.IO.Out, n)
	}
	return nil
}

func readJournal(ctx context.Context, opts *logsOptions, emit func(health.LogLine) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stdout, wait, err := opts.Journal(ctx, health.JournalctlArgs(opts.Source.Unit, opts.Filter.Since, opts.Follow))
	if err != nil {
		return fmt.Errorf("read %s: %w", opts.Source.Desc, err)
	}
	bad, scanErr := health.ScanJournal(stdout, opts.Filter, emit)
	if scanErr != nil {
		cancel() // a failed write (closed pipe): stop journalctl too
	}
	waitErr := wait()
	if bad > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "%s %d journal entries could not be parsed and were skipped\n", opts.IO.ErrPalette().Yellow("warning:"), bad)
	}
	if scanErr != nil && ctx.Err() == nil {
		return fmt.Errorf("read %s: %w", opts.Source.Desc, scanErr)
	}
	return waitErr
}

func readFiles(ctx context.Context, opts *logsOptions, emit func(health.LogLine) error) error {
	offsets := make([]int64, len(opts.Source.Files))
	readable := 0
	for i, p := range opts.Source.Files {
		off, err := health.ScanFile(ctx, p, 0, opts.Filter, emit)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(opts.IO.ErrOut, "%s %v\n", opts.IO.ErrPalette().Yellow("warning:"), err)
			continue
		}
		readable++
		offsets[i] = off
	}
	if readable == 0 {
		return fmt.Errorf("none of the log files of %s could be read", opts.Source.Desc)
	}
	if !opts.Follow {
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(opts.Source.Files))
	for i, p := range opts.Source.Files {
		wg.Go(func() { errs[i] = health.FollowFile(ctx, p, offsets[i], opts.Poll, opts.Filter, emit) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func printLogLine(w io.Writer, asJSON bool, l health.LogLine) error {
	if asJSON {
		j := logLineJSON{Source: l.Source, PID: l.PID, Message: l.Message}
		if !l.Time.IsZero() {
			t := l.Time
			j.Time = &t
		}
		b, err := json.Marshal(j)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	if l.Source == "journal" {
		_, err := fmt.Fprintf(w, "%s  %s\n", l.Time.Local().Format("2006-01-02 15:04:05"), l.Message)
		return err
	}
	// A file's line carries its own timestamp, if any; the file name says where it came from.
	_, err := fmt.Fprintf(w, "%s: %s\n", filepath.Base(l.Source), l.Message)
	return err
}

// killGroupOnCancel runs cmd in its own process group (the operator's Ctrl-C reaches
// cfrollback, which then ends it) and, when its context ends, kills the whole group; output
// a leftover holds open is given up after 2 s.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
}
