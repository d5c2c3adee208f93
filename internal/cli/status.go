package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// statusOptions holds status's flags and what it reads through.
type statusOptions struct {
	IO     *ui.IO
	Config settings.Config
	JSON   bool
	Now    func() time.Time
	// ServiceTimeout bounds building the manager and asking it (a hung D-Bus or pm2
	// must not hang the one screen an on-call engineer reads first).
	ServiceTimeout time.Duration
	NewService     func(ctx context.Context, cfg settings.Config) (service.Manager, error)
}

// statusResult is status's --json: one object, every part named; a part that could not
// be read is null and its reason is in problems.
type statusResult struct {
	Service          *statusService         `json:"service"`
	InstallDir       string                 `json:"install_dir"`
	AppVersion       string                 `json:"app_version"` // "" when it cannot be read
	BackupDir        string                 `json:"backup_dir"`
	Backups          int                    `json:"backups"`
	NewestGoodBackup *statusBackup          `json:"newest_good_backup"`
	Standby          *runbook.StandbyStatus `json:"standby"` // the seal as read, not checked
	LastRun          *statusRun             `json:"last_run"`
	LastAssessment   *statusAssessment      `json:"last_assessment"`
	MonitorSample    *time.Time             `json:"monitor_last_sample"`
	Disks            []statusDisk           `json:"disks"`
	// JournalWarning is the journal's hash chain verdict when it has problems; the runs it
	// no longer vouches for are marked verified: false.
	JournalWarning string   `json:"journal_warning,omitempty"`
	Problems       []string `json:"problems"`
}

type statusService struct {
	Manager  string `json:"manager"`
	Name     string `json:"name"`
	Exists   bool   `json:"exists"`
	Active   bool   `json:"active"`
	State    string `json:"state"`
	MainPID  int    `json:"main_pid,omitempty"`
	Restarts int    `json:"restarts"`
}

type statusBackup struct {
	ID         string    `json:"id"`
	Path       string    `json:"path"`
	Time       time.Time `json:"time"`
	AgeSeconds int64     `json:"age_seconds"`
	Size       int64     `json:"size"`
	Mark       string    `json:"mark,omitempty"`     // good | bad | ""
	Verified   string    `json:"verified,omitempty"` // ok | failed | "" (never)
}

type statusRun struct {
	RunID      string    `json:"run_id"`
	Command    string    `json:"command"`
	Started    time.Time `json:"started"`
	Ended      time.Time `json:"ended,omitzero"`
	Outcome    string    `json:"outcome"` // "unfinished" when it was interrupted
	Error      string    `json:"error,omitempty"`
	Backup     string    `json:"backup,omitempty"`
	DowntimeMS int64     `json:"downtime_ms,omitempty"`
	Verified   bool      `json:"verified"` // false: the journal's chain does not vouch for it
}

type statusAssessment struct {
	Time     time.Time `json:"time"`
	RunID    string    `json:"run_id"`
	Severity string    `json:"severity"`
	Action   string    `json:"action,omitempty"`
	Verified bool      `json:"verified"`
}

type statusDisk struct {
	For        []string `json:"for"` // the settings on this filesystem
	Path       string   `json:"path"`
	TotalBytes uint64   `json:"total_bytes"`
	AvailBytes uint64   `json:"avail_bytes"`
	AvailPct   float64  `json:"avail_percent"`
}

func newStatusCmd(f *Factory) *cobra.Command {
	opts := &statusOptions{IO: f.IO, Now: time.Now, ServiceTimeout: 5 * time.Second, NewService: newServiceManager}
	return &cobra.Command{
		Use:   "status",
		Short: "One screen: service, app version, newest good backup, last run, disk",
		Long: `Show, on one screen, what an on-call engineer asks first: the service's state as its
manager (service.manager) reports it, the app version installed in install_dir, how many
backups there are and the newest good one (the one 'emergency' would pick first: not marked
bad, not failed its last verify) with its age, the last emergency, rollback or undo in the
journal and its outcome (UNVERIFIED when the journal's hash chain does not vouch for it), the
last assessment journaled by 'assess --act' and the last monitor sample, and the free space
of the filesystems of install_dir and backup.dir.

status only reads: it takes no lock and writes nothing. The service manager is asked for at
most 5 seconds. It does not judge health: 'cfrollback health-check' does.` +
			exitStatusHelp("0  everything was gathered (whatever the service's state)",
				"1  a part could not be gathered (named under problems; the rest is shown)",
				"2  bad usage or invalid settings"),
		Example: `  cfrollback status
  cfrollback status --json | jq .newest_good_backup`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON = cfg, f.JSON
			return runStatus(cmd.Context(), opts)
		},
	}
}

