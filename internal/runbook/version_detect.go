package runbook

// Version detection and the side effects (commands, checkpoints, config writes) of
// rollback --to-version, real and dry-run.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/appconfig"
)

// DetectVersion reads the installed claude-flow version: "version" in
// <install>/package.json (what config checkpoints record), else the global
// npm package. It returns "" when neither says.
func DetectVersion(ctx context.Context, installDir string) (version, source string) {
	version, source, _ = DetectVersionChecked(ctx, installDir)
	return version, source
}

// DetectVersionChecked is DetectVersion that also says why a package.json of the install
// could not be read (appconfig.AppVersionChecked: a FIFO or device under that name, not
// JSON, ...), "" when none was unreadable; the caller warns or fails with it.
func DetectVersionChecked(ctx context.Context, installDir string) (version, source, problem string) {
	v, problem := appconfig.AppVersionChecked(installDir)
	if v != "" {
		return v, filepath.Join(installDir, "package.json"), problem
	}
	if v := npmGlobalVersion(ctx); v != "" {
		return v, "npm ls -g", problem
	}
	return "", "", problem
}

// npmGlobalVersion parses `npm ls -g --depth=0 --json`. npm exits non-zero
// for problems elsewhere in the tree, so the output is read regardless.
func npmGlobalVersion(ctx context.Context) string {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ls", "-g", "--depth=0", "--json")
	killGroupOnCancel(cmd)
	out, _ := cmd.Output()
	return ParseNpmLs(out)
}

// ParseNpmLs returns claude-flow's version from `npm ls --json` output.
func ParseNpmLs(out []byte) string {
	var ls struct {
		Dependencies map[string]struct {
			Version string `json:"version"`
		} `json:"dependencies"`
	}
	if json.Unmarshal(out, &ls) != nil {
		return ""
	}
	return ls.Dependencies["claude-flow"].Version
}

func checkpointDir(backupDir string) string { return filepath.Join(backupDir, "config") }

// appConfigFile is the first candidate that exists, else the first one
// (as the config commands choose it).
func appConfigFile(paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[0]
}

func outputTail(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	s := strings.Join(lines, " | ")
	if len(s) > 1000 {
		s = "…" + s[len(s)-1000:]
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// versionEffects are the writes of a version rollback; in dry-run none happen.
type versionEffects interface {
	Run(ctx context.Context, dir, line string, env []string) ([]byte, error)
	WriteCheckpoint(dir string, cp appconfig.Checkpoint) (string, error)
	WriteConfig(path string, data []byte) error
	RemoveConfig(path string) error
}

type realVersionEffects struct{ shell Shell }

var _ versionEffects = realVersionEffects{}

func (e realVersionEffects) Run(ctx context.Context, dir, line string, env []string) ([]byte, error) {
	return e.shell.Run(ctx, dir, line, env)
}
func (realVersionEffects) WriteCheckpoint(dir string, cp appconfig.Checkpoint) (string, error) {
	return appconfig.WriteCheckpoint(dir, "", cp)
}
func (realVersionEffects) WriteConfig(path string, data []byte) error {
	return appconfig.WriteFile(path, data)
}
func (realVersionEffects) RemoveConfig(path string) error { return os.Remove(path) }

type dryVersionEffects struct{}

var _ versionEffects = dryVersionEffects{}

func (dryVersionEffects) Run(context.Context, string, string, []string) ([]byte, error) {
	return nil, nil
}
func (dryVersionEffects) WriteCheckpoint(dir string, cp appconfig.Checkpoint) (string, error) {
	return filepath.Join(dir, appconfig.CheckpointName("config-checkpoint-", cp.Time)), nil
}
func (dryVersionEffects) WriteConfig(string, []byte) error { return nil }
func (dryVersionEffects) RemoveConfig(string) error        { return nil }

// execShell runs a command line with /bin/sh -c in its own process group,
// so a cancel kills the whole pipeline (npm and its children), not just sh.
type execShell struct{}

var _ Shell = execShell{}

func (execShell) Run(ctx context.Context, dir, line string, env []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", line)
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		cmd.Dir = dir
	}
	cmd.Env = append(os.Environ(), env...)
	killGroupOnCancel(cmd)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.Bytes(), fmt.Errorf("%w (cancelled: %w)", err, ctx.Err())
	}
	return out.Bytes(), err
}

