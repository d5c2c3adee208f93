package manpage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cfrollback/cfrollback/internal/cli"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

var placeholder = regexp.MustCompile(`<[A-Za-z_][A-Za-z0-9_.-]*>`)

// helpPages is every command that gets a page, with the text of its help (long help, short,
// flags) as `cfrollback CMD --help` shows it.
func helpPages(t *testing.T) map[string]string {
	t.Helper()
	pages := map[string]string{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		var b strings.Builder
		b.WriteString(c.Short + "\n" + c.Long + "\n" + c.Use + "\n")
		c.Flags().VisitAll(func(f *pflag.Flag) { b.WriteString(f.Usage + "\n") })
		c.InheritedFlags().VisitAll(func(f *pflag.Flag) { b.WriteString(f.Usage + "\n") })
		pages[strings.ReplaceAll(c.CommandPath(), " ", "-")] = b.String()
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
				walk(sub)
			}
		}
	}
	walk(cli.RootCommand())
	return pages
}

// section returns the body of the .SH name section of a page, "" if there is none.
func section(page, name string) string {
	_, body, ok := strings.Cut(page, "\n.SH "+name+"\n")
	if !ok {
		return ""
	}
	if i := strings.Index(body, "\n.SH "); i >= 0 {
		body = body[:i]
	}
	return body
}

// TestManPages generates the man pages as `make deb` does and holds them to what the help
// says: one page per command titled by it and dated by the given date, every <placeholder> of
// the help kept, EXIT STATUS taken from the help into a section, ENVIRONMENT (every setting
// as CFROLLBACK_<KEY> on cfrollback(1)) and FILES (the defaults) on every page, the same
// bytes from the same input, and roff that man renders without a warning.
func TestManPages(t *testing.T) {
	date := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	dir := t.TempDir()
	if err := Write(dir, date); err != nil {
		t.Fatal(err)
	}
	help := helpPages(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	if len(files) != len(help) || len(help) < 20 {
		t.Fatalf("%d pages for %d commands", len(files), len(help))
	}
	placeholders := 0
	for name, text := range help {
		b, err := os.ReadFile(filepath.Join(dir, name+".1"))
		if err != nil {
			t.Errorf("no man page for %s: %v", name, err)
			continue
		}
		page := string(b)
		if want := `.TH "` + strings.ToUpper(name) + `" "1" "2026-03-04" "cfrollback" "cfrollback manual"`; !strings.HasPrefix(page, want+"\n.nh\n.ad l\n") {
			t.Errorf("%s.1: no title line %s", name, want)
		}
		for _, p := range placeholder.FindAllString(text, -1) {
			placeholders++
			if !strings.Contains(page, p) {
				t.Errorf("%s.1: the help's placeholder %s was dropped", name, p)
			}
		}
		for _, s := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "ENVIRONMENT", "FILES"} {
			if strings.TrimSpace(section(page, s)) == "" {
				t.Errorf("%s.1: no %s section", name, s)
			}
		}
		if strings.Contains(section(page, "DESCRIPTION"), "EXIT STATUS") {
			t.Errorf("%s.1: the exit status is still in the description", name)
		}
		// every code the help lists is an item of the EXIT STATUS section
		if _, exit, ok := strings.Cut(text, "\nEXIT STATUS\n"); ok {
			for _, m := range exitLine.FindAllStringSubmatch(exit, -1) {
				if item := ".TP\n\\fB" + roffText(m[1]) + "\\fR\n"; !strings.Contains(section(page, "EXIT STATUS"), item) {
					t.Errorf("%s.1: exit code %s of the help is not in EXIT STATUS", name, m[1])
				}
			}
		}
		env, fs := section(page, "ENVIRONMENT"), section(page, "FILES")
		for _, want := range []string{"CFROLLBACK_CONFIG", "NO_COLOR"} {
			if !strings.Contains(env, want) {
				t.Errorf("%s.1: ENVIRONMENT does not name %s", name, want)
			}
		}
		d := settings.Defaults()
		for _, want := range []string{settings.DefaultFile, d.Journal, d.Lock, d.StateDir, d.Backup.Dir} {
			if !strings.Contains(fs, roffText(want)) {
				t.Errorf("%s.1: FILES does not name %s", name, want)
			}
		}
		for _, line := range strings.Split(page, "\n") {
			if strings.HasPrefix(line, "'") || (strings.HasPrefix(line, ".") && !knownMacro.MatchString(line)) {
				t.Errorf("%s.1: %q is not a man(7) request this generator writes (text taken as a request?)", name, line)
			}
		}
	}
	if placeholders < 10 {
		t.Errorf("only %d placeholders in the help: is the pattern still right?", placeholders)
	}
	root, _ := os.ReadFile(filepath.Join(dir, "cfrollback.1"))
	env := section(string(root), "ENVIRONMENT")
	for _, k := range settings.Keys() {
		if !strings.Contains(env, roffText(settings.EnvVar(k))) {
			t.Errorf("cfrollback.1: ENVIRONMENT does not list %s (setting %s)", settings.EnvVar(k), k)
		}
	}

	again := t.TempDir()
	if err := Write(again, date); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		a, _ := os.ReadFile(f)
		b, _ := os.ReadFile(filepath.Join(again, filepath.Base(f)))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from one run to the next: not reproducible", filepath.Base(f))
		}
	}

	renderManPages(t, files, help)
}

