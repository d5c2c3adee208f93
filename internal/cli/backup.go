package cli

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

func newBackupCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Create, list, verify, mark, prune and schedule the backups a rollback restores",
		Long: `Backups are <backup.dir>/backup-YYYYmmdd-HHMMSS.tar.gz, plain tar.gz files that
'tar -xzf' restores, each with a sidecar backup-YYYYmmdd-HHMMSS.manifest.json
(archive and per-file sha256, app version, label). What verify found and the
good/bad marks live in backup.state. 'cfrollback emergency' skips backups
marked bad, and marks the backup it restored good or bad by the outcome.`,
		Example: `  cfrollback backup create --label "before deploy 2.4.1"
  cfrollback backup list
  cfrollback backup verify --all
  cfrollback backup mark bad 20250104-140000 --reason "config.db is empty"
  cfrollback backup prune --keep 10 --max-age 7d --dry-run
  cfrollback backup schedule --install --dry-run`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(
		newBackupCreateCmd(f),
		newBackupListCmd(f),
		newBackupVerifyCmd(f),
		newBackupMarkCmd(f),
		newBackupPruneCmd(f),
		newBackupScheduleCmd(f),
	)
	registerBackupCompletions(f, cmd)
	return cmd
}

type backupCreateOptions struct {
	IO         *ui.IO
	JSON       bool
	Config     settings.Config
	Label      string
	AppVersion string
	Exclude    []string
	NoDefaults bool
	DryRun     bool
	Now        func() time.Time
	// Snapshotter captures the databases (sqliteSnapshotter); nil archives
	// them as they are.
	Snapshotter backup.DBSnapshotter
}

