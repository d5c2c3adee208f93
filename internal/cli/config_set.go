package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

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
			return opts.change(cmd.Context(), runbook.ConfigSetCommand, ed, runbook.ConfigIntent{File: ed.Path, Key: args[0]},
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
