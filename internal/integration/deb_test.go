package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/cli"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// TestDebPackage builds the .deb with `make deb`, installs it with dpkg into
// a throwaway root (dpkg --root: the machine's own /usr and /etc are never
// touched), runs the binary, reads a man page for every command, loads the
// bash completion, and purges it again.
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
	if s := dpkg("-s", "cfrollback"); !strings.Contains(s, "/etc/cfrollback/config.yaml") {
		t.Fatalf("config.yaml is not a conffile:\n%s", s)
	}
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
