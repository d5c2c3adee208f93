package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/config"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// configOptions is what every config subcommand works with.
type configOptions struct {
	IO     *ui.IO
	JSON   bool
	Config config.Config
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
func appConfigPath(cfg config.Config) string {
	paths := cfg.AppConfigPaths()
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[0]
}

func configCheckpointDir(cfg config.Config) string { return filepath.Join(cfg.Backup.Dir, "config") }

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

func newConfigBackupCmd(opts *configOptions, load func() error) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "backup [--output FILE]",
		Short: "Save the app config as a checkpoint (time, app version, sha256, who)",
		Long: `Save the current app config, byte for byte, in a checkpoint file with its time,
the app version (<install>/package.json), its sha256 and who took it. Default
<backup.dir>/config/config-checkpoint-YYYYmmdd-HHMMSS.json; an existing file is
never overwritten. The checkpoint holds the secrets of the config: it is mode 0600.` +
			exitStatusHelp("0  saved", "1  the app config cannot be read or the checkpoint not written"),
		Example: `  cfrollback config backup
  cfrollback config backup --output config-checkpoint-$(date +%Y%m%d-%H%M%S).json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := load(); err != nil {
				return err
			}
			name, cp, err := opts.editor().Checkpoint("config backup", output)
			if err != nil {
				return err
			}
			info := appconfig.CheckpointInfo{Path: name, Time: cp.Time, Source: cp.Source, AppVersion: cp.AppVersion,
				SHA256: cp.SHA256, Size: cp.Size, User: cp.User, Reason: cp.Reason}
			if opts.JSON {
				return ui.JSON(opts.IO.Out, info)
			}
			fmt.Fprintln(opts.IO.Out, name)
			fmt.Fprintf(opts.IO.ErrOut, "saved %s (%d bytes, sha256 %s, app version %s)\n", cp.Source, cp.Size, cp.SHA256[:12], orDash(cp.AppVersion))
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the checkpoint to this file")
	return cmd
}

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
			return runConfigRestore(opts, file)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "checkpoint or config file to restore")
	opts.dryRunFlag(cmd)
	return cmd
}

// findRestoreFile resolves a bare checkpoint name against the checkpoint dir.
func findRestoreFile(cfg config.Config, file string) string {
	if _, err := os.Stat(file); err == nil || strings.ContainsRune(file, '/') {
		return file
	}
	if alt := filepath.Join(configCheckpointDir(cfg), file); fileExists(alt) {
		return alt
	}
	return file
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func runConfigRestore(opts *configOptions, file string) error {
	file = findRestoreFile(opts.Config, file)
	content, cp, err := appconfig.ReadSource(file)
	if err != nil {
		return fmt.Errorf("read %s: %w; nothing was changed", file, err)
	}
	if rep := appconfig.Validate(file, content); !rep.OK {
		return fmt.Errorf("%w; nothing was changed", &appconfig.InvalidError{Report: rep})
	}
	ed := opts.editor()
	intent := map[string]any{"file": ed.Path, "from": file}
	if cp != nil {
		intent["from_sha256"], intent["from_app_version"] = cp.SHA256, cp.AppVersion
	}
	return opts.change("config restore", intent, func() (appconfig.Result, error) {
		return ed.Apply(content, "before restore from "+filepath.Base(file), false)
	})
}

func newConfigResetCmd(opts *configOptions, load func() error) *cobra.Command {
	var defaults, confirm, dropSecrets bool
	cmd := &cobra.Command{
		Use:   "reset --defaults --confirm",
		Short: "Replace the app config with the built-in defaults, checkpoint first",
		Long: `Replace the app config with the defaults built into cfrollback (shown by
'cfrollback config reset --defaults --print'). Secrets of the current file (API
keys, tokens) are carried over so the app is not locked out, unless
--drop-secrets. The current file is checkpointed first.` +
			exitStatusHelp("0  reset", "1  failed; nothing was changed", "2  --defaults or --confirm missing",
				"6  another cfrollback run holds the lock"),
		Example: `  cfrollback config reset --defaults --dry-run
  cfrollback config reset --defaults --confirm`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !defaults {
				return usageErrorf("reset to what? only --defaults is supported")
			}
			if !confirm && !opts.DryRun {
				return usageErrorf("this replaces the whole app config; add --confirm (the current file is checkpointed first), or --dry-run to see the differences")
			}
			if err := load(); err != nil {
				return err
			}
			ed := opts.editor()
			text, err := ed.Defaults(!dropSecrets)
			if err != nil {
				return err
			}
			return opts.change("config reset", map[string]any{"file": ed.Path, "keep_secrets": !dropSecrets},
				func() (appconfig.Result, error) { return ed.Apply(text, "before reset --defaults", false) })
		},
	}
	cmd.Flags().BoolVar(&defaults, "defaults", false, "reset to the built-in defaults")
	cmd.Flags().BoolVar(&confirm, "confirm", false, "yes, replace the whole config")
	cmd.Flags().BoolVar(&dropSecrets, "drop-secrets", false, "do not carry API keys and tokens over")
	opts.dryRunFlag(cmd)
	return cmd
}

func newConfigValidateCmd(opts *configOptions, load func() error) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check JSON syntax (line:column) and known keys' types and ranges",
		Long: `Check FILE (default the app config): JSON syntax, with the line and column of
an error; known keys by type and range (claude.temperature and claude.topP 0..1,
claude.maxTokens 1..100000, mcp.port 1..65535, retry delays 100..60000 ms, URLs
parse); unknown keys are warnings, not errors. A checkpoint file is validated
by its content.` +
			exitStatusHelp("0  valid (warnings allowed)", "1  invalid or unreadable"),
		Example: `  cfrollback config validate
  cfrollback config validate /tmp/new-config.json --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := load(); err != nil {
				return err
			}
			file := appConfigPath(opts.Config)
			if len(args) == 1 {
				file = findRestoreFile(opts.Config, args[0])
			}
			content, _, err := appconfig.ReadSource(file)
			if err != nil {
				return fmt.Errorf("read %s: %w", file, err)
			}
			rep := appconfig.Validate(file, content)
			if opts.JSON {
				if err := ui.JSON(opts.IO.Out, rep); err != nil {
					return err
				}
			} else {
				printReport(opts.IO, rep)
			}
			if !rep.OK {
				return exitError{ExitFailed}
			}
			return nil
		},
	}
}

