package cli

import (
	"context"
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

type agentsOptions struct {
	IO     *ui.IO
	JSON   bool
	Config settings.Config
	Now    func() time.Time
	// DryRun (import, reset): validate and list what would change; write nothing.
	DryRun bool
}

func newAgentsCmd(f *Factory) *cobra.Command {
	opts := &agentsOptions{IO: f.IO, Now: time.Now}
	load := func() error {
		cfg, err := f.loadConfig()
		opts.Config, opts.JSON = cfg, f.JSON
		return err
	}
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "Export, import, reset and check the app's agent definitions",
		Long: `Work on the app's agent definitions (setting agents_dir; default
<install>/.claude/agents): Markdown files whose YAML front matter names the
agent (name, type, description, capabilities, priority, hooks).

import and reset replace the whole directory in one atomic step (the new set is
written beside it and exchanged with renameat2 RENAME_EXCHANGE), so a
half-imported set is impossible; the current set is checkpointed first into
<backup.dir>/agents and the command that undoes the change is printed.` +
			exitStatusHelp("0  done", "1  failed, or a definition is invalid (nothing was changed)",
				"2  bad usage or invalid settings", "6  another cfrollback run holds the lock"),
		Example: `  cfrollback agents export --output agents-backup-$(date +%Y%m%d-%H%M%S).json
  cfrollback agents import --file agents-backup-20250104-140000.json
  cfrollback agents reset --template executive-assistant
  cfrollback agents status --health-check`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newAgentsExportCmd(opts, load), newAgentsImportCmd(opts, load), newAgentsResetCmd(opts, load),
		newAgentsStatusCmd(opts, load))
	return cmd
}

func newAgentsExportCmd(opts *agentsOptions, load func() error) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [--output FILE]",
		Short: "Write every agent definition, with its sha256, into one JSON bundle",
		Long: `Write every file of the agents dir, with its mode and sha256, into one JSON
bundle (default <backup.dir>/agents/agents-backup-YYYYmmdd-HHMMSS.json; an
existing file is never overwritten).` + exitStatusHelp("0  written", "1  the dir cannot be read or the bundle not written"),
		Example: `  cfrollback agents export
  cfrollback agents export --output agents-backup-$(date +%Y%m%d-%H%M%S).json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := load(); err != nil {
				return err
			}
			name, b, err := runbook.ExportAgents(opts.Config, "agents export", output, "agents-backup-", opts.Now())
			if err != nil {
				return err
			}
			if opts.JSON {
				return ui.JSON(opts.IO.Out, map[string]any{"path": name, "files": len(b.Files), "source": b.Source, "app_version": b.AppVersion})
			}
			fmt.Fprintln(opts.IO.Out, name)
			fmt.Fprintf(opts.IO.ErrOut, "exported %d files from %s\n", len(b.Files), b.Source)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the bundle to this file")
	return cmd
}

func newAgentsImportCmd(opts *agentsOptions, load func() error) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "import --file FILE",
		Short: "Replace the whole agent set with a bundle, validated first, atomically",
		Long: `Replace the agents dir with the files of a bundle made by 'agents export'. Every
file is checked against its sha256 and every definition parsed (required fields,
unique names) before anything changes; then the current set is checkpointed and
the new one swapped in atomically. A bare file name not found in the current
directory is looked up in <backup.dir>/agents.` +
			exitStatusHelp("0  imported", "1  the bundle or a definition is invalid: nothing was changed",
				"2  no --file", "6  another cfrollback run holds the lock"),
		Example: `  cfrollback agents import --file agents-backup-20250104-140000.json --dry-run
  cfrollback agents import --file agents-backup-20250104-140000.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErrorf("say which bundle: --file FILE (made by 'cfrollback agents export')")
			}
			if err := load(); err != nil {
				return err
			}
			if !fileExists(file) && !strings.ContainsRune(file, '/') {
				if alt := filepath.Join(runbook.AgentsBackupDir(opts.Config), file); fileExists(alt) {
					file = alt
				}
			}
			b, err := appconfig.ReadBundle(file)
			if err != nil {
				return fmt.Errorf("%w; nothing was changed", err)
			}
			return opts.replace(cmd.Context(), runbook.AgentsImportCommand, runbook.AgentsIntent{From: file}, b.Files)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "bundle to import")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "validate and list the files that would change; write nothing")
	return cmd
}

func newAgentsResetCmd(opts *agentsOptions, load func() error) *cobra.Command {
	var template string
	cmd := &cobra.Command{
		Use:   "reset --template NAME",
		Short: "Replace the agent set with a built-in template, checkpoint first",
		Long: `Replace the agents dir with a set of definitions built into cfrollback. Built in:
` + strings.Join(appconfig.Templates(), ", ") + `. The current set is checkpointed first.` +
			exitStatusHelp("0  reset", "1  failed: nothing was changed", "2  no or unknown --template",
				"6  another cfrollback run holds the lock"),
		Example: `  cfrollback agents reset --template executive-assistant --dry-run
  cfrollback agents reset --template executive-assistant`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			files, err := appconfig.Template(template)
			if err != nil {
				return usageErrorf("%v", err)
			}
			if err := load(); err != nil {
				return err
			}
			return opts.replace(cmd.Context(), runbook.AgentsResetCommand, runbook.AgentsIntent{Template: template}, files)
		},
	}
	cmd.Flags().StringVar(&template, "template", "", "built-in set: "+strings.Join(appconfig.Templates(), ", "))
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "list the files that would change; write nothing")
	return cmd
}

// agentsPlan is what --dry-run prints: the files the new set adds, changes (content
// or mode) and removes against the current dir.
type agentsPlan struct {
	*runbook.AgentsResult
	DryRun bool `json:"dry_run"`
	appconfig.ReplacePlan
}

// replace swaps a new set in through the procedure (runbook.ReplaceAgents) and prints it.
func (o *agentsOptions) replace(ctx context.Context, command string, intent runbook.AgentsIntent, files []appconfig.BundleFile) error {
	res, _, err := runbook.ReplaceAgents(ctx, o.Config, command, intent, files, o.DryRun, os.Args[1:], changeDeps(o.IO, o.JSON, o.Config))
	if err != nil {
		return dbHinted(err)
	}
	if o.DryRun {
		return o.printPlan(agentsPlan{AgentsResult: res, DryRun: true, ReplacePlan: *res.Plan})
	}
	if o.JSON {
		return ui.JSON(o.IO.Out, res)
	}
	fmt.Fprintf(o.IO.Out, "%s now holds %d files, %d agent definitions (run %s)\n", res.Dir, res.Files, res.Agents, res.RunID)
	if res.Undo != "" {
		fmt.Fprintf(o.IO.ErrOut, "checkpoint %s; undo with: %s\n", res.Checkpoint, res.Undo)
	}
	return nil
}

func (o *agentsOptions) printPlan(plan agentsPlan) error {
	if o.JSON {
		return ui.JSON(o.IO.Out, plan)
	}
	for _, l := range []struct {
		sign  string
		paths []string
	}{{"+", plan.Added}, {"~", plan.Changed}, {"-", plan.Removed}} {
		for _, p := range l.paths {
			fmt.Fprintf(o.IO.Out, "%s %s\n", l.sign, p)
		}
	}
	fmt.Fprintf(o.IO.ErrOut, "dry run: %s would hold %d files, %d agent definitions (%d added, %d changed, %d removed, %d unchanged; the current set checkpointed first); nothing was changed\n",
		plan.Dir, plan.Files, plan.Agents, len(plan.Added), len(plan.Changed), len(plan.Removed), plan.Same)
	return nil
}
