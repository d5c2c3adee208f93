package cli

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// The candidates of the dynamic completions, read from this host with the settings of the
// command being completed: backups, run ids, databases, the app's config keys.

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
