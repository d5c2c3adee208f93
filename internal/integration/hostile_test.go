package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

type hostileCase struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	File   string `json:"file"`
	Expect string `json:"expect"`
	Setup  string `json:"setup"`
}

// TestHostileCorpus runs every case of testdata/hostile (made by
// `go run ./scripts/gen-hostile`): each must end in a clear error, and
// nothing outside cfrollback's own journal, log, lock and state may change —
// the install, the backups and the service are as they were.
func TestHostileCorpus(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "hostile")
	b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with: go run ./scripts/gen-hostile)", err)
	}
	var cases []hostileCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 30 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			s := newSandbox(t)
			if err := drillapp.WriteInstall(s.Install, "2.0.0-phase2", false); err != nil {
				t.Fatal(err)
			}
			env := shellService(t, s)
			want := regexp.MustCompile(c.Expect)
			src := filepath.Join(dir, c.File)
			var r runResult
			var wantCode int
			var guarded []string
			switch c.Kind {
			case "archive":
				copyFile(t, src, filepath.Join(s.Backups, "backup-20250105-000000.tar.gz"))
				before := treeDigest(t, s.Dir)
				r = s.run(env, "emergency", "--json")
				wantCode = 3
				guarded = []string{before, treeDigest(t, s.Dir)}
			case "backupdir":
				p := filepath.Join(s.Backups, "backup-20250105-000000.tar.gz")
				switch c.Setup {
				case "symlink":
					mustDo(t, os.Symlink("/etc/hostname", p))
				case "fifo":
					mustDo(t, syscall.Mkfifo(p, 0o600))
				case "directory":
					mustDo(t, os.Mkdir(p, 0o700))
				case "world-writable":
					src := filepath.Join(t.TempDir(), "b.tar.gz")
					mustDo(t, drillapp.WriteInstall(filepath.Join(t.TempDir(), "v1"), "1.0.0", true))
					copyFile(t, filepath.Join(dir, "gz-truncated.tar.gz"), src) // content is irrelevant: it must not be read
					copyFile(t, src, p)
					mustDo(t, os.Chmod(p, 0o666))
				}
				before := treeDigest(t, s.Dir)
				r = s.run(env, "emergency", "--json")
				wantCode = 3
				guarded = []string{before, treeDigest(t, s.Dir)}
			case "sqlite":
				testenv.RequireTool(t, "sqlite3")
				db := filepath.Join(s.Install, ".swarm", "memory.db")
				copyFile(t, src, db)
				before := treeDigest(t, s.Dir)
				r = s.run(env, "database", "check", "--db", "memory")
				wantCode = 1
				if r.Code == wantCode && want.MatchString(r.Stdout+r.Stderr) {
					// and it is refused as a restore source, changing nothing
					r2 := s.run(env, "database", "restore", "--db", "hive", "--file", src)
					if r2.Code != 3 {
						t.Errorf("database restore from %s: exit %d, want 3\n%s%s", c.File, r2.Code, r2.Stdout, r2.Stderr)
					}
				}
				guarded = []string{before, treeDigest(t, s.Dir)}
			case "settings":
				// Read-only on purpose, and with the sandbox's overrides of
				// the keys under test removed, so the file's value is the one
				// judged: a case that wrongly validated must not act anywhere.
				before := treeDigest(t, s.Dir)
				saved := s.Env
				s.Env = without(s.Env, "CFROLLBACK_INSTALL_DIR=")
				r = s.run(append(without(env, "CFROLLBACK_SERVICE_MANAGER="), "CFROLLBACK_CONFIG="+src), "settings")
				s.Env = saved
				wantCode = 2
				guarded = []string{before, treeDigest(t, s.Dir)}
			default:
				t.Fatalf("unknown kind %q", c.Kind)
			}
			if r.Code != wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.Code, wantCode, r.Stdout, r.Stderr)
			}
			if !want.MatchString(r.Stdout + r.Stderr) {
				t.Fatalf("output does not match %q\nstdout:\n%s\nstderr:\n%s", c.Expect, r.Stdout, r.Stderr)
			}
			if guarded[0] != guarded[1] {
				t.Fatalf("something changed:\nbefore:\n%s\nafter:\n%s", guarded[0], guarded[1])
			}
			if _, err := os.Stat(filepath.Join(s.Dir, "service.log")); err == nil {
				t.Fatalf("the service was stopped or started:\n%s", readFile(t, filepath.Join(s.Dir, "service.log")))
			}
		})
	}
}

// shellService is a service made of three shell commands over a marker
// file: running while the file exists; every stop/start is logged.
func shellService(t *testing.T, s *sandbox) []string {
	t.Helper()
	run := filepath.Join(s.Dir, "running")
	logf := filepath.Join(s.Dir, "service.log")
	mustDo(t, os.WriteFile(run, nil, 0o644))
	return []string{
		"CFROLLBACK_SERVICE_MANAGER=command",
		"CFROLLBACK_SERVICE_START_COMMAND=touch '" + run + "'; echo start >>'" + logf + "'",
		"CFROLLBACK_SERVICE_STOP_COMMAND=rm -f '" + run + "'; echo stop >>'" + logf + "'",
		"CFROLLBACK_SERVICE_STATUS_COMMAND=test -f '" + run + "'",
		"CFROLLBACK_HEALTH_URL=",
	}
}

// treeDigest lists every path under root (but cfrollback's own journal,
// logs, lock and state, which a refused run may write) with its type, mode
// and content digest.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		top := strings.Split(rel, string(filepath.Separator))[0]
		if top == "log" || top == "run" || top == "state" {
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := rel + " " + info.Mode().String()
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			line += " " + hex.EncodeToString(sum[:8])
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func without(env []string, prefix string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	mustDo(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	mustDo(t, os.WriteFile(dst, b, 0o600))
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestHostileCorpusIsGenerated: testdata/hostile is exactly what
// scripts/gen-hostile writes, so the corpus stays reviewable and
// reproducible.
func TestHostileCorpusIsGenerated(t *testing.T) {
	repo := testenv.RepoRoot(t)
	out := t.TempDir()
	cmd := exec.Command("go", "run", "./scripts/gen-hostile", out)
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen-hostile: %v\n%s", err, b)
	}
	if got, want := treeDigest(t, out), treeDigest(t, filepath.Join(repo, "testdata", "hostile")); got != want {
		t.Fatalf("testdata/hostile is stale; run: go run ./scripts/gen-hostile\ngenerated:\n%s\ncommitted:\n%s", got, want)
	}
}
