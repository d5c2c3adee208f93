package cli

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite docs/COMMANDS.md (TestCommandTable) from the command tree")

// What each command does to the host is not in the command tree, so it is said here, and
// TestCommandTable fails until a new command is put in exactly one of these three maps.

// changesState: commands that change the service, the install, backups, databases, the app's
// config or agents, or send something out. Each needs --dry-run (knownMissingDryRun lists
// the exceptions left). The text is the table's "changes" cell.
var changesState = map[string]string{
	"emergency":        "yes: restores the newest good backup (stops and starts the service)",
	"rollback":         "yes: restores the chosen backup (stops and starts the service)",
	"deploy":           "yes: runs the deploy command; makes a backup; on failure restores it (stops and starts the service)",
	"undo":             "yes: puts back the install a rollback replaced",
	"backup create":    "yes: writes a backup and its manifest",
	"backup mark":      "yes: marks a backup good or bad (backup.state)",
	"backup prune":     "yes: deletes backups",
	"standby refresh":  "yes: extracts a backup into the standby dir and seals it",
	"standby drop":     "yes: removes the standby and its seal",
	"backup schedule":  "yes, with --install: writes the systemd units, enables and starts the timer",
	"database backup":  "yes: writes a database backup",
	"database check":   "yes, with --repair-if-needed: repairs or restores a database",
	"database restore": "yes: replaces a database with a backup",
	"config backup":    "yes: writes a config checkpoint",
	"config set":       "yes: changes a key of the app config",
	"config restore":   "yes: replaces the app config",
	"config reset":     "yes: replaces the app config with the defaults",
	"agents import":    "yes: replaces the agent set",
	"agents reset":     "yes: replaces the agent set with a template",
	"baseline record":  "yes: writes the baseline assess compares against",
	"assess":           "yes, with --act: runs the emergency rollback",
	"notify":           "yes: sends an event to every webhook",
	"test webhooks":    "yes: sends a test event to every webhook",
	"guard":            "yes: runs the emergency rollback by itself when its policy says so; notifies",
	"guard pause":      "yes: pauses guard's rollbacks (state_dir); notifies",
	"guard resume":     "yes: lets guard roll back again (state_dir); notifies",
}

// recordsOnly: commands that only read the service, and write down what they saw (a journal
// entry, samples, verification results) for other commands to read; a dry run would be the
// same command.
var recordsOnly = map[string]string{
	"monitor":       "records: samples in state_dir (assess reads them)",
	"backup verify": "records: the results in backup.state",
	"verify":        "records: the result in the journal (not with --no-record)",
}

// readOnly: commands that change nothing. drill and test backup-restore work in a throwaway
// dir; memory test's writes are in a transaction that is always rolled back.
var readOnly = setOf("agents export", "agents status", "backup list", "baseline show", "completion",
	"config checkpoints", "config diff", "config get", "config validate", "drill", "guard status", "health-check",
	"history", "journal verify", "logs", "memory test", "quickref", "report", "settings", "standby status", "status",
	"test api-connection", "test backup-restore", "test load", "test response-time", "version")

// knownMissingDryRun: commands of changesState that have no --dry-run yet. The list only
// shrinks: a command that gains --dry-run must leave it (the test says so), and a new
// state-changing command without --dry-run fails the test.
var knownMissingDryRun = map[string]string{}

// asksConfirmation: commands that ask before they act, or refuse without a confirmation. Each
// takes --yes for it (knownMissingYes lists the exceptions left).
var asksConfirmation = setOf("rollback", "config reset")

// knownMissingYes: commands of asksConfirmation without --yes yet (only shrinks).
var knownMissingYes = map[string]string{}

// withoutJSON: commands whose output is not a JSON result under --json (every other command
// prints one; errors are JSON on stderr for every command).
var withoutJSON = map[string]string{
	"completion": "prints a shell script",
}

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// tableCommands is every command a person can run (visible, runnable), by path without the
// leading "cfrollback ", in help's order.
func tableCommands(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasParent() && c.Runnable() {
			out = append(out, c)
		}
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
				walk(sub)
			}
		}
	}
	walk(root)
	sort.SliceStable(out, func(i, j int) bool { return tablePath(out[i]) < tablePath(out[j]) })
	return out
}

