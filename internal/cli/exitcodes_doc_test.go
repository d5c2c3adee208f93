package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// generalCodes are the main table's codes of docs/EXIT_CODES.md that every command may have
// without a row of its own: done, failed, bad usage.
var generalCodes = []int{0, 1, 2}

// docCodeAt is a code (or range: 3-6) where a clause of a "Per command" row starts (the
// clauses are split at ";" and "," outside parentheses, and after "also"); bold allowed (**20**).
var docCodeAt = regexp.MustCompile(`^(?:also\s+)?\**(\d+)(?:-(\d+))?\**(?:\s|$)`)

// docClauses splits a row's codes cell into clauses, without what is in parentheses.
func docClauses(text string) []string {
	paren := regexp.MustCompile(`\([^()]*\)`)
	for paren.MatchString(text) {
		text = paren.ReplaceAllString(text, "")
	}
	var out []string
	for _, c := range regexp.MustCompile(`[;,]`).Split(text, -1) {
		out = append(out, strings.TrimSpace(c))
	}
	return out
}

// expandCodes turns "3-6", "10, 11", "3 to 6" into codes.
func expandCodes(s string) []int {
	var out []int
	for _, part := range regexp.MustCompile(`\s*(?:,|or)\s*`).Split(s, -1) {
		lo, hi, isRange := strings.Cut(regexp.MustCompile(`\s*(?:-|to)\s*`).ReplaceAllString(part, "-"), "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				b = a
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out
}

// helpExitCodes are the codes c's EXIT STATUS block lists.
func helpExitCodes(long string) map[int]bool {
	_, block := SplitExitStatus(long)
	out := map[int]bool{}
	for _, line := range strings.Split(block, "\n") {
		for _, m := range exitCodeInHelp.FindAllStringSubmatch(strings.TrimSpace(line), -1) {
			for _, c := range expandCodes(m[1]) {
				out[c] = true
			}
		}
	}
	return out
}

// docExitCodes reads docs/EXIT_CODES.md: the main table's codes, and each command's codes
// from the "Per command" table ("as above" is the main table, "as `X`" X's row).
func docExitCodes(t *testing.T, md string) (main []int, per map[string]map[int]bool) {
	t.Helper()
	per = map[string]map[int]bool{}
	section := ""
	cmdName := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "## ") {
			section = strings.TrimPrefix(line, "## ")
			continue
		}
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| ---") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		switch section {
		case "":
			if c, err := strconv.Atoi(strings.TrimSpace(cells[0])); err == nil {
				main = append(main, c)
			}
		case "Per command":
			if len(cells) < 2 || cells[0] == "command" {
				continue
			}
			codes := map[int]bool{}
			text := strings.TrimSpace(cells[1])
			switch {
			case strings.HasPrefix(text, "as above"):
				for _, c := range main {
					codes[c] = true
				}
			case strings.HasPrefix(text, "as `"):
				ref := cmdName.FindStringSubmatch(text)[1]
				if per[ref] == nil {
					t.Fatalf("docs/EXIT_CODES.md: a row says %q before %s has a row", text[:len(ref)+5], ref)
				}
				for c := range per[ref] {
					codes[c] = true
				}
			}
			for _, clause := range docClauses(text) {
				m := docCodeAt.FindStringSubmatch(clause)
				if m == nil {
					continue
				}
				r := m[1]
				if m[2] != "" {
					r += "-" + m[2]
				}
				for _, c := range expandCodes(r) {
					codes[c] = true
				}
			}
			for _, m := range cmdName.FindAllStringSubmatch(cells[0], -1) {
				for _, name := range docCommandNames(m[1]) {
					if per[name] == nil {
						per[name] = map[int]bool{}
					}
					for c := range codes {
						per[name][c] = true
					}
				}
			}
		}
	}
	return main, per
}

// docCommandNames: "rollback --to ID" -> rollback; "config set/restore/reset" -> config set,
// config restore, config reset.
func docCommandNames(span string) []string {
	var words []string
	for _, w := range strings.Fields(span) {
		if strings.HasPrefix(w, "-") || strings.ToUpper(w) == w {
			break
		}
		words = append(words, w)
	}
	if len(words) == 0 {
		return nil
	}
	last := words[len(words)-1]
	var out []string
	for _, alt := range strings.Split(last, "/") {
		out = append(out, strings.Join(append(append([]string{}, words[:len(words)-1]...), alt), " "))
	}
	return out
}

func codeList(m map[int]bool) string {
	var cs []int
	for c := range m {
		cs = append(cs, c)
	}
	sort.Ints(cs)
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ", ")
}

