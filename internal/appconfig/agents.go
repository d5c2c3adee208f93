package appconfig

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// BundleFormat marks an agents export/checkpoint file.
const BundleFormat = "cfrollback-agents/1"

// Bundle is a whole agents directory in one JSON file: every regular file
// with its sha256, so an import can check it before touching anything.
type Bundle struct {
	Format     string       `json:"format"`
	Time       time.Time    `json:"time"`
	Source     string       `json:"source"`
	AppVersion string       `json:"app_version,omitempty"`
	User       string       `json:"user"`
	Host       string       `json:"host"`
	Reason     string       `json:"reason,omitempty"`
	Files      []BundleFile `json:"files"`
}

// BundleFile is one file of the agents directory.
type BundleFile struct {
	Path   string `json:"path"` // slash-separated, relative to the agents dir
	Mode   string `json:"mode"` // octal permission bits, e.g. 0644
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
	// Content is the text; ContentBase64 is used instead for a file that is
	// not UTF-8.
	Content       string `json:"content,omitempty"`
	ContentBase64 string `json:"content_base64,omitempty"`
}

// Data returns the file's bytes.
func (f BundleFile) Data() ([]byte, error) {
	if f.ContentBase64 != "" {
		return base64.StdEncoding.DecodeString(f.ContentBase64)
	}
	return []byte(f.Content), nil
}

// Agent is one definition's front matter.
type Agent struct {
	Name         string         `yaml:"name" json:"name"`
	Type         string         `yaml:"type" json:"type,omitempty"`
	Description  string         `yaml:"description" json:"description,omitempty"`
	Capabilities []string       `yaml:"capabilities" json:"capabilities,omitempty"`
	Priority     any            `yaml:"priority" json:"priority,omitempty"`
	Hooks        map[string]any `yaml:"hooks" json:"hooks,omitempty"`
}

// AgentStatus is one file of the agents dir after parsing.
type AgentStatus struct {
	File     string   `json:"file"`
	Agent    *Agent   `json:"agent,omitempty"`
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
}

// OK says the definition can be used.
func (s AgentStatus) OK() bool { return len(s.Errors) == 0 }

var priorities = []string{"low", "medium", "high", "critical"}

// ParseAgent reads a Markdown definition's YAML front matter and checks
// it: name and description are required, capabilities is a list, priority
// one of low, medium, high, critical (or a number), hooks a map.
func ParseAgent(file string, data []byte) AgentStatus {
	st := AgentStatus{File: file, Errors: []string{}, Warnings: []string{}}
	text := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	if !bytes.HasPrefix(text, []byte("---\n")) {
		st.Warnings = append(st.Warnings, "no YAML front matter (--- at the top): not an agent definition, kept as a plain file")
		return st
	}
	rest := text[4:]
	end := bytes.Index(rest, []byte("\n---"))
	if bytes.HasPrefix(rest, []byte("---")) {
		st.Errors = append(st.Errors, "empty front matter")
		return st
	}
	if end < 0 {
		st.Errors = append(st.Errors, "front matter is not closed by a --- line")
		return st
	}
	var raw map[string]any
	if err := yaml.Unmarshal(rest[:end], &raw); err != nil {
		// Claude Flow's own init writes descriptions such as
		// "Use this agent when ... Examples: <example>Context: ..." unquoted,
		// which strict YAML refuses; read such one-line values literally.
		quoted, changed := quoteColonValues(rest[:end])
		if !changed || yaml.Unmarshal(quoted, &raw) != nil {
			// yaml's line numbers count from the first front matter line,
			// which is line 2 of the file.
			st.Errors = append(st.Errors, "front matter: "+shiftYAMLLines(err.Error()))
			return st
		}
		st.Warnings = append(st.Warnings, "front matter is not strict YAML ("+shiftYAMLLines(err.Error())+"); values containing \": \" read literally")
	}
	// Claude Flow's definitions also keep the description under metadata
	// and give capabilities as a map of tool lists.
	if m, ok := raw["metadata"].(map[string]any); ok && raw["description"] == nil {
		if d, ok := m["description"].(string); ok {
			raw["description"] = d
		}
	}
	if m, ok := raw["capabilities"].(map[string]any); ok {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		raw["capabilities"] = keys
	}
	var a Agent
	b, _ := yaml.Marshal(raw)
	if err := yaml.Unmarshal(b, &a); err != nil {
		st.Errors = append(st.Errors, "front matter: "+shiftYAMLLines(err.Error()))
		return st
	}
	st.Agent = &a
	if strings.TrimSpace(a.Name) == "" {
		st.Errors = append(st.Errors, "name is required")
	}
	if strings.TrimSpace(a.Description) == "" {
		st.Errors = append(st.Errors, "description is required")
	}
	if a.Type == "" {
		st.Warnings = append(st.Warnings, "no type")
	}
	switch p := a.Priority.(type) {
	case nil, int, float64:
	case string:
		if !contains(priorities, strings.ToLower(p)) {
			st.Errors = append(st.Errors, fmt.Sprintf("priority %q: use one of %s", p, strings.Join(priorities, ", ")))
		}
	default:
		st.Errors = append(st.Errors, "priority must be low, medium, high, critical or a number")
	}
	for k := range raw {
		switch k {
		case "name", "type", "description", "capabilities", "priority", "hooks", "color", "tools", "model", "metadata", "triggers", "version":
		default:
			st.Warnings = append(st.Warnings, fmt.Sprintf("unknown front matter field %q", k))
		}
	}
	return st
}