func tablePath(c *cobra.Command) string {
	return strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
}

// completionCell says what the shell completes for c: its arguments (as its usage names
// them) when they are completed from the host or a fixed list, and its own flags whose
// values are completed. The global flags' completions are the same everywhere and are said
// once above the table.
func completionCell(c *cobra.Command) string {
	var parts []string
	if args := argsWords(c.Use); args != "" && c.ValidArgsFunction != nil {
		parts = append(parts, "`"+args+"`")
	}
	if len(c.ValidArgs) > 0 {
		parts = append(parts, "`"+strings.Join(c.ValidArgs, "|")+"`")
	}
	c.NonInheritedFlags().VisitAll(func(fl *pflag.Flag) {
		if _, ok := c.GetFlagCompletionFunc(fl.Name); ok && !fl.Hidden {
			parts = append(parts, "`--"+fl.Name+"`")
		}
	})
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// argsWords is the arguments part of a usage line: "mark good|bad ID" -> "good|bad ID",
// "verify [ID...|--all]" -> "[ID...]", without flags and their values.
func argsWords(use string) string {
	fields := strings.Fields(use)
	var out []string
	for i := 1; i < len(fields); i++ {
		tok := fields[i]
		if strings.HasPrefix(strings.TrimLeft(tok, "["), "--") {
			if !strings.HasSuffix(tok, "]") && i+1 < len(fields) && !strings.HasPrefix(strings.TrimLeft(fields[i+1], "["), "-") {
				i++ // the flag's value
			}
			continue
		}
		var alts []string
		for _, a := range strings.Split(tok, "|") {
			if !strings.HasPrefix(strings.Trim(a, "[]"), "--") {
				alts = append(alts, a)
			}
		}
		w := strings.Join(alts, "|")
		if strings.HasPrefix(tok, "[") && !strings.HasPrefix(w, "[") {
			w = "[" + w
		}
		if strings.HasSuffix(tok, "]") && !strings.HasSuffix(w, "]") {
			w += "]"
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

// exitCodeInHelp is a code (or range: 10-14, 3 to 6) where a line of an EXIT STATUS block starts,
// or after a wide gap on it: "10 P0   11 P1   12 P2", "1  failed     2  bad usage".
var exitCodeInHelp = regexp.MustCompile(`(?:^|\s{2,})(\d+(?:\s*(?:-|,|to|or)\s*\d+)*)\s+[^\d\s]`)

// exitCodesCell lists the codes of c's EXIT STATUS block (exitStatusHelp), in order.
func exitCodesCell(c *cobra.Command) string {
	_, block := SplitExitStatus(c.Long)
	seen := map[string]bool{}
	var codes []string
	for _, line := range strings.Split(block, "\n") {
		for _, m := range exitCodeInHelp.FindAllStringSubmatch(strings.TrimSpace(line), -1) {
			code := regexp.MustCompile(`\s+`).ReplaceAllString(m[1], " ")
			if !seen[code] {
				seen[code] = true
				codes = append(codes, code)
			}
		}
	}
	if len(codes) == 0 {
		return "-"
	}
	first := func(s string) int {
		n, _ := strconv.Atoi(regexp.MustCompile(`^\d+`).FindString(s))
		return n
	}
	sort.SliceStable(codes, func(i, j int) bool { return first(codes[i]) < first(codes[j]) })
	return strings.Join(codes, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}

func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// renderCommandTable is docs/COMMANDS.md.
func renderCommandTable(root *cobra.Command) string {
	var b strings.Builder
	b.WriteString(`# Commands

<!-- Generated from the command tree by internal/cli/commandtable_test.go; do not edit.
     After changing a command: go test ./internal/cli -run TestCommandTable -update (make docs). -->

One row per command. ` + "`cfrollback CMD --help`" + ` and ` + "`man cfrollback-CMD`" + ` say more.

- **changes**: what the command changes on the host or sends out; ` + "`records`" + ` when it only writes
  down what it read (samples, verification results, a journal entry); ` + "`-`" + ` when it changes nothing.
- **--json**: the result is printed as JSON on stdout (` + "`--jq EXPR`" + ` filters it). Under ` + "`--json`" + ` every
  command's error is JSON on stderr.
- **--dry-run**: the command has one: it shows what it would do and changes nothing.
- **--yes**: the command asks for a confirmation (or refuses without one) and ` + "`--yes`" + ` gives it.
- **completion**: what the shell completes besides flag names: the arguments, from the host
  (backup IDs, run IDs, setting keys, ...) or a fixed list, and the flags whose values it
  completes. Everywhere: ` + "`--manager`" + `, and ` + "`--config`" + ` as a file.
- **exit codes**: the codes the command's help lists (EXIT STATUS); ` + "`-`" + `: none of its own, the
  shared ones apply (` + "`man cfrollback`" + `, [EXIT_CODES.md](EXIT_CODES.md)).

| command | changes | --json | --dry-run | --yes | completion | exit codes |
| --- | --- | --- | --- | --- | --- | --- |
`)
	for _, c := range tableCommands(root) {
		p := tablePath(c)
		changes := "-"
		if s, ok := changesState[p]; ok {
			changes = s
		} else if s, ok := recordsOnly[p]; ok {
			changes = s
		}
		_, noJSON := withoutJSON[p]
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s |\n", mdCell(p), mdCell(changes), yesNo(!noJSON),
			yesNo(c.Flag("dry-run") != nil), yesNo(c.Flag("yes") != nil), mdCell(completionCell(c)), exitCodesCell(c))
	}
	return b.String()
}

// TestCommandTable: docs/COMMANDS.md is the table rendered from the command tree, every
// command is classified (changes state, records only, read-only), every state-changing
// command has --dry-run and every confirming one --yes, but for the known exceptions.
func TestCommandTable(t *testing.T) {
	root := RootCommand()
	cmds := tableCommands(root)
	exists := map[string]*cobra.Command{}
	for _, c := range cmds {
		exists[tablePath(c)] = c
	}

	var unclassified, twice []string
	for p := range exists {
		n := 0
		for _, m := range []map[string]bool{keysOf(changesState), keysOf(recordsOnly), readOnly} {
			if m[p] {
				n++
			}
		}
		switch {
		case n == 0:
			unclassified = append(unclassified, p)
		case n > 1:
			twice = append(twice, p)
		}
	}
	if len(unclassified) > 0 {
		t.Errorf("new commands %s: put each in changesState, recordsOnly or readOnly in internal/cli/commandtable_test.go", quoteList(unclassified))
	}
	if len(twice) > 0 {
		t.Errorf("commands %s are in more than one of changesState, recordsOnly, readOnly", quoteList(twice))
	}
	for name, m := range map[string]map[string]bool{"changesState": keysOf(changesState), "recordsOnly": keysOf(recordsOnly),
		"readOnly": readOnly, "knownMissingDryRun": keysOf(knownMissingDryRun), "asksConfirmation": asksConfirmation,
		"knownMissingYes": keysOf(knownMissingYes), "withoutJSON": keysOf(withoutJSON)} {
		var gone []string
		for p := range m {
			if exists[p] == nil {
				gone = append(gone, p)
			}
		}
		if len(gone) > 0 {
			t.Errorf("%s names commands that do not exist (any more): %s", name, quoteList(gone))
		}
	}

	for _, problem := range append(flagRuleProblems(exists, "dry-run", keysOf(changesState), knownMissingDryRun, "change state"),
		flagRuleProblems(exists, "yes", asksConfirmation, knownMissingYes, "ask for a confirmation")...) {
		t.Error(problem)
	}

	got := renderCommandTable(root)
	path := filepath.Join(testenv.RepoRoot(t), "docs", "COMMANDS.md")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run 'go test ./internal/cli -run TestCommandTable -update' to write it", err)
	}
	if string(want) != got {
		t.Errorf("docs/COMMANDS.md is stale: run 'go test ./internal/cli -run TestCommandTable -update' (or make docs) and commit it\n%s",
			lineDiff(string(want), got))
	}
}

// flagRuleProblems names the commands of must without --flag that knownMissing does not
// excuse, and the excuses no longer needed.
func flagRuleProblems(exists map[string]*cobra.Command, flagName string, must map[string]bool, knownMissing map[string]string, what string) []string {
	var missing, stale []string
	for p := range must {
		c := exists[p]
		if c == nil {
			continue
		}
		_, excused := knownMissing[p]
		has := c.Flag(flagName) != nil
		switch {
		case !has && !excused:
			missing = append(missing, p)
		case has && excused:
			stale = append(stale, p)
		}
	}
	for p := range knownMissing {
		if !must[p] && exists[p] != nil {
			stale = append(stale, p)
		}
	}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("commands that %s have no --%s: %s", what, flagName, quoteList(missing)))
	}
	if len(stale) > 0 {
		problems = append(problems, fmt.Sprintf("the known exceptions to --%s list %s, which no longer need it: remove them from internal/cli/commandtable_test.go", flagName, quoteList(stale)))
	}
	return problems
}

func keysOf[V any](m map[string]V) map[string]bool {
	s := make(map[string]bool, len(m))
	for k := range m {
		s[k] = true
	}
	return s
}

func quoteList(names []string) string {
	sort.Strings(names)
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	return strings.Join(q, ", ")
}

// lineDiff shows the lines only in want (-) and only in got (+), in order.
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool { return setOf(strings.Split(s, "\n")...) }
	w, g := in(want), in(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// TestCommandTableCatches: the rules fail for a state-changing command without --dry-run, a
// stale exception and an unknown command, so the table test can fail.
func TestCommandTableCatches(t *testing.T) {
	withDry := &cobra.Command{Use: "a", Run: func(*cobra.Command, []string) {}}
	withDry.Flags().Bool("dry-run", false, "")
	without := &cobra.Command{Use: "b", Run: func(*cobra.Command, []string) {}}
	exists := map[string]*cobra.Command{"a": withDry, "b": without}
	for _, tc := range []struct {
		name  string
		must  map[string]bool
		known map[string]string
		fails bool
	}{
		{"both have it or are excused", setOf("a", "b"), map[string]string{"b": "not yet"}, false},
		{"b lacks it", setOf("a", "b"), nil, true},
		{"a's exception is stale", setOf("a", "b"), map[string]string{"a": "not yet", "b": "not yet"}, true},
		{"an exception for a command that need not have it", setOf("a"), map[string]string{"b": "not yet"}, true},
	} {
		problems := flagRuleProblems(exists, "dry-run", tc.must, tc.known, "change state")
		if (len(problems) > 0) != tc.fails {
			t.Errorf("%s: problems %q, want a failure: %v", tc.name, problems, tc.fails)
		}
	}
	if got := argsWords("verify [ID...|--all]"); got != "[ID...]" {
		t.Errorf("argsWords: %q", got)
	}
	if got := argsWords("mark good|bad ID"); got != "good|bad ID" {
		t.Errorf("argsWords: %q", got)
	}
	if got := argsWords("export [--output FILE]"); got != "" {
		t.Errorf("argsWords: %q", got)
	}
	c := &cobra.Command{Use: "x", Long: "text" + exitStatusHelp("0  none", "10 P0   11 P1   (worst)", "14 inconclusive: 3 checks",
		"  wrapped, 5 lines", "1  failed     2  bad usage", "3-6  the emergency's")}
	if got := exitCodesCell(c); got != "0, 1, 2, 3-6, 10, 11, 14" {
		t.Errorf("exitCodesCell: %q", got)
	}
}
