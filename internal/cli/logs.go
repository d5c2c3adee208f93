package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/logs"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type logsOptions struct {
	IO     *ui.IO
	JSON   bool
	Source logs.Source
	Filter logs.Filter
	Count  bool
	Follow bool
	Reader logs.Reader
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
		Long: `Show the service's log lines from where the setting logs.source says they are:
  auto      journald for a systemd unit, pm2's log files for a pm2 app, else logs.files
  journald  journalctl -u service.unit -o json
  pm2       the files 'pm2 jlist' names for service.pm2_name (pm_out_log_path, pm_err_log_path)
  files     the glob logs.files (default /var/log/claude-flow/*.log)
--log-files GLOB reads those files instead, whatever the setting. A match that is not a
regular file (a FIFO, a device) or that is reached through a symbolic link another user
owns is skipped with a warning.

--since takes a duration back from now (1h, 30m, 2d) or a time (2025-01-04T14:00:00Z,
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
				"2  bad usage: invalid --grep, --since or --log-files, or --count with --follow"),
		Example: `  cfrollback logs --since 1h
  cfrollback logs --grep ERROR --last-hour --count
  cfrollback logs --grep 'ERROR|FATAL' --since 30m --json
  cfrollback logs --follow --grep 'spawn failed'
  cfrollback logs --log-files '/srv/app/logs/*.log' --since '2025-01-04 14:00'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := &logsOptions{IO: f.IO, JSON: f.JSON, Count: count, Follow: follow, Reader: logs.Reader{Warn: warner(f.IO)}}
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
			if opts.Source, err = resolveLogs(cmd.Context(), f.IO, cfg, files); err != nil {
				return err
			}
			return runLogs(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&grep, "grep", "", "only lines matching this regular expression (RE2)")
	fl.StringVar(&since, "since", "", "only lines since a duration ago (1h, 2d) or a time (2025-01-04T14:00:00Z)")
	fl.BoolVar(&lastHour, "last-hour", false, "same as --since 1h")
	fl.BoolVar(&count, "count", false, "print only the number of matching lines")
	fl.BoolVar(&follow, "follow", false, "keep printing new lines until interrupted")
	fl.StringVar(&files, "log-files", "", "read these log files (a glob) instead of the logs setting (logs.source, logs.files)")
	aliasFlags(fl, map[string]string{"files": "log-files"})
	return cmd
}

// parseLogFilter turns --grep and --since into a filter.
func parseLogFilter(grep, since string, now time.Time) (logs.Filter, error) {
	var f logs.Filter
	if grep != "" {
		re, err := regexp.Compile(grep)
		if err != nil {
			return f, usageErrorf("--grep %q: %v", grep, err)
		}
		f.Grep = re
	}
	if since != "" {
		t, err := logs.ParseSince(since, now)
		if err != nil {
			return f, usageErrorf("--since %v", err)
		}
		f.Since = t
	}
	return f, nil
}

// warner prints a warning on stderr (a JSON line under --json: ui.IO.Warnf).
func warner(io *ui.IO) func(string) {
	return func(msg string) { io.Warnf("%s", msg) }
}

// resolveLogs is where the service's logs are for every command that reads them: the glob
// of --log-files when given (override), else the setting logs.source. Its errors say what
// to set or give instead.
func resolveLogs(ctx context.Context, io *ui.IO, cfg settings.Config, override string) (logs.Source, error) {
	svc := runbook.ServiceConfig(cfg)
	r := logs.Resolver{
		Settings: logs.Settings{Source: cfg.Logs.Source, Files: cfg.Logs.Files, Manager: cfg.Service.Manager,
			Unit: cfg.Service.Unit, PM2Name: cfg.Service.PM2Name, PM2Bin: cfg.Service.PM2Bin, PM2Home: cfg.Service.PM2Home},
		Detect: func(ctx context.Context) (string, error) {
			m, err := newServiceManager(ctx, cfg)
			if err != nil {
				if u := errors.Unwrap(err); u != nil {
					err = u
				}
				return "", err
			}
			return m.Kind(), nil
		},
		// Asked through the pm2 manager, which never starts a pm2 daemon.
		PM2Listed: func(ctx context.Context) (bool, error) {
			svc.Manager = service.KindPM2
			m, err := service.New(ctx, svc)
			if err != nil {
				return false, err
			}
			st, err := m.Status(ctx)
			return st.Exists, err
		},
		Warn: warner(io),
	}
	src, err := r.Resolve(ctx, override)
	switch {
	case err == nil:
		return src, nil
	case errors.Is(err, filepath.ErrBadPattern):
		return src, usageErrorf("--log-files %v", err)
	case errors.Is(err, logs.ErrNoFiles) && override != "":
		return src, fmt.Errorf("%w; point --log-files at the service's logs", err)
	case errors.Is(err, logs.ErrNoFiles):
		return src, fmt.Errorf("%w; set logs.source (auto, journald, pm2, files) and logs.files to where the service logs ('cfrollback settings' shows them), or give --log-files GLOB", err)
	}
	return src, err
}

func runLogs(ctx context.Context, opts *logsOptions) error {
	n := 0
	emit := func(l logs.Line) error {
		n++
		if opts.Count {
			return nil
		}
		return printLogLine(opts.IO.Out, opts.JSON, l)
	}
	if err := opts.Reader.Read(ctx, opts.Source, opts.Filter, opts.Follow, emit); err != nil {
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

func printLogLine(w io.Writer, asJSON bool, l logs.Line) error {
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