// quoteColonValues double-quotes every top-level one-line plain value that
// holds ": " (which strict YAML takes for a nested mapping), and says
// whether it changed any.
func quoteColonValues(fm []byte) ([]byte, bool) {
	lines := strings.Split(string(fm), "\n")
	changed := false
	for i, l := range lines {
		m := plainKeyValue().FindStringSubmatch(l)
		if m == nil || !strings.Contains(m[2], ": ") || strings.ContainsAny(m[2][:1], "\"'[{|>&*!#") {
			continue
		}
		q, _ := json.Marshal(strings.TrimRight(m[2], " \t"))
		lines[i] = m[1] + ": " + string(q)
		changed = true
	}
	return []byte(strings.Join(lines, "\n")), changed
}

var plainKeyValue = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_-]*):[ \t]+(\S.*)$`) })

func shiftYAMLLines(msg string) string {
	// "yaml: line 3: ..." -> file line 4
	var n int
	if _, err := fmt.Sscanf(msg, "yaml: line %d:", &n); err == nil {
		return fmt.Sprintf("line %d:%s", n+1, strings.TrimPrefix(msg, fmt.Sprintf("yaml: line %d:", n)))
	}
	return strings.TrimPrefix(msg, "yaml: ")
}

// CheckSet parses every Markdown file of a set and adds an error to each
// definition whose name another one in the same directory also uses (a
// warning when the other is in another directory).
func CheckSet(files []BundleFile) []AgentStatus {
	var out []AgentStatus
	byName := map[string][]int{}
	for _, f := range files {
		if !strings.EqualFold(path.Ext(f.Path), ".md") {
			continue
		}
		data, err := f.Data()
		if err != nil {
			out = append(out, AgentStatus{File: f.Path, Errors: []string{err.Error()}, Warnings: []string{}})
			continue
		}
		st := ParseAgent(f.Path, data)
		if st.Agent != nil && st.Agent.Name != "" {
			byName[st.Agent.Name] = append(byName[st.Agent.Name], len(out))
		}
		out = append(out, st)
	}
	for name, idx := range byName {
		if len(idx) < 2 {
			continue
		}
		for _, i := range idx {
			var same, elsewhere []string
			for _, j := range idx {
				switch {
				case j == i:
				case path.Dir(out[j].File) == path.Dir(out[i].File):
					same = append(same, out[j].File)
				default:
					elsewhere = append(elsewhere, out[j].File)
				}
			}
			if len(same) > 0 {
				out[i].Errors = append(out[i].Errors, fmt.Sprintf("name %q is also used by %s", name, strings.Join(same, ", ")))
			}
			// Claude Flow's init itself ships one name in two categories
			// (github/pr-manager.md, templates/github-pr-manager.md): the app
			// runs, one definition shadows the other.
			if len(elsewhere) > 0 {
				out[i].Warnings = append(out[i].Warnings, fmt.Sprintf("name %q is also used by %s (only one of them is used)", name, strings.Join(elsewhere, ", ")))
			}
		}
	}
	return out
}

// ReadDir reads every regular file under dir into bundle files, sorted by
// path. Symlinks and other special files are refused: an import could not
// reproduce them faithfully.
func ReadDir(dir string) ([]BundleFile, error) {
	var files []BundleFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file (symlinks and special files are not exported)", p)
		}
		data, err := fsutil.ReadFile(p, fsutil.MaxSmallFile)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		bf := BundleFile{Path: filepath.ToSlash(rel), Mode: fmt.Sprintf("%04o", fi.Mode().Perm()), SHA256: SHA256Hex(data), Size: len(data)}
		if utf8.Valid(data) {
			bf.Content = string(data)
		} else {
			bf.ContentBase64 = base64.StdEncoding.EncodeToString(data)
		}
		files = append(files, bf)
		return nil
	})
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, err
}

// NewBundle describes files read from source.
func NewBundle(source string, files []BundleFile, appVersion, reason string, now time.Time) Bundle {
	host, _ := os.Hostname()
	if files == nil {
		files = []BundleFile{}
	}
	return Bundle{Format: BundleFormat, Time: now.Round(0), Source: source, AppVersion: appVersion, User: Who(), Host: host,
		Reason: reason, Files: files}
}

// WriteBundle writes b to path (a new file; see WriteNew), mode 0600.
func WriteBundle(path string, b Bundle) (string, error) {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return "", err
	}
	return WriteNew(path, append(data, '\n'), 0o600)
}

// ReadBundle reads a bundle and checks every file against its sha256 and
// that every path stays inside the agents dir.
func ReadBundle(p string) (Bundle, error) {
	data, err := fsutil.ReadFile(p, fsutil.MaxLargeFile)
	if err != nil {
		return Bundle{}, err
	}
	var b Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		if _, perr := Parse(data); perr != nil {
			return b, fmt.Errorf("%s: %w", p, perr)
		}
		return b, fmt.Errorf("%s: %w", p, err)
	}
	if b.Format != BundleFormat {
		return b, fmt.Errorf("%s is not an agents bundle (format %q, want %q); make one with 'cfrollback agents export'", p, b.Format, BundleFormat)
	}
	seen := map[string]bool{}
	for _, f := range b.Files {
		clean := path.Clean(f.Path)
		if f.Path == "" || clean != f.Path || path.IsAbs(clean) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(f.Path, "\\") {
			return b, fmt.Errorf("%s: file path %q is not a clean path inside the agents dir", p, f.Path)
		}
		if strings.ContainsRune(f.Path, 0) {
			return b, fmt.Errorf("%s: file path %q holds a NUL byte; no file system can create it", p, f.Path)
		}
		if seen[clean] {
			return b, fmt.Errorf("%s: file %q appears twice", p, f.Path)
		}
		seen[clean] = true
		data, err := f.Data()
		if err != nil {
			return b, fmt.Errorf("%s: file %s: %w", p, f.Path, err)
		}
		if SHA256Hex(data) != f.SHA256 {
			return b, fmt.Errorf("%s: file %s does not match its sha256: the bundle was edited or damaged", p, f.Path)
		}
		if _, err := parseMode(f.Mode); err != nil {
			return b, fmt.Errorf("%s: file %s: %w", p, f.Path, err)
		}
	}
	// A path that is a file and also the directory of another (a.md and a.md/b.md) cannot
	// be written: found here, before the lock, the checkpoint and the journal.
	for _, f := range b.Files {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			if seen[dir] {
				return b, fmt.Errorf("%s: %q is a file and also the directory of %q; a bundle cannot hold both", p, dir, f.Path)
			}
		}
	}
	return b, nil
}

func parseMode(s string) (fs.FileMode, error) {
	if s == "" {
		return 0o644, nil
	}
	var m uint32
	if _, err := fmt.Sscanf(s, "%o", &m); err != nil || m > 0o777 {
		return 0, fmt.Errorf("mode %q is not octal permission bits such as 0644", s)
	}
	return fs.FileMode(m), nil
}
