package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
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

// completeBackupIDs completes the IDs of the backups in backup.dir (file names matching
// backup.pattern), newest first, each described by its time, size and mark; with latest,
// "latest" too (rollback --to).
func completeBackupIDs(f *Factory, latest bool) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		if latest && strings.HasPrefix("latest", toComplete) {
			out = append(out, cobra.CompletionWithDesc("latest", "the newest backup not marked bad"))
		}
		return append(out, backupCandidates(f, toComplete, nil, false)...), noFiles
	}
}

// completeBackupFiles completes the file names of the backups in backup.dir (emergency
// --backup takes a path or a name in backup.dir); a path is completed by the shell.
func completeBackupFiles(f *Factory) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if strings.ContainsRune(toComplete, '/') {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return backupCandidates(f, toComplete, nil, true), noFiles
	}
}

// backupCandidates lists backup.dir's backups whose ID (or, with names, file name) starts
// with toComplete, except those in exclude.
func backupCandidates(f *Factory, toComplete string, exclude []string, names bool) []cobra.Completion {
	cfg := completionConfig(f)
	if cfg == nil {
		return nil
	}
	cands, _, err := backup.Discover(cfg.Backup.Dir, cfg.Backup.Pattern)
	if err != nil {
		return nil
	}
	st, err := backupStore(*cfg).Load()
	if err != nil {
		st = &backup.State{}
	}
	var out []cobra.Completion
	for _, c := range cands {
		id := backup.ID(c.Name)
		if names {
			id = c.Name
		}
		if !strings.HasPrefix(id, toComplete) || slices.Contains(exclude, id) {
			continue
		}
		desc := c.Time.Local().Format("2006-01-02 15:04") + ", " + ui.Bytes(c.Size)
		if m := st.Get(c.Name).Mark; m != nil {
			desc += ", marked " + m.Value
		}
		out = append(out, cobra.CompletionWithDesc(id, desc))
	}
	return out
}

// completeBackupArgs is for commands that take backup IDs as arguments (backup verify):
// an ID already given is not offered again.
func completeBackupArgs(f *Factory) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return backupCandidates(f, toComplete, args, false), noFiles
	}
}

// completeBackupMark is backup mark good|bad ID.
func completeBackupMark(f *Factory) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return []cobra.Completion{
				cobra.CompletionWithDesc(backup.MarkGood, "emergency may restore it"),
				cobra.CompletionWithDesc(backup.MarkBad, "emergency skips it"),
			}, noFiles
		case 1:
			return backupCandidates(f, toComplete, nil, false), noFiles
		}
		return nil, noFiles
	}
}

// registerBackupCompletions wires the backup group's subcommands that take backup IDs; it
// is called by newBackupCmd once they are added (their files are not this one's).
func registerBackupCompletions(f *Factory, group *cobra.Command) {
	for _, sub := range group.Commands() {
		switch sub.Name() {
		case "verify":
			sub.ValidArgsFunction = completeBackupArgs(f)
		case "mark":
			sub.ValidArgsFunction = completeBackupMark(f)
		}
	}
}

// completeRunIDs completes the run ids of the journal's emergency, rollback and undo runs
// (of commands, if given), newest first, each described by its command, time and outcome.
func completeRunIDs(f *Factory, commands ...string) cobra.CompletionFunc {
	if len(commands) == 0 {
		commands = []string{"emergency", "rollback", "undo"}
	}
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, noFiles // every command here takes one run id
		}
		cfg := completionConfig(f)
		if cfg == nil {
			return nil, noFiles
		}
		jc, err := journal.ReadChecked(cfg.Journal)
		if err != nil {
			return nil, noFiles
		}
		runs := journal.Runs(jc.Records)
		var out []cobra.Completion
		for i := len(runs) - 1; i >= 0; i-- {
			r := runs[i]
			if !slices.Contains(commands, r.Command) || !strings.HasPrefix(r.ID, toComplete) {
				continue
			}
			outcome := r.Outcome
			if outcome == "" {
				outcome = "unfinished"
			}
			if !jc.Trusted(r) {
				outcome += " (UNVERIFIED)"
			}
			out = append(out, cobra.CompletionWithDesc(r.ID, fmt.Sprintf("%s %s, %s", r.Command, r.Started.Local().Format(time.DateTime), outcome)))
		}
		return out, noFiles | cobra.ShellCompDirectiveKeepOrder
	}
}

// completeDatabases completes the names in the setting databases (and "all" where the flag
// takes it).
func completeDatabases(f *Factory, all bool) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		if all && strings.HasPrefix("all", toComplete) {
			out = append(out, cobra.CompletionWithDesc("all", "every database in the setting databases"))
		}
		if cfg := completionConfig(f); cfg != nil {
			for _, d := range cfg.Databases {
				if strings.HasPrefix(d.Name, toComplete) {
					out = append(out, cobra.CompletionWithDesc(d.Name, d.Path))
				}
			}
		}
		return out, noFiles
	}
}

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

// completeAppConfigKeys completes the dotted keys set in the app's config file (config get,
// config set): its leaves, sorted. A key with a control character or a space is left out: it
// would break the completion protocol and cannot be typed anyway.
func completeAppConfigKeys(f *Factory) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, noFiles
		}
		cfg := completionConfig(f)
		if cfg == nil {
			return nil, noFiles
		}
		b, err := (&appconfig.Editor{Path: appConfigPath(*cfg)}).Read()
		if err != nil || b == nil {
			return nil, noFiles
		}
		doc, err := appconfig.Parse(b)
		if err != nil {
			return nil, noFiles
		}
		var out []cobra.Completion
		for k := range appconfig.Leaves(doc.Value()) {
			if !strings.HasPrefix(k, toComplete) || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) }) {
				continue
			}
			if _, err := appconfig.SplitKey(k); err == nil {
				out = append(out, k)
			}
		}
		slices.Sort(out)
		return out, noFiles
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
