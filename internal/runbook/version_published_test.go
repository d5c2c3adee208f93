package runbook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeNpm puts an npm in PATH that logs its arguments to <dir>/npm.log and
// answers `npm view claude-flow@V version --json` like npm 11 does: E404 JSON
// for 9.9.9-doesnotexist, nothing at all (npm 6) for 6.6.6, ENOTFOUND for
// 7.7.7 (offline), a hang for 8.8.8, else the version. `npm install` writes
// the version into the --prefix dir's package.json.
func fakeNpm(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "fakebin")
	script := `#!/bin/sh
echo "$*" >>` + dir + `/npm.log
case "$1" in
view)
  case "$2" in
  *@9.9.9-doesnotexist) printf '{"error":{"code":"E404","summary":"No match found for version 9.9.9-doesnotexist"}}\n'; echo 'npm error code E404' >&2; exit 1;;
  *@6.6.6) exit 0;;
  *@7.7.7) echo 'npm error code ENOTFOUND' >&2; exit 1;;
  *@8.8.8) exec sleep 30;;
  *) printf '"%s"\n' "${2#*@}";;
  esac;;
install)
  prefix=; spec=
  while [ $# -gt 0 ]; do
    case "$1" in --prefix) prefix=$2; shift;; claude-flow@*) spec=${1#claude-flow@};; esac
    shift
  done
  printf '{"name":"claude-flow","version":"%s"}' "$spec" >"$prefix/package.json";;
esac
`
	write(t, bin, map[string]string{"npm": script})
	if err := os.Chmod(filepath.Join(bin, "npm"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return filepath.Join(dir, "npm.log")
}

// A version that is not published is refused in preflight: exit 3, the
// service never stopped, npm install never run. Only a definite "no" refuses.
func TestRollbackVersionChecksThePublishedVersionFirst(t *testing.T) {
	const defaultInstall = "npm install --prefix {install_dir} --save-exact --no-audit --no-fund claude-flow@{version}"
	for _, c := range []struct {
		name      string
		to        string
		install   string
		wantErr   error
		wantSteps string
		wantView  string // the view call in npm.log; "" means npm view must not run
		wantMsg   string // in the error, or else in a warning
	}{{
		name: "not published (npm 11: E404)", to: "9.9.9-doesnotexist", install: defaultInstall,
		wantErr: ErrPreflight, wantSteps: "preflight:failed",
		wantView: "view claude-flow@9.9.9-doesnotexist version --json --fetch-retries=0",
		wantMsg:  "claude-flow@9.9.9-doesnotexist is not published (npm view claude-flow@9.9.9-doesnotexist version --json --fetch-retries=0: No match found",
	}, {
		name: "not published (npm 6: prints nothing)", to: "6.6.6", install: defaultInstall,
		wantErr: ErrPreflight, wantSteps: "preflight:failed",
		wantView: "view claude-flow@6.6.6 version --json --fetch-retries=0", wantMsg: "npm lists no such version",
	}, {
		name: "published", to: "1.0.73", install: defaultInstall,
		wantSteps: "preflight:done stop:done install:done config:done start:done health:done",
		wantView:  "view claude-flow@1.0.73 version --json --fetch-retries=0",
	}, {
		name: "the template's registry is asked", to: "1.0.73",
		install:   "npm install --registry=https://npm.example.com/ --prefix {install_dir} claude-flow@{version}",
		wantSteps: "preflight:done stop:done install:done config:done start:done health:done",
		wantView:  "view claude-flow@1.0.73 version --json --fetch-retries=0 --registry https://npm.example.com/",
	}, {
		name: "registry unreachable: warn and go on", to: "7.7.7", install: defaultInstall,
		wantSteps: "preflight:done stop:done install:done config:done start:done health:done",
		wantView:  "view claude-flow@7.7.7 version --json --fetch-retries=0", wantMsg: "cannot check that claude-flow@7.7.7 is published",
	}, {
		name: "registry hangs: bounded, warn and go on", to: "8.8.8", install: defaultInstall,
		wantSteps: "preflight:done stop:done install:done config:done start:done health:done",
		wantView:  "view claude-flow@8.8.8 version --json --fetch-retries=0", wantMsg: "took over",
	}, {
		name: "not an npm registry install: not asked", to: "9.9.9-doesnotexist",
		install:   "printf '{\"name\":\"claude-flow\",\"version\":\"%s\"}' {version} >{install_dir}/package.json",
		wantSteps: "preflight:done stop:done install:done config:done start:done health:done",
	}} {
		t.Run(c.name, func(t *testing.T) {
			e := newVersionEnv(t)
			e.at("2.0.0-phase2")
			write(t, e.cfg.InstallDir, map[string]string{"config.json": phase2Config})
			e.cfg.Version.InstallCommand = c.install
			npmLog := fakeNpm(t, e.dir)
			old := npmViewTimeout
			npmViewTimeout = time.Second
			t.Cleanup(func() { npmViewTimeout = old })
			var warnings []string
			start := time.Now()
			res, err := RollbackVersion(context.Background(), VersionOptions{Options: Options{Config: e.cfg}, To: c.to},
				Deps{Service: e.m, Events: func(ev Event) {
					if ev.Kind == "warn" {
						warnings = append(warnings, ev.Message)
					}
				}})
			if time.Since(start) > 15*time.Second {
				t.Fatalf("took %s: the registry query is not bounded", time.Since(start))
			}
			switch {
			case c.wantErr == nil && err != nil:
				t.Fatalf("err %v", err)
			case c.wantErr != nil && !errors.Is(err, c.wantErr):
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			if got := stepNames(res); got != c.wantSteps {
				t.Fatalf("steps %s, want %s", got, c.wantSteps)
			}
			logged, _ := os.ReadFile(npmLog)
			views := 0
			for _, l := range strings.Split(string(logged), "\n") {
				if strings.HasPrefix(l, "view ") {
					views++
					if l != c.wantView {
						t.Errorf("npm %s, want npm %s", l, c.wantView)
					}
				}
			}
			if want := map[bool]int{true: 1, false: 0}[c.wantView != ""]; views != want {
				t.Fatalf("npm view ran %d times, want %d:\n%s", views, want, logged)
			}
			if c.wantMsg != "" {
				got := strings.Join(warnings, "\n")
				if err != nil {
					got = err.Error()
				}
				if !strings.Contains(got, c.wantMsg) {
					t.Fatalf("%q lacks %q", got, c.wantMsg)
				}
			}
			if errors.Is(c.wantErr, ErrPreflight) {
				if strings.Contains(string(logged), "install") {
					t.Fatalf("npm install ran after a refused preflight:\n%s", logged)
				}
				if _, err := os.Stat(filepath.Join(e.dir, "service.log")); err == nil || !e.running() {
					t.Fatal("a refused version touched the service")
				}
				if got := read(t, filepath.Join(e.cfg.InstallDir, "package.json")); !strings.Contains(got, "2.0.0-phase2") {
					t.Fatalf("install changed: %s", got)
				}
				return
			}
			if got := read(t, filepath.Join(e.cfg.InstallDir, "package.json")); !strings.Contains(got, `"`+c.to+`"`) {
				t.Fatalf("not installed: %s", got)
			}
		})
	}
}