// npmSpecRe finds the npm package an install command installs at {version}
// (claude-flow@{version}, @scope/name@{version}); npmRegistryRe its --registry.
var (
	npmSpecRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?:^|[\s'"])((?:@[a-z0-9._~-]+/)?[a-z0-9._~-]+)@\{version\}`)
	})
	npmRegistryRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`--registry[= ]\s*([^\s;&|]+)`) })
	npmWordRe     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?:^|[\s;&|(/])npm\s`) })
)

// npmViewTimeout bounds the registry query of checkPublished (a var for tests).
var npmViewTimeout = 30 * time.Second

// checkPublished asks npm whether the version exists before anything is
// stopped: without it, a typo in --to-version stopped the service, failed
// the install and reinstalled the previous version. Only an install command
// that is npm installing <package>@{version} is checked; only a definite
// answer (E404, or npm printing no version) refuses. When the registry
// cannot be asked (no npm, offline, timeout) it warns and goes on, so a
// rollback from npm's cache still works.
func (v *versionRun) checkPublished(ctx context.Context) error {
	tmpl := v.r.cfg.Version.InstallCommand
	m := npmSpecRe().FindStringSubmatch(tmpl)
	if m == nil || !npmWordRe().MatchString(" "+tmpl) {
		return nil
	}
	pkg := m[1]
	npm, err := exec.LookPath("npm")
	if err != nil {
		v.r.warn("cannot check that %s@%s is published: npm is not in PATH", pkg, v.o.To)
		return nil
	}
	// No retries: offline, npm then answers at once from the packument in its cache (as
	// the install will have to) instead of retrying for over a minute.
	args := []string{"view", pkg + "@" + v.o.To, "version", "--json", "--fetch-retries=0"}
	if rm := npmRegistryRe().FindStringSubmatch(tmpl); rm != nil {
		args = append(args, "--registry", strings.Trim(rm[1], `'"`))
	}
	qctx, cancel := context.WithTimeout(ctx, npmViewTimeout)
	defer cancel()
	cmd := exec.CommandContext(qctx, npm, args...)
	if fi, err := os.Stat(v.r.res.InstallDir); err == nil && fi.IsDir() {
		cmd.Dir = v.r.res.InstallDir // its .npmrc (registry, auth) applies, as to the install
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	killGroupOnCancel(cmd)
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	line := "npm " + strings.Join(args, " ")
	var view struct {
		Error struct {
			Code    string `json:"code"`
			Summary string `json:"summary"`
		} `json:"error"`
	}
	_ = json.Unmarshal(stdout.Bytes(), &view)
	notFound := view.Error.Code == "E404" || strings.Contains(stderr.String(), "E404")
	switch {
	case notFound || (runErr == nil && strings.TrimSpace(stdout.String()) == ""):
		why := view.Error.Summary
		if why == "" {
			why = "npm lists no such version"
		}
		return fmt.Errorf("%s@%s is not published (%s: %s); nothing was changed and the service was not stopped. Check the version with 'npm view %s versions --json'",
			pkg, v.o.To, line, why, pkg)
	case qctx.Err() != nil:
		v.r.warn("cannot check that %s@%s is published: %s took over %s; going on", pkg, v.o.To, line, npmViewTimeout)
	case runErr != nil:
		v.r.warn("cannot check that %s@%s is published (%s: %v: %s); going on", pkg, v.o.To, line, runErr, outputTail(stderr.Bytes()))
	default:
		v.r.info("%s@%s is published (%s)", pkg, v.o.To, line)
	}
	return nil
}

// killGroupOnCancel runs cmd in its own process group and, when its context ends, kills the
// whole group (npm and whatever it spawned), not just the direct child; output a leftover
// holds open is given up after 5 s.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
}