var knownMacro = regexp.MustCompile(`^\.(nh|ad|TH|SH|SS|PP|TP|IP|EX|EE|br|RS|RE)( |$)`)

// renderManPages renders every page as man does, with groff's warnings on: none may warn, and
// the placeholders must be in the text a person reads.
func renderManPages(t *testing.T, files []string, help map[string]string) {
	groff, gerr := exec.LookPath("groff")
	man, merr := exec.LookPath("man")
	testenv.Require(t, gerr == nil || merr == nil, "groff or man (package groff-base or man-db)",
		"install man-db (scripts/setup-deps.sh does); the roff checks above ran without it")
	for _, f := range files {
		var cmd *exec.Cmd
		if gerr == nil {
			cmd = exec.Command(groff, "-man", "-Tutf8", "-ww", "-P-cbou", f) // -P: plain text, no overstrike
		} else {
			cmd = exec.Command(man, "--warnings", "-l", "-P", "col -b", f)
		}
		cmd.Env = append(os.Environ(), "MANWIDTH=100", "LC_ALL=C.UTF-8")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() != 0 {
			t.Errorf("%s: %v %v: %s", cmd.Path, cmd.Args[1:], err, stderr.String())
			continue
		}
		text := stdout.String()
		name := strings.TrimSuffix(filepath.Base(f), ".1")
		for _, p := range placeholder.FindAllString(help[name], -1) {
			if !strings.Contains(text, p) {
				t.Errorf("%s rendered: the placeholder %s is not in the text", name, p)
			}
		}
		if m := regexp.MustCompile(`\\[<>*_\[\]#]`).FindString(text); m != "" {
			t.Errorf("%s rendered: a Markdown escape %q shows", name, m)
		}
	}
}

// TestManText checks the escaping on its own: the markup Markdown would eat, and indented
// lines that must stay on their own line.
func TestManText(t *testing.T) {
	got := manText("Write <dir>/backup-*.tar.gz, not *.log\n  1  one\n# not a heading")
	want := "Write \\<dir\\>/backup-\\*.tar.gz, not \\*.log  \n1  one\n\\# not a heading"
	if got != want {
		t.Fatalf("manText = %q, want %q", got, want)
	}
	rest, exit := cli.SplitExitStatus("Text.\n\nEXIT STATUS\n  0  ok\n  1  failed")
	if rest != "Text." || exit != "  0  ok\n  1  failed" {
		t.Fatalf("splitExitStatus = %q, %q", rest, exit)
	}
}

// TestCfrollbackDoesNotLinkManPages holds the point of this package: the cfrollback binary
// does not import cobra's doc package, go-md2man or blackfriday, whose init ran at every start
// of every command for pages only cmd/cfrollback-docs writes.
func TestCfrollbackDoesNotLinkManPages(t *testing.T) {
	goTool, err := exec.LookPath("go")
	testenv.Require(t, err == nil, "the go command on PATH", "run the tests with go on PATH (go test puts it there)")
	out, err := exec.Command(goTool, "list", "-deps", "github.com/cfrollback/cfrollback/cmd/cfrollback").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 || !slices.Contains(deps, "github.com/cfrollback/cfrollback/internal/cli") {
		t.Fatalf("go list -deps gave %d packages without internal/cli: is the command right?", len(deps))
	}
	for _, d := range deps {
		for _, banned := range []string{"github.com/spf13/cobra/doc", "github.com/cpuguy83/go-md2man", "github.com/russross/blackfriday", "github.com/cfrollback/cfrollback/internal/cli/manpage"} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("cmd/cfrollback imports %s: the man page generator belongs to cmd/cfrollback-docs only", d)
			}
		}
	}
}
