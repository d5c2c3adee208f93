package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	version, versionProblem := appconfig.AppVersionChecked(cfg.InstallDir)
	res := statusResult{InstallDir: cfg.InstallDir, BackupDir: cfg.Backup.Dir, AppVersion: version,
		Disks: []statusDisk{}, Problems: []string{}}
	problem := func(format string, a ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, a...)) }
	if versionProblem != "" {
		problem("app version: %s", versionProblem)
	}

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