// exitCodeMismatches compares each command's EXIT STATUS with docs/EXIT_CODES.md: a code a
// command's row documents must be in its help, and a code its help lists must be documented
// for it (its row, or one of the general codes 0, 1, 2). A row naming no command is wrong too.
func exitCodeMismatches(help map[string]map[int]bool, per map[string]map[int]bool) []string {
	general := map[int]bool{}
	for _, c := range generalCodes {
		general[c] = true
	}
	var out []string
	for name, doc := range per {
		h, ok := help[name]
		if !ok {
			out = append(out, "docs/EXIT_CODES.md has a row for `"+name+"`, which is no command")
			continue
		}
		missing := map[int]bool{}
		for c := range doc {
			if !h[c] {
				missing[c] = true
			}
		}
		if len(missing) > 0 {
			out = append(out, "`cfrollback "+name+" --help` EXIT STATUS lacks "+codeList(missing)+", which docs/EXIT_CODES.md gives it")
		}
	}
	for name, h := range help {
		undocumented := map[int]bool{}
		for c := range h {
			if !general[c] && !per[name][c] {
				undocumented[c] = true
			}
		}
		if len(undocumented) > 0 {
			out = append(out, "`cfrollback "+name+" --help` EXIT STATUS lists "+codeList(undocumented)+
				", which docs/EXIT_CODES.md does not give it (add them to its row in \"Per command\")")
		}
	}
	sort.Strings(out)
	return out
}

// TestExitStatusMatchesExitCodesDoc: every command's --help EXIT STATUS and
// docs/EXIT_CODES.md say the same codes.
func TestExitStatusMatchesExitCodesDoc(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "EXIT_CODES.md"))
	if err != nil {
		t.Fatal(err)
	}
	main, per := docExitCodes(t, string(b))
	if strings.Trim(strings.Join(strings.Fields(strings.Trim(strconvInts(main), "[]")), ","), ",") != "0,1,2,3,4,5,6" {
		t.Fatalf("the main table of docs/EXIT_CODES.md reads as codes %v, want 0-6", main)
	}
	if len(per) < 10 || per["emergency"] == nil || per["deploy"] == nil {
		t.Fatalf("the Per command table reads as %v", per)
	}
	help := map[string]map[int]bool{}
	for _, c := range tableCommands(RootCommand()) {
		help[tablePath(c)] = helpExitCodes(c.Long)
	}
	for _, problem := range exitCodeMismatches(help, per) {
		t.Error(problem)
	}
}

func strconvInts(cs []int) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, " ")
}

// TestExitCodesDocParsing: the doc's rows read as their codes, and a disagreement either way
// is reported, so the comparison can fail.
func TestExitCodesDocParsing(t *testing.T) {
	md := "| code | meaning |\n| --- | --- |\n| 0 | ok |\n| 1 | failed |\n| 2 | usage |\n| 3 | pre |\n| 4 | after |\n| 5 | unhealthy |\n| 6 | locked |\n\n" +
		"## Per command\n\n| command | codes |\n| --- | --- |\n" +
		"| `emergency` | as above |\n" +
		"| `rollback --to ID` | as `emergency`; also 1 when declined, 2 without a terminal |\n" +
		"| `deploy` | 0 deployed (the gate; also `--dry-run`); 3 nothing (no backup, 4 dirs); **20** rolled back; 21-22 worse |\n" +
		"| `config set/restore`, `agents import` | 0, 1 refused (invalid input; nothing written), 6 locked |\n" +
		"| `guard` | 0 stopped; 6 another guard (the unit does not restart on 2 or 6) |\n"
	main, per := docExitCodes(t, md)
	want := map[string]string{"emergency": "0, 1, 2, 3, 4, 5, 6", "rollback": "0, 1, 2, 3, 4, 5, 6", "deploy": "0, 3, 20, 21, 22",
		"config set": "0, 1, 6", "config restore": "0, 1, 6", "agents import": "0, 1, 6", "guard": "0, 6"}
	if len(main) != 7 || len(per) != len(want) {
		t.Fatalf("main %v, per %v", main, per)
	}
	for name, w := range want {
		if got := codeList(per[name]); got != w {
			t.Errorf("%s: codes %s, want %s", name, got, w)
		}
	}
	if got := codeList(helpExitCodes("x" + exitStatusHelp("0  ok", "10 P0   11 P1", "3-6 with --act", "1  failed     2  usage"))); got != "0, 1, 2, 3, 4, 5, 6, 10, 11" {
		t.Errorf("help codes %s", got)
	}
	help := map[string]map[int]bool{
		"emergency": {0: true, 2: true, 3: true, 4: true, 5: true, 6: true}, // lacks 1
		"deploy":    {0: true, 2: true, 3: true, 20: true, 21: true, 22: true},
		"monitor":   {0: true, 6: true}, // 6 undocumented
	}
	got := strings.Join(exitCodeMismatches(help, map[string]map[int]bool{
		"emergency": per["emergency"], "deploy": per["deploy"], "gone": {0: true}}), "\n")
	for _, w := range []string{"`cfrollback emergency --help` EXIT STATUS lacks 1,", "`cfrollback monitor --help` EXIT STATUS lists 6,",
		"a row for `gone`, which is no command"} {
		if !strings.Contains(got, w) {
			t.Errorf("mismatches do not say %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "deploy") {
		t.Errorf("deploy agrees, yet:\n%s", got)
	}
}