func printReport(io *ui.IO, rep appconfig.Report) {
	p := io.OutPalette()
	for _, e := range rep.Errors {
		fmt.Fprintf(io.Out, "%s %s:%s\n", p.Red("error:"), rep.File, problemText(e))
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(io.Out, "%s %s:%s\n", p.Yellow("warning:"), rep.File, problemText(w))
	}
	if rep.OK {
		fmt.Fprintf(io.Out, "%s %s is valid (%d warnings)\n", p.Green("OK:"), rep.File, len(rep.Warnings))
	} else {
		fmt.Fprintf(io.Out, "%s %s is not valid: %d errors\n", p.Red("FAIL:"), rep.File, len(rep.Errors))
	}
}

func problemText(pr appconfig.Problem) string {
	s := ""
	if pr.Line > 0 {
		s = fmt.Sprintf("%d:%d:", pr.Line, pr.Column)
	}
	if pr.Key != "" {
		s += " " + pr.Key + ":"
	}
	return s + " " + pr.Msg
}

func newConfigSetCmd(opts *configOptions, load func() error) *cobra.Command {
	var asString bool
	cmd := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Change one dotted key; only its bytes in the file change",
		Long: `Set KEY (dotted: claude.baseUrl) to VALUE. VALUE is JSON when it parses as JSON
(30, 0.7, true, null, {"a":1}, "quoted") and a string otherwise; a key that
holds a string keeps getting one (--string forces it). Missing objects on the
way are created; a new key goes after the last key of its object, indented like
it. The result is validated (a value out of range is refused, nothing changed),
the current file checkpointed, and the file written atomically.` +
			exitStatusHelp("0  set (or already that value)", "1  the value is invalid or the file cannot be written: nothing was changed",
				"2  bad usage", "6  another cfrollback run holds the lock"),
		Example: `  cfrollback config set claude.baseUrl "https://api.anthropic.com/v1" --dry-run
  cfrollback config set claude.baseUrl "https://api.anthropic.com/v1"
  cfrollback config set claude.model "claude-3-sonnet-20240229"
  cfrollback config set claude.rateLimit 30
  cfrollback config set claude.retryDelay 2000`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := appconfig.SplitKey(args[0]); err != nil {
				return usageErrorf("%v", err)
			}
			if err := load(); err != nil {
				return err
			}
			ed := opts.editor()
			val := ed.TypedValue(args[0], args[1], asString)
			return opts.change("config set", map[string]any{"file": ed.Path, "key": args[0]},
				func() (appconfig.Result, error) { return ed.Set(args[0], val) })
		},
	}
	cmd.Flags().BoolVar(&asString, "string", false, "store VALUE as a string even if it looks like a number")
	opts.dryRunFlag(cmd)
	return cmd
}

