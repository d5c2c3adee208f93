package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	const rev = "6ee3940a1b2c3d4e5f60718293a4b5c6d7e8f901"
	tests := []struct {
		name                  string
		main                  string
		settings              []debug.BuildSetting
		in                    [3]string
		version, commit, date string
	}{
		{"ldflags win", "v0.3.0", vcs("vcs.revision", rev, "vcs.time", "2026-11-29T18:00:00Z"),
			[3]string{"v1.2.3", "abc1234", "2026-01-01T00:00:00Z"}, "v1.2.3", "abc1234", "2026-01-01T00:00:00Z"},
		{"go install @v0.3.0 (no vcs info in a module zip)", "v0.3.0", nil,
			[3]string{"dev", "unknown", "unknown"}, "v0.3.0", "unknown", "unknown"},
		{"go install @commit: the pseudo-version names it", "v0.0.0-20261129183247-6ee3940a1b2c", nil,
			[3]string{"dev", "unknown", "unknown"}, "v0.0.0-20261129183247-6ee3940a1b2c", "6ee3940a1b2c", "2026-11-29T18:32:47Z"},
		{"go build in a clean checkout", "v0.0.0-20261129183247-6ee3940a1b2c",
			vcs("vcs", "git", "vcs.revision", rev, "vcs.time", "2026-11-29T18:32:47Z", "vcs.modified", "false"),
			[3]string{"dev", "unknown", "unknown"}, "v0.0.0-20261129183247-6ee3940a1b2c", "6ee3940a1b2c", "2026-11-29T18:32:47Z"},
		{"go build in a modified checkout", "v0.0.0-20261129183247-6ee3940a1b2c+dirty",
			vcs("vcs.revision", rev, "vcs.time", "2026-11-29T18:32:47Z", "vcs.modified", "true"),
			[3]string{"dev", "unknown", "unknown"}, "v0.0.0-20261129183247-6ee3940a1b2c+dirty", "6ee3940a1b2c+dirty", "2026-11-29T18:32:47Z"},
		{"-buildvcs=false: (devel) stays dev", "(devel)", nil,
			[3]string{"dev", "unknown", "unknown"}, "dev", "unknown", "unknown"},
		{"a tagged build", "v0.4.0", vcs("vcs.revision", rev, "vcs.time", "2026-11-29T18:32:47Z", "vcs.modified", "false"),
			[3]string{"dev", "unknown", "unknown"}, "v0.4.0", "6ee3940a1b2c", "2026-11-29T18:32:47Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/cfrollback/cfrollback", Version: tt.main}, Settings: tt.settings}
			v, c, d := fromBuildInfo(bi, tt.in[0], tt.in[1], tt.in[2])
			if v != tt.version || c != tt.commit || d != tt.date {
				t.Fatalf("got %q %q %q, want %q %q %q", v, c, d, tt.version, tt.commit, tt.date)
			}
		})
	}
}

// TestVersionOfPlainGoBuild builds cfrollback as `go build` does outside the Makefile (from the
// repo, so the go command stamps the git state) and checks that it names the repo's commit;
// then that the Makefile's -ldflags still win over the build info.
func TestVersionOfPlainGoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary twice")
	}
	goBin := testenv.RequireTool(t, "go")
	gitBin := testenv.RequireTool(t, "git")
	repo := testenv.RepoRoot(t)
	head, err := exec.Command(gitBin, "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		// a source tree without .git (an unpacked tarball) has no commit to show
		testenv.Require(t, false, "a git checkout of the repo", "run the test in a clone")
	}
	short := strings.TrimSpace(string(head))
	fi, err := os.Stat(filepath.Join(repo, ".git"))
	testenv.Require(t, err == nil && fi.IsDir(), "a .git directory (the go command stamps no VCS info in a git worktree, whose .git is a file)", "run the test in a clone")
	dir := t.TempDir()
	build := func(name string, args ...string) string {
		t.Helper()
		bin := filepath.Join(dir, name)
		// -buildvcs=true: what `go build` does by default, whatever GOFLAGS this machine has
		// (`go env -w GOFLAGS=-buildvcs=false` turns the stamp off).
		cmd := exec.Command(goBin, append(append([]string{"build", "-buildvcs=true", "-o", bin}, args...), "./cmd/cfrollback")...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, out)
		}
		return bin
	}
	run := func(bin string, args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, out)
		}
		return string(out)
	}

	plain := build("plain")
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out := run(plain, args...)
		if !strings.Contains(out, "commit "+short) || strings.Contains(out, "unknown") || strings.Contains(out, "dev ") {
			t.Errorf("cfrollback %v from go build = %q, want commit %s and no unknowns", args, out, short)
		}
	}
	var info struct{ Version, Commit, Date string }
	if err := json.Unmarshal([]byte(run(plain, "version", "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.Commit, short) || info.Version == "dev" || info.Date == "unknown" {
		t.Errorf("version --json = %+v, want commit %s, a module version and the commit time", info, short)
	}

	const pkg = "github.com/cfrollback/cfrollback/internal/cli"
	stamped := build("stamped", "-ldflags", "-X "+pkg+".Version=v9.9.9-test -X "+pkg+".Commit=abc1234 -X "+pkg+".Date=2026-01-01T00:00:00Z")
	if got, want := run(stamped, "--version"), "cfrollback v9.9.9-test (commit abc1234, built 2026-01-01T00:00:00Z)\n"; got != want {
		t.Errorf("--version of a Makefile-stamped build = %q, want %q", got, want)
	}
}