func newBackupCreateCmd(f *Factory) *cobra.Command {
	opts := &backupCreateOptions{IO: f.IO, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Back up the install dir into backup.dir, with a manifest",
		Long: `Write <backup.dir>/backup-YYYYmmdd-HHMMSS.tar.gz of install_dir (mode 0600,
written to a temporary file, synced and renamed, so it is whole or absent) and
its manifest backup-YYYYmmdd-HHMMSS.manifest.json: the archive's sha256, the
entry count, every file's sha256 and mode, the app version (from
<install>/package.json "version", or --app-version), label, host and user.

Left out: backup.exclude (default logs, *.log, .cache, node_modules/.cache,
tmp) and --exclude globs, matched against each path relative to install_dir
and against its base name; a matching directory is left out whole.

Databases (setting databases) are captured through SQLite's online backup API
when it is available; until then they are archived as they are on disk, with
their -wal/-shm files, and a warning says so.

Compression uses every core. On a terminal a progress bar shows on stderr.` +
			exitStatusHelp("0  the backup and its manifest were written",
				"1  failed; nothing was left behind",
				"2  bad usage or invalid settings"),
		Example: `  cfrollback backup create
  cfrollback backup create --label "before deploy" --app-version 2.4.1
  cfrollback backup create --exclude 'uploads/*' --exclude '*.tmp' --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON = cfg, f.JSON
			opts.Snapshotter = sqliteSnapshotter{busy: cfg.Database.BusyTimeout}
			return runBackupCreate(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Label, "label", "", "a note stored in the manifest and shown by list")
	cmd.Flags().StringVar(&opts.AppVersion, "app-version", "", "the app version this backup holds (default: <install>/package.json \"version\")")
	cmd.Flags().StringArrayVar(&opts.Exclude, "exclude", nil, "leave out paths matching this glob, in addition to backup.exclude (repeatable)")
	cmd.Flags().BoolVar(&opts.NoDefaults, "no-default-excludes", false, "do not apply backup.exclude, only --exclude")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "read the tree as a backup would (excludes, limits, every file) and print what it would hold; write nothing")
	return cmd
}

func runBackupCreate(ctx context.Context, opts *backupCreateOptions) error {
	cfg := opts.Config
	exclude := append([]string(nil), opts.Exclude...)
	if !opts.NoDefaults {
		exclude = append(append([]string(nil), cfg.Backup.Exclude...), exclude...)
	}
	var dbs []backup.Database
	for _, d := range cfg.Databases {
		dbs = append(dbs, backup.Database{Name: d.Name, Path: d.Path})
	}
	host, _ := os.Hostname()
	var bar *progressBar
	if showProgress(opts.IO, opts.JSON) {
		// A walk of the metadata only, for an ETA; cheap next to the copy.
		if total, err := install.TreeSize(cfg.InstallDir); err == nil {
			bar = newProgressBar(opts.IO, opts.JSON, total, "backing up")
		}
	}
	lim := archive.DefaultLimits()
	lim.MaxTotalSize = int64(cfg.Backup.MaxSize)
	warn := warnPrinter(opts.IO)
	res, err := backup.Create(ctx, backup.CreateOptions{
		InstallDir: cfg.InstallDir, BackupDir: cfg.Backup.Dir, Exclude: exclude, Databases: dbs,
		Snapshotter: opts.Snapshotter, Label: opts.Label, AppVersion: opts.AppVersion,
		CreatedBy: currentUser(), Host: host, Now: opts.Now, Limits: lim,
		Progress: func(_ int, bytes int64) { bar.set(bytes) },
		Warn:     warn, DryRun: opts.DryRun,
	})
	bar.finish()
	if err != nil {
		return fmt.Errorf("backup create: %w", err)
	}
	var sb *runbook.StandbyResult
	if !res.DryRun {
		sb = refreshStandbyAfterCreate(ctx, opts.IO, cfg, res.Path)
	}
	if opts.JSON {
		return ui.JSON(opts.IO.Out, struct {
			*backup.CreateResult
			Standby *runbook.StandbyResult `json:"standby,omitempty"`
		}{res, sb})
	}
	p := opts.IO.OutPalette()
	if res.DryRun {
		fmt.Fprintf(opts.IO.Out, "%s %s (dry run: nothing was written)\n", p.Bold("would write:"), res.Path)
		fmt.Fprintf(opts.IO.Out, "  contents:  %d entries, %d files, %s before compression\n", res.Entries, res.Files, ui.Bytes(res.Bytes))
		for _, d := range res.Databases {
			fmt.Fprintf(opts.IO.Out, "  database:  %s (%s) by %s\n", d.Name, d.Path, d.Method)
		}
		return nil
	}
	fmt.Fprintf(opts.IO.Out, "%s %s\n", p.Green("backup written:"), res.Path)
	fmt.Fprintf(opts.IO.Out, "  id:        %s\n  manifest:  %s\n", res.ID, res.ManifestPath)
	fmt.Fprintf(opts.IO.Out, "  contents:  %d entries, %d files, %s -> %s compressed\n", res.Entries, res.Files, ui.Bytes(res.Bytes), ui.Bytes(res.Size))
	if res.AppVersion != "" {
		fmt.Fprintf(opts.IO.Out, "  app:       %s\n", res.AppVersion)
	}
	if res.Label != "" {
		fmt.Fprintf(opts.IO.Out, "  label:     %s\n", res.Label)
	}
	fmt.Fprintf(opts.IO.Out, "  sha256:    %s\n  took:      %s\n", res.SHA256, ui.Duration(time.Duration(res.DurationMS)*time.Millisecond))
	if sb != nil && sb.Error == "" {
		fmt.Fprintf(opts.IO.Out, "  standby:   %s\n", sb.Detail)
	}
	return nil
}

func warnPrinter(io *ui.IO) func(string) {
	return func(msg string) {
		io.Warnf("%s", msg)
	}
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprint(os.Getuid())
}

// backupStore is backup.state for the backup commands, which may create
// its directory.
func backupStore(cfg settings.Config) backup.Store {
	return backup.Store{Path: cfg.Backup.State, CreateDir: true, Install: cfg.InstallDir, BackupDir: cfg.Backup.Dir}
}

// discoverBackups lists backup.dir, warning about entries that are not backups.
func discoverBackups(io *ui.IO, cfg settings.Config) ([]backup.Candidate, error) {
	cands, rejected, err := backup.Discover(cfg.Backup.Dir, cfg.Backup.Pattern)
	if err != nil {
		return nil, fmt.Errorf("%w; check backup.dir ('cfrollback settings') and its permissions", err)
	}
	for _, rj := range rejected {
		warnPrinter(io)(fmt.Sprintf("%s is not a backup: %s", rj.Path, rj.Reason))
	}
	return cands, nil
}

func shortErr(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
