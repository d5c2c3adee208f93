package appconfig

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseAgent(t *testing.T) {
	cases := map[string]string{
		"---\nname: a\ndescription: d\npriority: high\ncapabilities: [x]\nhooks:\n  pre: echo\n---\nbody": "",
		"---\nname: a\n---\n":                                   "description is required",
		"---\ndescription: d\n---\n":                            "name is required",
		"---\nname: a\ndescription: d\npriority: urgent\n---\n": `priority "urgent"`,
		"---\nname: a\ndescription: d\n":                        "not closed",
		"---\nname: [a\ndescription: d\n---\n":                  "front matter: line",
		"---\nname: a\ndescription: d\ncapabilities: 5\n---\n":  "front matter",
	}
	for text, want := range cases {
		st := ParseAgent("x.md", []byte(text))
		got := strings.Join(st.Errors, "; ")
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%q: errors %q, want %q", text, got, want)
		}
	}
	if st := ParseAgent("README.md", []byte("# hi")); !st.OK() || st.Agent != nil || len(st.Warnings) != 1 {
		t.Errorf("plain markdown: %+v", st)
	}
}

func TestTemplatesAreValid(t *testing.T) {
	if len(Templates()) == 0 || Templates()[0] != "executive-assistant" {
		t.Fatalf("templates %v", Templates())
	}
	for _, name := range Templates() {
		files, err := Template(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range CheckSet(files) {
			if !st.OK() || st.Agent == nil || len(st.Warnings) > 0 {
				t.Errorf("%s/%s: %+v", name, st.File, st)
			}
		}
	}
	if _, err := Template("../x"); err == nil {
		t.Error("a path was accepted as a template name")
	}
}

func TestReplaceDirSwapsWholeSet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agents")
	mk := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	mk("old.md", "---\nname: old\ndescription: d\n---\n")
	mk("sub/deep.md", "x")
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	before, err := ReadDir(dir)
	if err != nil || len(before) != 2 {
		t.Fatalf("%v %v", before, err)
	}
	files, _ := Template("executive-assistant")
	if err := ReplaceDir(dir, files, time.Now()); err != nil {
		t.Fatal(err)
	}
	after, _ := ReadDir(dir)
	if len(after) != len(files) {
		t.Fatalf("after: %d files, want %d", len(after), len(files))
	}
	for i := range files {
		if after[i].SHA256 != files[i].SHA256 {
			t.Errorf("%s differs", files[i].Path)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o750 {
		t.Errorf("dir mode %v, want 0750 kept", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(filepath.Dir(dir))
	if len(ents) != 1 {
		t.Errorf("leftovers beside the agents dir: %v", ents)
	}
	// And back, from the bundle of the old set.
	if err := ReplaceDir(dir, before, time.Now()); err != nil {
		t.Fatal(err)
	}
	back, _ := ReadDir(dir)
	if len(back) != 2 || back[0].SHA256 != before[0].SHA256 || back[0].Mode != "0640" {
		t.Errorf("round trip: %+v", back)
	}
	// A dir that does not exist yet is created.
	fresh := filepath.Join(t.TempDir(), "x", "agents")
	if err := ReplaceDir(fresh, files, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestReadBundleRefusesEscapes(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"../x.md", "/etc/x.md", "a/../../x.md", "", "a//b.md"} {
		b := NewBundle("src", []BundleFile{{Path: p, Mode: "0644", SHA256: SHA256Hex(nil)}}, "", "", time.Now())
		f, err := WriteBundle(filepath.Join(dir, "b.json"), b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ReadBundle(f); err == nil || !strings.Contains(err.Error(), "not a clean path") {
			t.Errorf("path %q: %v", p, err)
		}
		os.Remove(f)
	}
}

// A set that cannot be written is refused when it is read, before any lock, checkpoint or
// journal record: a NUL in a path, a path that is a file and a directory at once.
func TestReadBundleRefusesUnwritableSets(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		paths []string
		want  string
	}{
		{[]string{"a\x00b.md"}, "NUL byte"},
		{[]string{"core/a.md", "core/a.md/b.md"}, `"core/a.md" is a file and also the directory of "core/a.md/b.md"`},
		{[]string{"x/y/z.md", "x"}, `"x" is a file and also the directory of "x/y/z.md"`},
	} {
		var files []BundleFile
		for _, p := range c.paths {
			files = append(files, BundleFile{Path: p, Mode: "0644", SHA256: SHA256Hex(nil)})
		}
		f, err := WriteBundle(filepath.Join(dir, "b.json"), NewBundle("src", files, "", "", time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ReadBundle(f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.paths, err, c.want)
		}
		os.Remove(f)
	}
	// and a set with only sibling files and nested dirs is fine
	f, err := WriteBundle(filepath.Join(dir, "ok.json"), NewBundle("src", []BundleFile{
		{Path: "core/a.md", Mode: "0644", SHA256: SHA256Hex(nil)}, {Path: "core/sub/b.md", Mode: "0644", SHA256: SHA256Hex(nil)},
	}, "", "", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBundle(f); err != nil {
		t.Errorf("a sound set: %v", err)
	}
}

func TestHiveCounts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hive.db")
	db, err := sql.Open("sqlite3", "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE agents(id TEXT, status TEXT);
		INSERT INTO agents VALUES ('a','active'),('b','active'),('c','idle'),('d',NULL)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	got, err := HiveCounts(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got["active"] != 2 || got["idle"] != 1 || got["unknown"] != 1 {
		t.Errorf("counts %v", got)
	}
	if _, err := HiveCounts(context.Background(), filepath.Join(t.TempDir(), "none.db")); err == nil {
		t.Error("a missing database was read (mode=ro must not create it)")
	}
}

// The front matter the real claude-flow init writes (excerpts of its own files).
func TestParseAgentClaudeFlowFormats(t *testing.T) {
	cases := []struct {
		name, text, wantWarning string
	}{
		{"description under metadata", "---\nname: \"backend-dev\"\ntype: \"development\"\nmetadata:\n  description: \"Specialized agent for backend API development\"\n  autonomous: true\n---\n", ""},
		{"capabilities as a map of tool lists", "---\nname: ci\ndescription: d\ntype: devops\ncapabilities:\n  allowed_tools: [Read, Write]\n  restricted_tools: [WebSearch]\n---\n", ""},
		{"one-line value holding ': '", "---\nname: base-template-generator\ntype: t\ndescription: Use this agent when ... Examples: <example>Context: User needs a template. user: 'I need one'</example>\ncolor: orange\n---\n", "read literally"},
	}
	for _, c := range cases {
		st := ParseAgent("x.md", []byte(c.text))
		if !st.OK() || st.Agent == nil || st.Agent.Description == "" {
			t.Errorf("%s: %+v", c.name, st)
			continue
		}
		if got := strings.Join(st.Warnings, "; "); (c.wantWarning == "") != (got == "") || !strings.Contains(got, c.wantWarning) {
			t.Errorf("%s: warnings %q, want %q", c.name, got, c.wantWarning)
		}
	}
	if st := ParseAgent("x.md", []byte("---\nname: a\ndescription: d\ncapabilities:\n  allowed_tools: [Read, Write]\n---\n")); st.Agent == nil || strings.Join(st.Agent.Capabilities, ",") != "allowed_tools" {
		t.Errorf("capabilities map: %+v", st.Agent)
	}
	// Broken YAML that quoting cannot mend is still an error.
	if st := ParseAgent("x.md", []byte("---\nname: [a\ndescription: x: y\n---\n")); st.OK() {
		t.Errorf("broken front matter accepted: %+v", st)
	}
}

// A name used twice: in one directory an error, in two directories (as the real init ships
// pr-manager and code-analyzer) a warning.
func TestCheckSetDuplicateNames(t *testing.T) {
	def := func(p, name string) BundleFile {
		return BundleFile{Path: p, Content: "---\nname: " + name + "\ndescription: d\n---\n"}
	}
	sts := CheckSet([]BundleFile{def("github/pr-manager.md", "pr-manager"), def("templates/github-pr-manager.md", "pr-manager")})
	for _, st := range sts {
		if !st.OK() || !strings.Contains(strings.Join(st.Warnings, ";"), `name "pr-manager" is also used by`) {
			t.Errorf("two directories: %+v", st)
		}
	}
	sts = CheckSet([]BundleFile{def("core/a.md", "dup"), def("core/b.md", "dup")})
	for _, st := range sts {
		if st.OK() {
			t.Errorf("same directory accepted: %+v", st)
		}
	}
}
