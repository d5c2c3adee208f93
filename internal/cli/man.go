package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"

	"github.com/cfrollback/cfrollback/internal/settings"
)

// WriteManPages writes one man page per visible command into dir (cfrollback.1,
// cfrollback-backup-create.1, ...), dated date: SOURCE_DATE_EPOCH or the commit time, so the
// same commit always gives the same pages (cmd/cfrollback-docs picks it).
//
// cobra's doc package writes the pages from Markdown, so the help text is escaped first: a
// placeholder such as <install> would otherwise be read as an HTML tag and dropped, and
// backup-*.tar.gz ... *.log as emphasis. Each page is titled by its command
// (CFROLLBACK-BACKUP-CREATE(1)), its help's EXIT STATUS block becomes a section of its own, and
// ENVIRONMENT and FILES sections come from the settings (keys and defaults), so they cannot
// go stale.
func WriteManPages(dir string, date time.Time) error {
	root := RootCommand()
	root.DisableAutoGenTag = true
	escaped := map[*pflag.Flag]bool{}
	var pages []*cobra.Command
	var collect func(c *cobra.Command)
	collect = func(c *cobra.Command) {
		pages = append(pages, c)
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
				collect(sub)
			}
		}
	}
	collect(root)
	// Every page's text is prepared before any page is written: a page names its parent and
	// children, and shows the flags it inherits.
	exits := map[*cobra.Command]string{}
	for _, c := range pages {
		long, exit := splitExitStatus(c.Long)
		exits[c] = exit
		c.Long = manText(long)
		c.Short = mdEscape(c.Short)
		if name, args, ok := strings.Cut(c.Use, " "); ok {
			c.Use = name + " " + mdEscape(args)
		}
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(fl *pflag.Flag) {
				if !escaped[fl] {
					escaped[fl] = true
					fl.Usage = mdEscape(fl.Usage)
				}
			})
		}
	}
	for _, c := range pages {
		name := strings.ReplaceAll(c.CommandPath(), " ", "-")
		var md bytes.Buffer
		if err := doc.GenMan(c, &doc.GenManHeader{Title: strings.ToUpper(name), Section: "1", Date: &date, Source: "cfrollback", Manual: "cfrollback manual"}, &md); err != nil {
			return fmt.Errorf("man page %s: %w", name, err)
		}
		page := manPage(md.String(), name, date, exitStatusSection(c, exits[c]), environmentSection(c), filesSection())
		if err := os.WriteFile(filepath.Join(dir, name+".1"), []byte(page), 0o644); err != nil {
			return fmt.Errorf("man page %s: %w", name, err)
		}
	}
	return nil
}

// manPage gives the page cobra wrote a title line of its own (the command, the full date),
// and adds the sections where man-pages(7) puts them: after the options, before EXAMPLE.
func manPage(roff, name string, date time.Time, sections ...string) string {
	th := fmt.Sprintf(`.TH "%s" "1" "%s" "cfrollback" "cfrollback manual"`, strings.ToUpper(name), date.UTC().Format("2006-01-02"))
	// .nh after .TH: the man macros' .TH turns hyphenation back on, which breaks <install> and
	// --install-dir across lines. .ad l: long paths and lists are not spread out to the margin.
	roff = strings.Replace(roff, ".nh\n", "", 1)
	roff = regexp.MustCompile(`(?m)^\.TH .*$`).ReplaceAllLiteralString(roff, th+"\n.nh\n.ad l")
	extra := strings.Join(sections, "")
	for _, before := range []string{"\n.SH EXAMPLE", "\n.SH SEE ALSO"} {
		if i := strings.Index(roff, before); i >= 0 {
			return roff[:i+1] + extra + roff[i+1:]
		}
	}
	return strings.TrimRight(roff, "\n") + "\n" + extra
}

// splitExitStatus takes the EXIT STATUS block (exitStatusHelp) out of a command's long help.
func splitExitStatus(long string) (rest, exit string) {
	i := strings.Index(long, "\n\nEXIT STATUS\n")
	if i < 0 {
		return long, ""
	}
	body := long[i+len("\n\nEXIT STATUS\n"):]
	rest = long[:i]
	if j := strings.Index(body, "\n\n"); j >= 0 {
		rest += body[j:]
		body = body[:j]
	}
	return rest, body
}

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

// sharedExitCodes are the codes of exitCode (docs/EXIT_CODES.md has the whole contract).
var sharedExitCodes = []struct {
	code    int
	meaning string
}{
	{ExitOK, "done; for emergency: rolled back and healthy"},
	{ExitFailed, "failed (the message says what)"},
	{ExitUsage, "bad usage or an invalid setting (the key is named); nothing was changed"},
	{ExitPreflight, "a check before the stop failed (no usable backup, not enough space, service not found) or the run was interrupted before it; nothing was changed and the service was not stopped"},
	{ExitAfterStop, "a step failed after the service was stopped, or the run was interrupted after it: run 'cfrollback emergency' again, it completes or undoes the run"},
	{ExitUnhealthy, "restored, but the service did not become healthy; the failed install is kept ('cfrollback undo RUN_ID')"},
	{ExitLocked, "another cfrollback run holds the lock; nothing was changed"},
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

// roffText escapes text for roff: a backslash is printed, a hyphen is a hyphen that a person
// can copy (--config), and a line cannot start a request.
func roffText(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// mdEscape escapes the characters Markdown would take as markup: <name> is an HTML tag to
// it, *.log and _x_ emphasis, [x] a link, `x` code.
var mdEscape = strings.NewReplacer(`\`, `\\`, "<", `\<`, ">", `\>`, "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "`", "\\`").Replace

// manText turns a command's long help (plain text, wrapped, with indented lists) into
// Markdown that reads the same: everything escaped, and an indented line kept on a line of
// its own (a hard break before it) instead of being run into its paragraph or, after a blank
// line, turned into a code block.
func manText(long string) string {
	lines := strings.Split(long, "\n")
	for i, line := range lines {
		indented := strings.TrimLeft(line, " \t") != line && strings.TrimSpace(line) != ""
		line = strings.TrimSpace(line)
		lines[i] = mdEscape(line)
		if strings.HasPrefix(line, "#") {
			lines[i] = `\` + lines[i] // not a heading
		}
		if indented && i > 0 && lines[i-1] != "" {
			lines[i-1] += "  "
		}
	}
	return strings.Join(lines, "\n")
}
