// Package manpage writes cfrollback's man pages from its command tree (cmd/cfrollback-docs,
// for `make deb`). It is a package of its own, not part of internal/cli, so that the
// cfrollback binary does not link cobra's doc package and, through go-md2man, blackfriday:
// their package init (types relocated in a PIE, blackfriday's tables) ran at every start of
// every command, 2 ms of `cfrollback emergency`'s start for pages it never writes
// (docs/BENCHMARKS.md, "Where a warm emergency's fixed time goes").
package manpage

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

	"github.com/cfrollback/cfrollback/internal/cli"
)

// Write writes one man page per visible command into dir (cfrollback.1,
// cfrollback-backup-create.1, ...), dated date: SOURCE_DATE_EPOCH or the commit time, so the
// same commit always gives the same pages (cmd/cfrollback-docs picks it).
//
// cobra's doc package writes the pages from Markdown, so the help text is escaped first: a
// placeholder such as <install> would otherwise be read as an HTML tag and dropped, and
// backup-*.tar.gz ... *.log as emphasis. Each page is titled by its command
// (CFROLLBACK-BACKUP-CREATE(1)), its help's EXIT STATUS block becomes a section of its own, and
// ENVIRONMENT and FILES sections come from the settings (keys and defaults), so they cannot
// go stale.
func Write(dir string, date time.Time) error {
	root := cli.RootCommand()
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
		long, exit := cli.SplitExitStatus(c.Long)
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
