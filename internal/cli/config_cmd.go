package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// configOptions is what every config subcommand works with.
type configOptions struct {
	IO     *ui.IO
	JSON   bool
	Config settings.Config
	Now    func() time.Time
	// DryRun (set, restore, reset): show the change, write nothing.
	DryRun bool
}

func (o *configOptions) editor() *appconfig.Editor {
	return &appconfig.Editor{Path: appConfigPath(o.Config), CheckpointDir: configCheckpointDir(o.Config),
		InstallDir: o.Config.InstallDir, Now: o.Now, DryRun: o.DryRun}
}

// dryRunFlag adds --dry-run to a command that changes the app config.
func (o *configOptions) dryRunFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "validate and show the differences; checkpoint and write nothing")
}

// appConfigPath is the first of the app config candidates that exists, or
// the first one (where reset and restore create it).
func appConfigPath(cfg settings.Config) string {
	paths := cfg.AppConfigPaths()
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[0]
}

func configCheckpointDir(cfg settings.Config) string { return filepath.Join(cfg.Backup.Dir, "config") }

func newConfigCmd(f *Factory) *cobra.Command {
	opts := &configOptions{IO: f.IO, Now: time.Now}
	load := func() error {
		cfg, err := f.loadConfig()
		opts.Config, opts.JSON = cfg, f.JSON
		return err
	}
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Back up, validate, change and roll back the app's own config (config.json)",
		Long: `Work on the app's config file (setting app_config; default <install>/config.json,
or claude-flow.config.json when only that exists). Every change (set, restore,
reset) is validated first, checkpointed (the current file is saved to
<backup.dir>/config/config-checkpoint-YYYYmmdd-HHMMSS.json), journaled, and
written atomically with the file's mode and owner kept; set edits only the
bytes of the value, so key order and formatting survive. Each change prints
the 'cfrollback config restore --file CHECKPOINT' that undoes it.

Values of keys named like apiKey, token, secret or password are shown as
[REDACTED] in every output, diff, journal record and listing. See docs/APPCONFIG.md.` +
			exitStatusHelp("0  done", "1  failed, or the file is invalid (line and column named; nothing was changed)",
				"2  bad usage or invalid settings", "6  another cfrollback run holds the lock"),
		Example: `  cfrollback config backup
  cfrollback config set claude.baseUrl "https://api.anthropic.com/v1"
  cfrollback config restore --file config-checkpoint-20250104-140500.json
  cfrollback config validate`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newConfigBackupCmd(opts, load), newConfigRestoreCmd(opts, load), newConfigResetCmd(opts, load),
		newConfigValidateCmd(opts, load), newConfigSetCmd(opts, load), newConfigGetCmd(opts, load),
		newConfigDiffCmd(opts, load), newConfigCheckpointsCmd(opts, load))
	registerConfigCompletions(f, cmd)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printChange prints a change's diff and the new content's warnings.
func (o *configOptions) printChange(res appconfig.Result) {
	printDiff(o.IO, res.Diff)
	for _, w := range res.Warnings {
		fmt.Fprintf(o.IO.ErrOut, "%s %s:%s\n", o.IO.ErrPalette().Yellow("warning:"), res.File, problemText(w))
	}
}

// nothingChanged says so on an invalid-config error that does not yet.
func nothingChanged(err error) error {
	if errors.Is(err, appconfig.ErrInvalid) && !strings.Contains(err.Error(), "nothing was changed") {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	return err
}

// changeResult is what set, restore and reset print with --json.
type changeResult struct {
	RunID string `json:"run_id"`
	appconfig.Result
	Undo string `json:"undo,omitempty"`
}

// change runs one change of the app config as a procedure (runbook.ChangeConfig: lock,
// journal, webhooks) and reports it. With --dry-run the same procedure only reports what
// would change: no lock, no journal, no write, no webhook.
func (o *configOptions) change(ctx context.Context, command string, ed *appconfig.Editor, intent runbook.ConfigIntent, apply func() (appconfig.Result, error)) error {
	res, run, err := runbook.ChangeConfig(ctx, runbook.ConfigChange{Config: o.Config, Command: command, Editor: ed, Intent: intent,
		Args: os.Args[1:], Apply: apply}, changeDeps(o.IO, o.JSON, o.Config))
	if err != nil {
		return dbHinted(nothingChanged(err))
	}
	if o.DryRun {
		if o.JSON {
			return ui.JSON(o.IO.Out, res)
		}
		o.printChange(res)
		if !res.WouldChange {
			fmt.Fprintf(o.IO.ErrOut, "dry run: %s already has that content; nothing would be written\n", res.File)
			return nil
		}
		fmt.Fprintf(o.IO.ErrOut, "dry run: would checkpoint and write %s; nothing was changed\n", res.File)
		return nil
	}
	cr := changeResult{RunID: run.RunID, Result: res}
	if res.Checkpoint != "" {
		cr.Undo = "cfrollback config restore --file " + res.Checkpoint
	}
	if o.JSON {
		return ui.JSON(o.IO.Out, cr)
	}
	o.printChange(res)
	if !res.Changed {
		fmt.Fprintf(o.IO.ErrOut, "%s already has that content; nothing was written\n", res.File)
		return nil
	}
	fmt.Fprintf(o.IO.ErrOut, "wrote %s (run %s)\n", res.File, run.RunID)
	if cr.Undo != "" {
		fmt.Fprintf(o.IO.ErrOut, "checkpoint %s; undo with: %s\n", res.Checkpoint, cr.Undo)
	}
	return nil
}
