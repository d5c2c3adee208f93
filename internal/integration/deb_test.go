package integration

import (
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/cli"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// TestDebPackage builds the .deb with `make deb`, installs it with dpkg into
// a throwaway root (dpkg --root: the machine's own /usr and /etc are never
// touched), runs the binary, checks that it is stripped and still stamped, that
// Depends covers the glibc it needs, that the copyright file names every Go module
// linked in and the changelog this version, reads a man page for every command,
// loads the bash completion, and purges it again.
func TestDebPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a package (about a minute)")
	}
	for _, tool := range []string{"dpkg", "man", "make", "gzip", "bash"} {
		testenv.RequireTool(t, tool)
	}
	repo := testenv.RepoRoot(t)
	mk := exec.Command("make", "-s", "deb", "DEB_VERSION=0.0.0+test")
	mk.Dir = repo
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(repo, "dist", "cfrollback_0.0.0+test_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %v", debs)
	}
	t.Cleanup(func() { os.Remove(debs[0]) })

	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dpkg := func(args ...string) string {
		t.Helper()
		// --force-depends: the throwaway root has no libc6 package record.
		cmd := exec.Command("dpkg", append([]string{"--root=" + root, "--force-depends", "--log=" + filepath.Join(root, "dpkg.log")}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	dpkg("-i", debs[0])

	bin := filepath.Join(root, "usr", "bin", "cfrollback")
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "cfrollback ") {
		t.Fatalf("cfrollback --version: %v %s", err, out)
	}
	if strings.Contains(string(out), "commit unknown") || strings.HasPrefix(string(out), "cfrollback dev ") {
		t.Errorf("cfrollback --version of the package is not stamped by the Makefile: %s", out)
	}
	status := dpkg("-s", "cfrollback")
	if !strings.Contains(status, "/etc/cfrollback/config.yaml") {
		t.Fatalf("config.yaml is not a conffile:\n%s", status)
	}
	checkStripped(t, bin, debs[0])
	checkLintian(t, debs[0])
	checkDepends(t, bin, status)
	checkCopyright(t, bin, filepath.Join(root, "usr", "share", "doc", "cfrollback", "copyright"))
	checkChangelog(t, filepath.Join(root, "usr", "share", "doc", "cfrollback", "changelog.gz"), "0.0.0+test")
	// a man page for every visible command
	var walk func(c *cobra.Command)
	pages := 0
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c.HasParent() {
			return
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-")
		man := exec.Command("man", "-P", "cat", name)
		man.Env = append(os.Environ(), "MANPATH="+filepath.Join(root, "usr", "share", "man"), "MANWIDTH=100")
		txt, err := man.CombinedOutput()
		if err != nil || !strings.Contains(string(txt), "SYNOPSIS") {
			t.Errorf("man %s: %v\n%s", name, err, txt)
		}
		title, _, _ := strings.Cut(string(txt), "\n")
		if !strings.HasPrefix(title, strings.ToUpper(name)+"(1)") {
			t.Errorf("man %s: titled %q, want %s(1)", name, title, strings.ToUpper(name))
		}
		for _, sec := range []string{"EXIT STATUS", "ENVIRONMENT", "FILES"} {
			if !regexp.MustCompile(`(?m)^` + sec + `$`).Match(txt) {
				t.Errorf("man %s: no %s section", name, sec)
			}
		}
		pages++
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cli.RootCommand())
	if pages < 10 {
		t.Fatalf("only %d man pages checked", pages)
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib", "systemd", "system", "cfrollback-backup.service"))
	if err != nil || !strings.Contains(string(unit), "ExecStart=/usr/bin/cfrollback backup create") {
		t.Fatalf("scheduled-backup unit missing or not pointing at /usr/bin/cfrollback: %v\n%s", err, unit)
	}
	if _, err := os.Stat(filepath.Join(root, "lib", "systemd", "system", "cfrollback-backup.timer")); err != nil {
		t.Fatal(err)
	}
	if g, err := os.ReadFile(filepath.Join(root, "lib", "systemd", "system", "cfrollback-guard.service")); err != nil || !strings.Contains(string(g), "ExecStart=/usr/bin/cfrollback guard\n") {
		t.Fatalf("guard unit missing or not pointing at /usr/bin/cfrollback: %v\n%s", err, g)
	}
	comp := filepath.Join(root, "usr", "share", "bash-completion", "completions", "cfrollback")
	if out, err := exec.Command("bash", "-c", "source "+comp+" && complete -p cfrollback").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "__start_cfrollback") {
		t.Fatalf("bash completion: %v %s", err, out)
	}

	dpkg("--purge", "cfrollback")
	var left []string
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.Contains(p, "/var/lib/dpkg/") && !strings.HasSuffix(p, "dpkg.log") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("purge left files: %v", left)
	}
}