func runStatus(ctx context.Context, opts *statusOptions) error {
	cfg, now := opts.Config, opts.Now()
	res := statusResult{InstallDir: cfg.InstallDir, BackupDir: cfg.Backup.Dir, AppVersion: appconfig.AppVersion(cfg.InstallDir),
		Disks: []statusDisk{}, Problems: []string{}}
	problem := func(format string, a ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, a...)) }

	res.Service = statusOfService(ctx, opts, problem)
	statusOfBackups(opts, &res, now, problem)
	sb := runbook.StandbyInfo(opts.Config)
	res.Standby = &sb
	statusOfJournal(cfg.Journal, &res, problem)
	if samples, _, err := (assess.Store{Path: assess.StorePath(cfg.StateDir)}).Read(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		problem("monitor samples: %v", err)
	} else if len(samples) > 0 {
		t := samples[len(samples)-1].Time
		res.MonitorSample = &t
	}
	for _, d := range []struct{ key, path string }{{"install_dir", cfg.InstallDir}, {"backup.dir", cfg.Backup.Dir}} {
		if len(res.Disks) > 0 && health.SameFilesystem(res.Disks[0].Path, d.path) {
			res.Disks[0].For = append(res.Disks[0].For, d.key)
			continue
		}
		u, err := health.DiskUsage(d.path)
		if err != nil {
			problem("disk of %s: %v", d.key, err)
			continue
		}
		res.Disks = append(res.Disks, statusDisk{For: []string{d.key}, Path: d.path, TotalBytes: u.Total, AvailBytes: u.Avail, AvailPct: u.AvailPercent()})
	}

	if err := printStatus(opts.IO, opts.JSON, res, now); err != nil {
		return err
	}
	if len(res.Problems) > 0 {
		return exitError{ExitFailed}
	}
	return nil
}

func printStatus(io *ui.IO, asJSON bool, res statusResult, now time.Time) error {
	if asJSON {
		return ui.JSON(io.Out, res)
	}
	p := io.OutPalette()
	tb := ui.NewTable()
	when := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") + " (" + ui.Ago(t, now) + ")" }
	switch s := res.Service; {
	case s == nil:
		tb.Row("service:", p.Yellow("unknown (see problems)"))
	case s.Active:
		line := p.Green("active") + " (" + s.State + ")"
		if s.MainPID > 0 {
			line += fmt.Sprintf(", pid %d", s.MainPID)
		}
		tb.Row("service:", fmt.Sprintf("%s, %s, %d restarts", s.Name, line, s.Restarts))
	default:
		tb.Row("service:", s.Name+", "+p.Red(s.State))
	}
	version := res.AppVersion
	if version == "" {
		version = "unknown"
	}
	tb.Row("app version:", fmt.Sprintf("%s (in %s)", version, res.InstallDir))
	switch b := res.NewestGoodBackup; {
	case b != nil:
		extra := []string{}
		if b.Mark != "" {
			extra = append(extra, "marked "+b.Mark)
		}
		if b.Verified != "" {
			extra = append(extra, "verify "+b.Verified)
		} else {
			extra = append(extra, "never verified")
		}
		tb.Row("newest good backup:", fmt.Sprintf("%s, %s, %s, %s (%d in %s)", b.ID, when(b.Time), ui.Bytes(b.Size), strings.Join(extra, ", "), res.Backups, res.BackupDir))
	case res.Backups > 0:
		tb.Row("newest good backup:", p.Red(fmt.Sprintf("none: all %d in %s are marked bad or failed verify", res.Backups, res.BackupDir)))
	default:
		tb.Row("newest good backup:", p.Red("none: no backups in "+res.BackupDir))
	}
	if line := standbyLine(res.Standby, now); line != "" {
		tb.Row("standby:", line)
	}
	if r := res.LastRun; r != nil {
		outcome := r.Outcome
		if !r.Verified {
			outcome += " (UNVERIFIED)"
		}
		line := fmt.Sprintf("%s %s, %s, %s", r.Command, r.RunID, when(r.Started), outcome)
		if r.Error != "" {
			line += ": " + r.Error
		}
		tb.Row("last run:", line)
	} else {
		tb.Row("last run:", "none in the journal")
	}
	if a := res.LastAssessment; a != nil {
		sev := a.Severity
		if !a.Verified {
			sev += " (UNVERIFIED)"
		}
		tb.Row("last assessment:", fmt.Sprintf("%s, %s, run %s", sev, when(a.Time), a.RunID))
	} else {
		tb.Row("last assessment:", "none journaled")
	}
	if res.MonitorSample != nil {
		tb.Row("monitor:", "last sample "+when(*res.MonitorSample))
	}
	for _, d := range res.Disks {
		tb.Row(fmt.Sprintf("disk (%s):", strings.Join(d.For, ", ")), fmt.Sprintf("%s free of %s (%.0f%%) on %s",
			ui.Bytes(d.AvailBytes), ui.Bytes(d.TotalBytes), d.AvailPct, d.Path))
	}
	if res.JournalWarning != "" {
		tb.Row(p.Yellow("warning:"), res.JournalWarning)
	}
	for _, pr := range res.Problems {
		tb.Row(p.Yellow("problem:"), pr)
	}
	return tb.Render(io.Out)
}