func newConfigGetCmd(opts *configOptions, load func() error) *cobra.Command {
	return &cobra.Command{
		Use:   "get KEY",
		Short: "Print one dotted key's value (secrets redacted)",
		Long: `Print the value of KEY: a string as is, anything else as JSON. Secrets print
as [REDACTED].` + exitStatusHelp("0  printed", "1  the key is not set or the file cannot be read"),
		Example: `  cfrollback config get claude.baseUrl
  cfrollback config get claude --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := load(); err != nil {
				return err
			}
			v, err := opts.editor().Get(args[0])
			if err != nil {
				return err
			}
			if opts.JSON {
				return ui.JSON(opts.IO.Out, map[string]any{"key": args[0], "value": v})
			}
			if s, ok := v.(string); ok {
				fmt.Fprintln(opts.IO.Out, s)
				return nil
			}
			fmt.Fprintln(opts.IO.Out, appconfig.Show(v))
			return nil
		},
	}
}

func newConfigDiffCmd(opts *configOptions, load func() error) *cobra.Command {
	return &cobra.Command{
		Use:   "diff FILE",
		Short: "What restoring FILE would change, key by key (secrets redacted)",
		Long: `Compare the current app config with FILE (a checkpoint or a config file): each
key that restoring FILE would add, remove or change.` +
			exitStatusHelp("0  compared (also when there are differences)", "1  a file cannot be read"),
		Example: `  cfrollback config diff config-checkpoint-20250104-140500.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := load(); err != nil {
				return err
			}
			file := findRestoreFile(opts.Config, args[0])
			content, _, err := appconfig.ReadSource(file)
			if err != nil {
				return fmt.Errorf("read %s: %w", file, err)
			}
			cur, err := opts.editor().Read()
			if err != nil {
				return fmt.Errorf("read app config: %w", err)
			}
			// Diff reads an unparsable side as empty: compare only two configs that parse.
			doc, err := appconfig.Parse(content)
			if err == nil {
				err = doc.CheckPrototype() // restore refuses such a FILE: so does its preview
			}
			if err != nil {
				return fmt.Errorf("%s is not a valid app config (%w); nothing compared. 'cfrollback config validate %s' shows every problem", file, err, file)
			}
			if _, err := appconfig.Parse(cur); err != nil {
				return fmt.Errorf("the current app config is not valid (%w); nothing compared. 'cfrollback config validate' shows where", err)
			}
			changes := appconfig.Diff(cur, content)
			if opts.JSON {
				return ui.JSON(opts.IO.Out, map[string]any{"file": file, "changes": changes})
			}
			printDiff(opts.IO, changes)
			return nil
		},
	}
}

