package integration

// The app's own files as the real `claude-flow init` writes them: its config
// (claude-flow.config.json) under `cfrollback config`, its agent definitions
// (.claude/agents) under `cfrollback agents`.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// validateResult is `config validate --json`.
type validateResult struct {
	File     string            `json:"file"`
	OK       bool              `json:"ok"`
	Errors   []json.RawMessage `json:"errors"`
	Warnings []struct {
		Key     string `json:"key"`
		Message string `json:"message"`
	} `json:"warnings"`
}

func TestRealClaudeFlowAppConfig(t *testing.T) {
	for _, version := range []string{testenv.ClaudeFlowGood, testenv.ClaudeFlowNew} {
		t.Run(version, func(t *testing.T) {
			realAppConfig(t, newRealApp(t, version))
		})
	}
}

func realAppConfig(t *testing.T, a *realApp) {
	cfg := filepath.Join(a.Install, "claude-flow.config.json")
	// The default app_config is <install>/config.json, else claude-flow.config.json:
	// init writes only the second, so that is the file every command below works on.
	if _, err := os.Stat(filepath.Join(a.Install, "config.json")); !os.IsNotExist(err) {
		t.Fatalf("claude-flow init wrote config.json (%v): the fallback is not what is tested", err)
	}
	orig := readBytes(t, cfg)

	// The file the app wrote is valid, and every key of it is one the validator knows:
	// an "unknown key (check the spelling)" warning on the app's own file would be false.
	v := a.run(nil, "config", "validate", "--json")
	vr := decodeStdout[validateResult](t, v)
	if v.Code != 0 || !vr.OK || len(vr.Errors) != 0 || vr.File != cfg {
		t.Fatalf("config validate of the real %s: exit %d, ok %v, file %s, errors %s\n%s", cfg, v.Code, vr.OK, vr.File, vr.Errors, v.Stderr)
	}
	if len(vr.Warnings) != 0 {
		t.Fatalf("config validate warns about the keys the real app writes: %+v", vr.Warnings)
	}
	// The other JSON files init writes are not the app config (Claude Code's settings,
	// the hive mind's config, the MCP server list), but `config validate FILE` takes any
	// file, e.g. an app_config pointed elsewhere: their syntax passes and no key it
	// knows holds a bad value. Their own keys are unknown to it (warnings): expected.
	for _, rel := range []string{".claude/settings.json", ".claude/settings.local.json", ".hive-mind/config.json", ".mcp.json"} {
		p := filepath.Join(a.Install, rel)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("claude-flow init did not write %s: %v", rel, err)
		}
		r := a.run(nil, "config", "validate", p, "--json")
		if got := decodeStdout[validateResult](t, r); r.Code != 0 || !got.OK || len(got.Errors) != 0 {
			t.Errorf("config validate %s: exit %d, ok %v, errors %s\n%s", rel, r.Code, got.OK, got.Errors, r.Stderr)
		}
	}
	// And validate is no rubber stamp: the same file cut short is refused, with where.
	cut := filepath.Join(a.Dir, "cut.json")
	if err := os.WriteFile(cut, orig[:len(orig)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if r := a.run(nil, "config", "validate", cut); r.Code != 1 || !strings.Contains(r.Stderr+r.Stdout, "cut.json:") {
		t.Fatalf("config validate of a truncated copy: exit %d, want 1 naming line:column\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	if r := a.run(nil, "config", "get", "performance.maxAgents"); r.Code != 0 || r.Stdout != "10\n" {
		t.Fatalf("config get performance.maxAgents: exit %d, %q, want 10\n%s", r.Code, r.Stdout, r.Stderr)
	}
	bk := a.run(nil, "config", "backup", "--json")
	checkpoint, _ := bk.JSON["path"].(string)
	if bk.Code != 0 || checkpoint == "" {
		t.Fatalf("config backup: exit %d\n%s%s", bk.Code, bk.Stdout, bk.Stderr)
	}
	if v, _ := bk.JSON["app_version"].(string); "v"+v != a.version(t) {
		t.Errorf("config backup recorded app version %q, the app says %s", v, a.version(t))
	}

	// A value the app's key cannot hold is refused, the file untouched.
	if r := a.run(nil, "config", "set", "performance.maxAgents", "0"); r.Code != 1 || !bytes.Equal(readBytes(t, cfg), orig) {
		t.Fatalf("config set performance.maxAgents 0: exit %d (want 1, file unchanged)\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	set := a.run(nil, "config", "set", "performance.maxAgents", "12", "--json")
	if set.Code != 0 || set.JSON["changed"] != true {
		t.Fatalf("config set performance.maxAgents 12: exit %d\n%s%s", set.Code, set.Stdout, set.Stderr)
	}
	after := readBytes(t, cfg)
	var doc struct {
		Performance struct{ MaxAgents int } `json:"performance"`
	}
	if err := json.Unmarshal(after, &doc); err != nil || doc.Performance.MaxAgents != 12 {
		t.Fatalf("after config set the file holds maxAgents %d (%v):\n%s", doc.Performance.MaxAgents, err, after)
	}
	want := jsonLeaves(t, orig)
	changed := 0
	for i, l := range want {
		if l == "performance.maxAgents=json.Number:10" {
			want[i], changed = "performance.maxAgents=json.Number:12", changed+1
		}
	}
	if changed != 1 {
		t.Fatalf("the original file has no performance.maxAgents 10: %q", want)
	}
	if got := jsonLeaves(t, after); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("config set changed more than one key or the order:\ngot\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if r := a.run(nil, "config", "restore", "--file", checkpoint); r.Code != 0 {
		t.Fatalf("config restore --file %s: exit %d\n%s%s", checkpoint, r.Code, r.Stdout, r.Stderr)
	}
	if got := readBytes(t, cfg); !bytes.Equal(got, orig) {
		t.Fatalf("after config restore the file is not the original:\n%s\nwant\n%s", got, orig)
	}

	checkpoints := glob(t, filepath.Join(a.Backups, "config", "*"))
	dry := a.run(nil, "config", "set", "performance.maxAgents", "14", "--dry-run", "--json")
	if dry.Code != 0 || dry.JSON["would_change"] != true {
		t.Fatalf("config set --dry-run: exit %d\n%s%s", dry.Code, dry.Stdout, dry.Stderr)
	}
	if got := readBytes(t, cfg); !bytes.Equal(got, orig) {
		t.Fatalf("config set --dry-run changed the file:\n%s", got)
	}
	if now := glob(t, filepath.Join(a.Backups, "config", "*")); len(now) != len(checkpoints) {
		t.Fatalf("config set --dry-run wrote a checkpoint: %v, before %v", now, checkpoints)
	}
	if r := a.run(nil, "config", "get", "performance.maxAgents"); r.Stdout != "10\n" {
		t.Fatalf("config get after restore and dry run: %q, want 10", r.Stdout)
	}
}

// TestRealClaudeFlowAgents: the ~70 definitions the real init writes pass `agents status`,
// survive an export/import round trip byte for byte, and come back after a reset.
func TestRealClaudeFlowAgents(t *testing.T) {
	a := newRealApp(t, testenv.ClaudeFlowGood)
	dir := filepath.Join(a.Install, ".claude", "agents")
	before := treeSums(t, dir)
	md := 0
	for p := range before {
		if strings.HasSuffix(p, ".md") {
			md++
		}
	}
	if md < 50 {
		t.Fatalf("claude-flow init wrote %d agent definitions, expected about 70", md)
	}

	type agentsStatus struct {
		OK     bool `json:"ok"`
		Agents []struct {
			File   string   `json:"file"`
			Errors []string `json:"errors"`
		} `json:"agents"`
		Hive *struct {
			Present bool   `json:"present"`
			Error   string `json:"error"`
		} `json:"hive"`
	}
	st := a.run(nil, "agents", "status", "--health-check", "--json")
	sr := decodeStdout[agentsStatus](t, st)
	var invalid []string
	for _, ag := range sr.Agents {
		if len(ag.Errors) > 0 {
			invalid = append(invalid, ag.File+": "+strings.Join(ag.Errors, "; "))
		}
	}
	if st.Code != 0 || !sr.OK || len(invalid) > 0 {
		t.Fatalf("agents status --health-check on what init wrote: exit %d, ok %v; invalid:\n%s\n%s", st.Code, sr.OK, strings.Join(invalid, "\n"), st.Stderr)
	}
	if len(sr.Agents) != md {
		t.Errorf("agents status checked %d files, there are %d .md files", len(sr.Agents), md)
	}
	if sr.Hive == nil || !sr.Hive.Present || sr.Hive.Error != "" {
		t.Errorf("agents status --health-check did not read the real .hive-mind/hive.db: %+v", sr.Hive)
	}

	bundle := filepath.Join(a.Dir, "agents-export.json")
	if ex := a.run(nil, "agents", "export", "--output", bundle, "--json"); ex.Code != 0 {
		t.Fatalf("agents export: exit %d\n%s%s", ex.Code, ex.Stdout, ex.Stderr)
	}
	var b struct {
		Files []struct{ Path string } `json:"files"`
	}
	if err := json.Unmarshal(readBytes(t, bundle), &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Files) != md || len(b.Files) != len(before) {
		t.Fatalf("the export holds %d files; the agents dir has %d .md files, %d files", len(b.Files), md, len(before))
	}
	for _, f := range b.Files {
		if _, ok := before[f.Path]; !ok {
			t.Errorf("the export holds %s, which is not in the agents dir", f.Path)
		}
	}

	// An operator's damage: one definition gone, another edited.
	if err := os.Remove(filepath.Join(dir, "core", "coder.md")); err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(dir, "core", "planner.md")
	if err := os.WriteFile(edited, append(readBytes(t, edited), "\nEdited by hand.\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if diff := diffSums(before, treeSums(t, dir)); len(diff) != 2 {
		t.Fatalf("the damage is not what this test meant: %v", diff)
	}
	if im := a.run(nil, "agents", "import", "--file", bundle); im.Code != 0 {
		t.Fatalf("agents import --file %s: exit %d\n%s%s", bundle, im.Code, im.Stdout, im.Stderr)
	}
	if diff := diffSums(before, treeSums(t, dir)); len(diff) > 0 {
		t.Fatalf("after agents import the tree differs from before: %v", diff)
	}

	if r := a.run(nil, "agents", "reset", "--template", "executive-assistant"); r.Code != 0 {
		t.Fatalf("agents reset --template executive-assistant: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	reset := treeSums(t, dir)
	if _, ok := reset["executive-assistant.md"]; !ok || len(reset) >= len(before) {
		t.Fatalf("after agents reset the dir holds %d files (executive-assistant.md: %v)", len(reset), ok)
	}
	if r := a.run(nil, "agents", "status"); r.Code != 0 {
		t.Fatalf("agents status after reset: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if im := a.run(nil, "agents", "import", "--file", bundle); im.Code != 0 {
		t.Fatalf("agents import after reset: exit %d\n%s%s", im.Code, im.Stdout, im.Stderr)
	}
	if diff := diffSums(before, treeSums(t, dir)); len(diff) > 0 {
		t.Fatalf("after reset and import the tree differs from the real set: %v", diff)
	}
}

// decodeStdout decodes a --json command's stdout into T; a failure fails the test.
func decodeStdout[T any](t *testing.T, r runResult) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		t.Fatalf("stdout is not the JSON expected (exit %d): %v\n%s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	return v
}

func readBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonLeaves lists a JSON document's scalar values in file order as
// "dotted.key=type:value": equal lists mean the same keys, order and values.
func jsonLeaves(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []string
	var value func(path string)
	value = func(path string) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					t.Fatal(err)
				}
				value(strings.TrimPrefix(path+"."+k.(string), "."))
			}
			_, _ = dec.Token()
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				value(fmt.Sprintf("%s[%d]", path, i))
			}
			_, _ = dec.Token()
		default:
			out = append(out, fmt.Sprintf("%s=%T:%v", path, tok, tok))
		}
	}
	value("")
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("trailing data after the JSON document: %v", err)
	}
	return out
}

// treeSums is every regular file under dir (slash path) with its mode and sha256.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := sha256.Sum256(data)
		sums[filepath.ToSlash(rel)] = fmt.Sprintf("%v %s", fi.Mode().Perm(), hex.EncodeToString(h[:]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// diffSums names the files that differ between two treeSums.
func diffSums(want, got map[string]string) []string {
	var diff []string
	for p, s := range want {
		switch g, ok := got[p]; {
		case !ok:
			diff = append(diff, "missing "+p)
		case g != s:
			diff = append(diff, "changed "+p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diff = append(diff, "extra "+p)
		}
	}
	return diff
}