// checkStripped: no symbol table and no DWARF in the installed binary (-s -w), and a
// position-independent executable (-buildmode=pie); sizes are logged.
func checkStripped(t *testing.T, bin, deb string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Type != elf.ET_DYN {
		t.Errorf("/usr/bin/cfrollback is %v, not a position-independent executable (ET_DYN)", f.Type)
	}
	for _, sec := range f.Sections {
		if sec.Name == ".symtab" || strings.HasPrefix(sec.Name, ".debug_") || strings.HasPrefix(sec.Name, ".zdebug_") {
			t.Errorf("/usr/bin/cfrollback is not stripped: it has %s (%d bytes)", sec.Name, sec.Size)
		}
	}
	for _, p := range []string{bin, deb} {
		if fi, err := os.Stat(p); err == nil {
			t.Logf("size of %s: %.1f MB (%d bytes)", filepath.Base(p), float64(fi.Size())/1e6, fi.Size())
		}
	}
}

var glibcVersion = regexp.MustCompile(`^GLIBC_(\d+)\.(\d+)`)

// checkDepends: the binary needs no GLIBC_x.y symbol version newer than Depends' libc6 (>= ...).
func checkDepends(t *testing.T, bin, status string) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^Depends: .*libc6 \(>= (\d+)\.(\d+)\)`).FindStringSubmatch(status)
	if m == nil {
		t.Fatalf("Depends names no versioned libc6:\n%s", status)
	}
	declared := [2]int{atoi(m[1]), atoi(m[2])}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatalf("dynamic symbols of %s: %v", bin, err)
	}
	var newest [2]int
	var newestSym string
	for _, s := range syms {
		if v := glibcVersion.FindStringSubmatch(s.Version); v != nil {
			if got := [2]int{atoi(v[1]), atoi(v[2])}; got[0] > newest[0] || got[0] == newest[0] && got[1] > newest[1] {
				newest, newestSym = got, s.Name+"@"+s.Version
			}
		}
	}
	if newest[0] > declared[0] || newest[0] == declared[0] && newest[1] > declared[1] {
		t.Errorf("the binary needs %s, but Depends says libc6 (>= %d.%d): raise it in packaging/nfpm.yaml", newestSym, declared[0], declared[1])
	}
	t.Logf("Depends: libc6 (>= %d.%d); the newest glibc symbol the binary needs: %s", declared[0], declared[1], newestSym)
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// checkCopyright: a machine-readable copyright file with a Files paragraph for every Go module
// linked into the binary (as its build info lists them) and every license it names spelled out.
func checkCopyright(t *testing.T, bin, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no copyright file: %v", err)
	}
	text := string(b)
	if !strings.HasPrefix(text, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") ||
		!strings.Contains(text, "\nFiles: *\n") {
		t.Fatalf("%s is not in the machine-readable format (Format: line, Files: * paragraph)", path)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("build info of %s: %v", bin, err)
	}
	for _, dep := range info.Deps {
		if !strings.Contains(text, "\nFiles: "+dep.Path+"\n") {
			t.Errorf("copyright: no Files paragraph for %s %s, which is linked in (packaging/copyright)", dep.Path, dep.Version)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^License: (.+)$`).FindAllStringSubmatch(text, -1) {
		for _, l := range strings.Split(m[1], " and ") {
			if !regexp.MustCompile(`(?m)^License: ` + regexp.QuoteMeta(l) + `\n `).MatchString(text) {
				t.Errorf("copyright: license %s is used but its text is not given (a License: %s paragraph)", l, l)
			}
		}
	}
}

// checkChangelog: /usr/share/doc/cfrollback/changelog.gz (the name in a native package, whose
// version has no -REVISION) opens with this version and ends with a maintainer line dated in
// RFC 2822.
func checkChangelog(t *testing.T, path, version string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no changelog: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("changelog.gz: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	if want := "cfrollback (" + version + ") unstable; urgency=medium"; string(first) != want {
		t.Errorf("changelog starts %q, want %q", first, want)
	}
	m := regexp.MustCompile(`(?m)^ -- .+ <.+>  (.+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("changelog has no maintainer line:\n%s", b)
	}
	if _, err := time.Parse(time.RFC1123Z, string(m[1])); err != nil {
		t.Errorf("changelog date %q is not RFC 2822: %v", m[1], err)
	}
}

// checkLintian runs Debian's package checker when it is installed (it is not one of the tools
// the tests require: scripts/setup-deps.sh does not install it): no error and no warning.
func checkLintian(t *testing.T, deb string) {
	t.Helper()
	lintian, err := exec.LookPath("lintian")
	if err != nil {
		t.Log("lintian is not installed: the package was not checked by it (apt-get install lintian)")
		return
	}
	out, _ := exec.Command(lintian, "--tag-display-limit", "0", deb).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
			t.Errorf("lintian: %s", line)
		}
	}
}