func printDiff(io *ui.IO, changes []appconfig.Change) {
	if len(changes) == 0 {
		fmt.Fprintln(io.Out, "no differences")
		return
	}
	p := io.OutPalette()
	for _, c := range changes {
		switch c.Op {
		case "added":
			fmt.Fprintf(io.Out, "%s %s = %s\n", p.Green("+"), c.Key, appconfig.Show(c.New))
		case "removed":
			fmt.Fprintf(io.Out, "%s %s (was %s)\n", p.Red("-"), c.Key, appconfig.Show(c.Old))
		default:
			fmt.Fprintf(io.Out, "%s %s: %s -> %s\n", p.Yellow("~"), c.Key, appconfig.Show(c.Old), appconfig.Show(c.New))
		}
	}
}

func newConfigCheckpointsCmd(opts *configOptions, load func() error) *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoints",
		Short: "List the config checkpoints, newest first",
		Long: `List the checkpoints in <backup.dir>/config, newest first: time, app version,
why it was taken, who, sha256. Contents (and so secrets) are never shown.` +
			exitStatusHelp("0  listed (also when there are none)", "1  the directory cannot be read"),
		Example: `  cfrollback config checkpoints
  cfrollback config checkpoints --json | jq -r '.[0].path'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := load(); err != nil {
				return err
			}
			list, err := appconfig.ListCheckpoints(configCheckpointDir(opts.Config))
			if err != nil {
				return err
			}
			if opts.JSON {
				return ui.JSON(opts.IO.Out, list)
			}
			if len(list) == 0 {
				fmt.Fprintf(opts.IO.ErrOut, "no checkpoints in %s\n", configCheckpointDir(opts.Config))
				return nil
			}
			tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tAGE\tAPP VERSION\tREASON\tUSER\tSHA256\tFILE")
			now := opts.Now()
			for _, c := range list {
				reason, sum := c.Reason, c.SHA256
				if c.Error != "" {
					reason = "UNREADABLE: " + c.Error
				}
				if len(sum) > 12 {
					sum = sum[:12]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Time.Local().Format("2006-01-02 15:04:05"), ui.Ago(c.Time, now),
					orDash(c.AppVersion), orDash(reason), orDash(c.User), orDash(sum), filepath.Base(c.Path))
			}
			return tw.Flush()
		},
	}
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

// change runs one journaled, locked change of the app config and reports it. With
// --dry-run it only reports what would change: no lock, no journal, no write.
func (o *configOptions) change(command string, intent map[string]any, apply func() (appconfig.Result, error)) error {
	if o.DryRun {
		res, err := apply()
		if err != nil {
			return nothingChanged(err)
		}
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
	// Where the write would go is judged before the lock and the journal (Apply judges it
	// again, under the lock): a link another user owns, or not a regular file.
	if _, err := appconfig.StatFile(o.editor().Path); err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	var res appconfig.Result
	runID, err := appconfig.Journaled(o.Config.Lock, o.Config.Journal, command, intent, func() (map[string]any, error) {
		var err error
		res, err = apply()
		out := map[string]any{"changed": res.Changed, "checkpoint": res.Checkpoint, "sha256_before": res.SHA256Old,
			"sha256_after": res.SHA256New, "diff": res.Diff}
		return out, err
	})
	if err != nil {
		return nothingChanged(err)
	}
	cr := changeResult{RunID: runID, Result: res}
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
	fmt.Fprintf(o.IO.ErrOut, "wrote %s (run %s)\n", res.File, runID)
	if cr.Undo != "" {
		fmt.Fprintf(o.IO.ErrOut, "checkpoint %s; undo with: %s\n", res.Checkpoint, cr.Undo)
	}
	return nil
}
