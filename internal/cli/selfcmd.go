package cli

import (
	"io"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
)

// carryConfig makes every cfrollback command this run prints carry the settings file it was
// given with --config, as an absolute path: a hint, a "next:" line, a quickref block or a
// JSON field pasted into another shell (or another directory) then works on the same
// settings. It is the one place that does it, at the output: the hundred-odd places that
// suggest a command name it as "cfrollback SUBCOMMAND ...".
//
// Only a command word at the start of a word is rewritten ("cfrollback emergency", "sudo
// cfrollback undo X", "'cfrollback history'"), never a path (/usr/bin/cfrollback backup in
// a unit file carries its own --config) nor one that already has a flag first. A path that
// would need quoting (a space, a quote, a $) is not added: quoted inside a quoted hint or a
// JSON string it would be printed wrong, which is worse than not at all.
func carryConfig(f *Factory, root *cobra.Command) {
	if f.Settings.File == "" {
		return
	}
	abs, err := filepath.Abs(f.Settings.File)
	if err != nil {
		return
	}
	f.Settings.File = abs
	if strings.Trim(abs, plainPathChars) != "" {
		return
	}
	re := commandWords(root)
	repl := "${1}cfrollback --config " + abs + " ${2}"
	f.IO.Out = configWriter{w: f.IO.Out, re: re, repl: repl}
	f.IO.ErrOut = configWriter{w: f.IO.ErrOut, re: re, repl: repl}
}

// plainPathChars need no quoting in a shell, a JSON string or a regexp replacement.
const plainPathChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-+:@,"

// commandWords matches "cfrollback SUB" for every command under root.
func commandWords(root *cobra.Command) *regexp.Regexp {
	var names []string
	for _, c := range root.Commands() {
		names = append(names, regexp.QuoteMeta(c.Name()))
		for _, a := range c.Aliases {
			names = append(names, regexp.QuoteMeta(a))
		}
	}
	return regexp.MustCompile(`(^|[\s'"` + "`" + `(=])cfrollback (` + strings.Join(names, "|") + `)\b`)
}

// configWriter rewrites each write: the commands it names are whole within one write, as
// every printer formats a line (or a whole JSON document, or a table) before writing it.
type configWriter struct {
	w    io.Writer
	re   *regexp.Regexp
	repl string
}

func (c configWriter) Write(p []byte) (int, error) {
	if !c.re.Match(p) {
		return c.w.Write(p)
	}
	if _, err := c.w.Write(c.re.ReplaceAll(p, []byte(c.repl))); err != nil {
		return 0, err
	}
	return len(p), nil
}

var _ io.Writer = configWriter{}
