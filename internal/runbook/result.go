package runbook

import (
	"time"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/install"
)

// Result is what a run did; --json prints it as is.
type Result struct {
	RunID   string `json:"run_id"`
	Command string `json:"command"`
	DryRun  bool   `json:"dry_run"`
	// Outcome is ok, unhealthy, preflight_failed, failed or planned (dry run).
	Outcome    string              `json:"outcome"`
	Service    string              `json:"service"`
	Backup     *backup.Candidate   `json:"backup"`
	BackupSHA  string              `json:"backup_sha256,omitempty"`
	Skipped    []SkippedBackup     `json:"skipped_backups"`
	InstallDir string              `json:"install_dir"`
	StagingDir string              `json:"staging_dir,omitempty"`
	FailedDir  string              `json:"failed_dir,omitempty"`
	KeptDir    string              `json:"kept_dir,omitempty"`
	Started    time.Time           `json:"started"`
	DurationMS int64               `json:"duration_ms"`
	DowntimeMS int64               `json:"downtime_ms"`
	Steps      []StepResult        `json:"steps"`
	Carried    *install.CarryStats `json:"carried,omitempty"`
	// DataChecks is the check_data step's quick_check of each preserved database.
	DataChecks []DataCheck     `json:"data_checks,omitempty"`
	Health     []health.Result `json:"health,omitempty"`
	Recovered  *Recovery       `json:"recovered,omitempty"`
	// Standby says whether preflight took the warm standby, why not, and the refresh
	// after a healthy end.
	Standby  *StandbyUse `json:"standby,omitempty"`
	Plan     []string    `json:"plan,omitempty"`
	Journal  string      `json:"journal,omitempty"`
	HumanLog string      `json:"human_log,omitempty"`
	Next     []string    `json:"next,omitempty"`
	Error    string      `json:"error,omitempty"`
	// JournalError is set when a journal write failed after the change was made (the
	// outcome, a recovered run's outcome): the run keeps its outcome and exit code, this
	// says what the journal lacks.
	JournalError string `json:"journal_error,omitempty"`
}

// SkippedBackup is a newer backup that was not used, and why. Skips are loud.
type SkippedBackup struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// StepResult is one step's status and duration.
type StepResult struct {
	Name       string `json:"name"`
	Status     string `json:"status"` // done, failed, skipped, planned
	DurationMS int64  `json:"duration_ms"`
	Detail     string `json:"detail,omitempty"`
}

// Recovery says what this run did about an earlier run that was interrupted.
type Recovery struct {
	RunID  string `json:"run_id"`
	Action string `json:"action"` // completed, abandoned
	Detail string `json:"detail"`
}

// Event is progress for a person; the cli renders it on stderr.
type Event struct {
	Kind     string // step_start, step_done, step_failed, warn, info
	Step     string
	Message  string
	Duration time.Duration
}
