package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/settings"
)

func newConfigRestoreCmd(opts *configOptions, load func() error) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "restore --file FILE",
		Short: "Replace the app config with a checkpoint (or plain config file), validated first",
		Long: `Replace the app config with FILE: a checkpoint made by 'config backup' (its
sha256 is checked) or a plain config JSON. FILE is validated first; then the
current config is checkpointed, the differences are shown, and the file is
written atomically (temp file, fsync, rename, fsync dir) keeping mode and owner.
A bare file name not found in the current directory is looked up in
<backup.dir>/config.` +
			exitStatusHelp("0  restored (or already identical)", "1  FILE is invalid or unreadable: nothing was changed",
				"2  no --file", "6  another cfrollback run holds the lock"),
		Example: `  cfrollback config restore --file config-checkpoint-20250104-140500.json --dry-run
  cfrollback config restore --file config-checkpoint-20250104-140500.json
  cfrollback config restore --file /opt/claude-flow/backups/config-alpha82.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErrorf("say which file: --file FILE (see 'cfrollback config checkpoints')")
			}
			if err := load(); err != nil {
				return err
			}
			return runConfigRestore(cmd.Context(), opts, file)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "checkpoint or config file to restore")
	opts.dryRunFlag(cmd)
	return cmd
}

// findRestoreFile resolves a bare checkpoint name against the checkpoint dir.
func findRestoreFile(cfg settings.Config, file string) string {
	if _, err := os.Stat(file); err == nil || strings.ContainsRune(file, '/') {
		return file
	}
	if alt := filepath.Join(configCheckpointDir(cfg), file); fileExists(alt) {
		return alt
	}
	return file
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func runConfigRestore(ctx context.Context, opts *configOptions, file string) error {
	file = findRestoreFile(opts.Config, file)
	content, cp, err := appconfig.ReadSource(file)
	if err != nil {
		return fmt.Errorf("read %s: %w; nothing was changed", file, err)
	}
	if rep := appconfig.Validate(file, content); !rep.OK {
		return fmt.Errorf("%w; nothing was changed", &appconfig.InvalidError{Report: rep})
	}
	ed := opts.editor()
	intent := runbook.ConfigIntent{File: ed.Path, From: file}
	if cp != nil {
		intent.FromSHA256, intent.FromAppVersion = cp.SHA256, cp.AppVersion
	}
	return opts.change(ctx, runbook.ConfigRestoreCommand, ed, intent, func() (appconfig.Result, error) {
		return ed.Apply(content, "before restore from "+filepath.Base(file), false)
	})
}

func newConfigResetCmd(opts *configOptions, load func() error) *cobra.Command {
	var defaults, yes, dropSecrets bool
	cmd := &cobra.Command{
		Use:   "reset --defaults --yes",
		Short: "Replace the app config with the built-in defaults, checkpoint first",
		Long: `Replace the app config with the defaults built into cfrollback (shown by
'cfrollback config reset --defaults --print'). Secrets of the current file (API
keys, tokens) are carried over so the app is not locked out, unless
--drop-secrets. The current file is checkpointed first.` +
			exitStatusHelp("0  reset", "1  failed; nothing was changed", "2  --defaults or --yes missing",
				"6  another cfrollback run holds the lock"),
		Example: `  cfrollback config reset --defaults --dry-run
  cfrollback config reset --defaults --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !defaults {
				return usageErrorf("reset to what? only --defaults is supported")
			}
			if !yes && !opts.DryRun {
				return usageErrorf("this replaces the whole app config; add --yes (the current file is checkpointed first), or --dry-run to see the differences")
			}
			if err := load(); err != nil {
				return err
			}
			ed := opts.editor()
			text, err := ed.Defaults(!dropSecrets)
			if err != nil {
				return err
			}
			keep := !dropSecrets
			return opts.change(cmd.Context(), runbook.ConfigResetCommand, ed, runbook.ConfigIntent{File: ed.Path, KeepSecrets: &keep},
				func() (appconfig.Result, error) { return ed.Apply(text, "before reset --defaults", false) })
		},
	}
	cmd.Flags().BoolVar(&defaults, "defaults", false, "reset to the built-in defaults")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "replace the whole config without asking")
	aliasFlags(cmd.Flags(), map[string]string{"confirm": "yes"})
	cmd.Flags().BoolVar(&dropSecrets, "drop-secrets", false, "do not carry API keys and tokens over")
	opts.dryRunFlag(cmd)
	return cmd
}
