package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/ui"
)

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
