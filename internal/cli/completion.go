package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// newCompletionCmd is cobra's completion command made visible (cobra's own is hidden here, and
// a command of this name replaces it). The dynamic candidates (backup IDs, run IDs, database
// names, managers) come from the functions below, registered by each command's constructor.
func newCompletionCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print the shell completion script (backup IDs, run IDs, databases, managers)",
		Long: `Print the completion script for a shell. Besides commands and flags it completes what
a command takes from this host: backup IDs from backup.dir (--to, --backup, backup verify,
backup mark), run IDs from the journal (undo, report, verify --run), database names from
the setting databases (--db), service managers (--manager) and the keys set in the app's
config file (config get, config set). The candidates are read with
the same settings (--config, CFROLLBACK_*) as the command being completed.

  bash:  cfrollback completion bash > /etc/bash_completion.d/cfrollback
  zsh:   cfrollback completion zsh > "${fpath[1]}/_cfrollback"
  fish:  cfrollback completion fish > ~/.config/fish/completions/cfrollback.fish` +
			exitStatusHelp("0  the script was printed", "2  no or an unknown shell"),
		Example: `  source <(cfrollback completion bash)
  cfrollback completion zsh > "${fpath[1]}/_cfrollback"`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			default:
				return root.GenPowerShellCompletionWithDesc(out)
			}
		},
	}
	return cmd
}

// completionConfig reads the settings for a completion: silently (a warning would land in
// the shell's prompt), and nil when they cannot be read (no candidates then).
func completionConfig(f *Factory) *settings.Config {
	cfg, err := f.Settings.Load(func(string) {})
	if err != nil {
		return nil
	}
	return &cfg
}

const noFiles = cobra.ShellCompDirectiveNoFileComp

// registerManagerCompletion completes the global --manager flag (bound with the other
// settings flags on the root's persistent flags before the subcommands are built).
func registerManagerCompletion(fl *pflag.Flag) {
	// cobra keys flag completions by the flag itself; a command holding the root's flag
	// registers it for every command that inherits it.
	holder := &cobra.Command{Use: "manager"}
	holder.Flags().AddFlag(fl)
	if err := holder.RegisterFlagCompletionFunc("manager", cobra.FixedCompletions([]cobra.Completion{
		cobra.CompletionWithDesc(service.KindAuto, "systemd or pm2, whichever knows the service"),
		cobra.CompletionWithDesc(service.KindSystemd, "service.unit over D-Bus"),
		cobra.CompletionWithDesc(service.KindPM2, "service.pm2_name through the pm2 CLI"),
		cobra.CompletionWithDesc(service.KindCommand, "service.start_command, stop_command, status_command"),
	}, noFiles)); err != nil {
		fmt.Fprintln(os.Stderr, "cfrollback: completion of --manager:", err)
	}
}

// registerConfigCompletions wires config get and config set; it is called by newConfigCmd
// once they are added.
func registerConfigCompletions(f *Factory, group *cobra.Command) {
	for _, sub := range group.Commands() {
		if sub.Name() == "get" || sub.Name() == "set" {
			sub.ValidArgsFunction = completeAppConfigKeys(f)
		}
	}
}
