package manpage

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/cli"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// The sections a man page gets besides cobra's: EXIT STATUS, ENVIRONMENT and FILES.

var exitLine = regexp.MustCompile(`^\s*(\d+(?:\s*(?:-|,|to|or)\s*\d+)*)\s{2,}(.*)$`)

// exitStatusSection renders a command's EXIT STATUS block ("  0  done" lines) as a list; a
// command without one points at the codes every command shares, listed on cfrollback(1).
func exitStatusSection(c *cobra.Command, block string) string {
	var b strings.Builder
	b.WriteString(".SH EXIT STATUS\n")
	if !c.HasParent() {
		for _, e := range sharedExitCodes {
			fmt.Fprintf(&b, ".TP\n\\fB%d\\fR\n%s\n", e.code, roffText(e.meaning))
		}
		b.WriteString(".PP\nEach command's page lists the codes it exits with.\n")
		return b.String()
	}
	if strings.TrimSpace(block) == "" {
		b.WriteString(".PP\n" + roffText("0 done, 1 failed, 2 bad usage or an invalid setting (the key is named); the codes every command shares are listed in") + " \\fBcfrollback\\fR(1).\n")
		return b.String()
	}
	inList := false
	for _, line := range strings.Split(block, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if m := exitLine.FindStringSubmatch(line); m != nil {
			fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s\n", roffText(m[1]), roffText(m[2]))
			inList = true
			continue
		}
		if inList {
			b.WriteString(roffText(strings.TrimSpace(line)) + "\n") // a wrapped item
		} else {
			b.WriteString(".PP\n" + roffText(strings.TrimSpace(line)) + "\n")
		}
	}
	return b.String()
}

// sharedExitCodes are the codes cli.Main exits with (docs/EXIT_CODES.md has the whole contract).
var sharedExitCodes = []struct {
	code    int
	meaning string
}{
	{cli.ExitOK, "done; for emergency: rolled back and healthy"},
	{cli.ExitFailed, "failed (the message says what)"},
	{cli.ExitUsage, "bad usage or an invalid setting (the key is named); nothing was changed"},
	{cli.ExitPreflight, "a check before the stop failed (no usable backup, not enough space, service not found) or the run was interrupted before it; nothing was changed and the service was not stopped"},
	{cli.ExitAfterStop, "a step failed after the service was stopped, or the run was interrupted after it: run 'cfrollback emergency' again, it completes or undoes the run"},
	{cli.ExitUnhealthy, "restored, but the service did not become healthy; the failed install is kept ('cfrollback undo RUN_ID')"},
	{cli.ExitLocked, "another cfrollback run holds the lock; nothing was changed"},
}

// environmentSection: every setting as CFROLLBACK_<KEY> on cfrollback(1), a pointer to it on
// the other pages.
func environmentSection(c *cobra.Command) string {
	var b strings.Builder
	b.WriteString(".SH ENVIRONMENT\n")
	item := func(name, text string) {
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s\n", roffText(name), roffText(text))
	}
	item("CFROLLBACK_CONFIG", "the settings file to read when --config is not given (instead of "+settings.DefaultFile+")")
	if c.HasParent() {
		b.WriteString(".TP\n\\fBCFROLLBACK_\\fR\\fIKEY\\fR\n" + roffText("any setting, the key in capitals with dots as underscores (CFROLLBACK_BACKUP_DIR for backup.dir); it overrides the settings file, a flag overrides it. Every one is listed in") + " \\fBcfrollback\\fR(1).\n")
	} else {
		b.WriteString(".PP\n" + roffText("Every setting can be given as CFROLLBACK_<KEY>, the key in capitals with dots as underscores. It overrides the settings file; a flag (--install-dir, --backup-dir, --manager, --health-url) overrides it. An empty value is a value: CFROLLBACK_HEALTH_URL= turns the URL check off. 'cfrollback settings' shows where each value came from.") + "\n")
		for _, k := range settings.Keys() {
			item(settings.EnvVar(k), fmt.Sprintf("setting %s (default %s)", k, defaultText(k)))
		}
	}
	item("NO_COLOR", "when set to a non-empty value, nothing is coloured (no-color.org); colour is only ever used on a terminal, and not with TERM=dumb")
	return b.String()
}

func defaultText(key string) string {
	v := settings.DefaultValue(key)
	switch x := v.(type) {
	case string:
		if x == "" {
			if key == "backup.state" {
				return filepath.Join(settings.Defaults().StateDir, "backups.json")
			}
			return `""`
		}
		return x
	case []string:
		return strings.Join(x, ",")
	case []settings.DatabaseRef:
		var refs []string
		for _, r := range x {
			refs = append(refs, r.Name+" "+r.Path)
		}
		return strings.Join(refs, ", ") + "; a list of {name, path}: give it in the settings file"
	case []settings.Webhook:
		if len(x) == 0 {
			return "none; a list of {name, url, kind}: give it in the settings file"
		}
	}
	return fmt.Sprint(v)
}

// filesSection lists the files cfrollback reads and writes, at their defaults.
func filesSection() string {
	d := settings.Defaults()
	state := d.Backup.State
	if state == "" {
		state = filepath.Join(d.StateDir, "backups.json")
	}
	var b strings.Builder
	b.WriteString(".SH FILES\n")
	for _, f := range []struct{ path, text string }{
		{settings.DefaultFile, "the settings file, read when present and neither --config nor CFROLLBACK_CONFIG names another (as installed: every key, commented out, with its default)"},
		{d.Journal, "the journal: every run's steps, read by history, undo and a resumed emergency (setting journal)"},
		{d.Lock, "held while a run changes something, so two runs never overlap (setting lock)"},
		{d.StateDir, "monitor samples and the recorded baseline (setting state_dir)"},
		{state, "backup verification results and good/bad marks (setting backup.state)"},
		{filepath.Join(d.Backup.Dir, d.Backup.Pattern), "the backups and their .manifest.json files (settings backup.dir, backup.pattern)"},
		{d.Database.BackupDir, "database backups (setting database.backup_dir)"},
		{strings.ReplaceAll(d.FailedDirPattern, "{install}", d.InstallDir), "a failed install kept by a rollback, {ts} its time (setting failed_dir_pattern)"},
	} {
		fmt.Fprintf(&b, ".TP\n\\fI%s\\fR\n%s\n", roffText(f.path), roffText(f.text))
	}
	return b.String()
}
