package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

type hostileCase struct {
	Name   string       `json:"name"`
	Kind   string       `json:"kind"`
	File   string       `json:"file"`
	Expect string       `json:"expect"`
	Setup  string       `json:"setup"`
	Runs   []hostileRun `json:"runs"`
	Bug    string       `json:"bug"`
}

// hostileRun is one command judging a case: its documented exit code and
// what its output must say. {file} in Args is the hostile input's path.
type hostileRun struct {
	Args   []string `json:"args"`
	Code   int      `json:"code"`
	Expect string   `json:"expect"`
}

// hostileTimeout bounds every run of the corpus: a command that blocks on a
// FIFO or reads /dev/zero is killed and the case fails with "hung".
const hostileTimeout = 60 * time.Second

// runBounded is s.run under hostileTimeout.
func runBounded(t *testing.T, s *sandbox, env []string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(append(os.Environ(), s.Env...), env...)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("hung: cfrollback %s was killed after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), hostileTimeout, cut(out.String()), cut(errb.String()))
	}
	r := runResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	return r
}

// cut keeps failure messages readable when a command printed megabytes.
func cut(s string) string {
	if len(s) > 8000 {
		return s[:8000] + "\n... (cut)"
	}
	return s
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
	if len(cases) < 80 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { runHostileCase(t, dir, c) })
	}
}

// runHostileCase runs one case in a fresh sandbox: the install (the drill
// app, version 2.0.0-phase2), a service of shell commands, and the input.
func runHostileCase(t *testing.T, dir string, c hostileCase) {
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
		r = runBounded(t, s, env, "emergency", "--json")
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
		r = runBounded(t, s, env, "emergency", "--json")
		wantCode = 3
		guarded = []string{before, treeDigest(t, s.Dir)}
	case "sqlite":
		testenv.RequireTool(t, "sqlite3")
		db := filepath.Join(s.Install, ".swarm", "memory.db")
		copyFile(t, src, db)
		before := treeDigest(t, s.Dir)
		r = runBounded(t, s, env, "database", "check", "--db", "memory")
		wantCode = 1
		if r.Code == wantCode && want.MatchString(r.Stdout+r.Stderr) {
			// and it is refused as a restore source, changing nothing
			r2 := runBounded(t, s, env, "database", "restore", "--db", "hive", "--file", src)
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
		r = runBounded(t, s, append(without(env, "CFROLLBACK_SERVICE_MANAGER="), "CFROLLBACK_CONFIG="+src), "settings")
		s.Env = saved
		wantCode = 2
		guarded = []string{before, treeDigest(t, s.Dir)}
	case "manifest", "journal", "lock", "appconfig", "agents", "special":
		runJudged(t, s, env, dir, c)
		return
	default:
		t.Fatalf("unknown kind %q", c.Kind)
	}
	if r.Code != wantCode {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.Code, wantCode, r.Stdout, r.Stderr)
	}
	if !want.MatchString(r.Stdout + readableStderr(r.Stderr)) {
		t.Fatalf("output does not match %q\nstdout:\n%s\nstderr:\n%s", c.Expect, r.Stdout, r.Stderr)
	}
	if guarded[0] != guarded[1] {
		t.Fatalf("something changed:\nbefore:\n%s\nafter:\n%s", guarded[0], guarded[1])
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "service.log")); err == nil {
		t.Fatalf("the service was stopped or started:\n%s", readFile(t, filepath.Join(s.Dir, "service.log")))
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
			// streamed: the corpus holds files of 256 MiB
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			line += " " + hex.EncodeToString(h.Sum(nil)[:8])
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

// hostileArchive is the backup the manifest cases sit next to (see
// scripts/gen-hostile, ManifestArchive), under the name emergency picks.
const (
	hostileArchive = "manifest-backup.tar.gz"
	hostileBackup  = "backup-20250105-000000.tar.gz"
)

// placeHostile puts the case's input at p: a copy of its file, or what a
// setup word says (a FIFO, a symlink to /dev/zero, a directory, a file
// larger than every cap).
func placeHostile(t *testing.T, dir string, c hostileCase, p string) {
	t.Helper()
	mustDo(t, os.MkdirAll(filepath.Dir(p), 0o755))
	_ = os.RemoveAll(p)
	switch {
	case hasSetup(c, "fifo"):
		mustDo(t, syscall.Mkfifo(p, 0o600))
	case hasSetup(c, "symlink-dev-zero"):
		mustDo(t, os.Symlink("/dev/zero", p))
	case hasSetup(c, "directory"):
		mustDo(t, os.Mkdir(p, 0o700))
	case hasSetup(c, "world-writable-backup"):
		// a good backup anyone could have replaced
		copyFile(t, filepath.Join(dir, hostileArchive), p)
		mustDo(t, os.Chmod(p, 0o666))
	case hasSetup(c, "huge"):
		// sparse, one byte over the largest cap (256 MiB)
		f, err := os.Create(p)
		mustDo(t, err)
		mustDo(t, f.Truncate(256<<20+1))
		mustDo(t, f.Close())
	case c.File != "":
		copyFile(t, filepath.Join(dir, c.File), p)
	default:
		t.Fatalf("case %s has neither a file nor a setup for %s", c.Name, p)
	}
}

func hasSetup(c hostileCase, word string) bool {
	for _, w := range strings.Split(c.Setup, ",") {
		if w == word {
			return true
		}
	}
	return false
}

// lstatDigest describes p itself (not what a link points to) and, for a
// regular file, its content: a refused lock must be left as it was found.
func lstatDigest(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		return err.Error()
	}
	st := fi.Sys().(*syscall.Stat_t)
	d := fmt.Sprintf("%s uid=%d size=%d", fi.Mode(), st.Uid, fi.Size())
	if fi.Mode()&fs.ModeSymlink != 0 {
		l, _ := os.Readlink(p)
		d += " -> " + l
	}
	return d
}

// journalDigest is the journal and its head, which treeDigest leaves out.
func journalDigest(t *testing.T, s *sandbox) string {
	j := filepath.Join(s.Dir, "log", "journal.jsonl")
	d := lstatDigest(t, j) + "\n" + lstatDigest(t, j+".head")
	for _, p := range []string{j, j + ".head"} {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			sum := sha256.Sum256(b)
			d += "\n" + p + " " + hex.EncodeToString(sum[:8])
		}
	}
	return d
}

// runJudged runs a case of the kinds added with issue 13: the input is
// placed, then every run must exit with its documented code and say what
// the case expects, and nothing may change — the install, the backups, the
// journal (but where a run may append to it), the lock and the service.
func runJudged(t *testing.T, s *sandbox, env []string, dir string, c hostileCase) {
	input := filepath.Join(s.Dir, "special", "input")
	journal := filepath.Join(s.Dir, "log", "journal.jsonl")
	lockPath := filepath.Join(s.Dir, "run", "cfrollback.lock")
	// journaled: a refused emergency journals its run (intent, preflight
	// failed); every other command here must be refused before the journal.
	var journaled bool
	switch c.Kind {
	case "manifest":
		arch := filepath.Join(s.Backups, hostileBackup)
		copyFile(t, filepath.Join(dir, hostileArchive), arch)
		old := time.Date(2025, 1, 5, 0, 0, 0, 0, time.UTC)
		mustDo(t, os.Chtimes(arch, old, old))
		input = strings.TrimSuffix(arch, ".tar.gz") + ".manifest.json"
		placeHostile(t, dir, c, input)
	case "journal":
		input = journal
		switch {
		case hasSetup(c, "symlink-to-empty"):
			mustDo(t, os.WriteFile(filepath.Join(s.Dir, "victim"), nil, 0o600))
			mustDo(t, os.Symlink(filepath.Join(s.Dir, "victim"), journal))
		case hasSetup(c, "dangling-symlink"):
			mustDo(t, os.Symlink(filepath.Join(s.Dir, "created-through-the-link"), journal))
		case hasSetup(c, "head-fifo"):
			copyFile(t, filepath.Join(dir, c.File), journal)
			mustDo(t, syscall.Mkfifo(journal+".head", 0o600))
		default:
			placeHostile(t, dir, c, journal)
			if c.File != "" {
				if _, err := os.Stat(filepath.Join(dir, c.File+".head")); err == nil {
					copyFile(t, filepath.Join(dir, c.File+".head"), journal+".head")
				}
			}
		}
		if hasSetup(c, "huge-line") {
			b, err := os.ReadFile(journal)
			mustDo(t, err)
			ls := bytes.SplitAfterN(b, []byte("\n"), 3)
			huge := append(append([]byte(`{"seq":3,"event":"note","data":{"x":"`), bytes.Repeat([]byte("x"), 5<<20)...), []byte("\"}}\n")...)
			mustDo(t, os.WriteFile(journal, bytes.Join([][]byte{ls[0], ls[1], huge, ls[2]}, nil), 0o600))
		}
	case "lock":
		s.goodBackupBrokenInstall()
		mustDo(t, os.MkdirAll(filepath.Dir(lockPath), 0o755))
		victim := filepath.Join(s.Dir, "victim")
		mustDo(t, os.WriteFile(victim, []byte("a root-only file\n"), 0o600))
		switch c.Setup {
		case "symlink":
			mustDo(t, os.Symlink(victim, lockPath))
		case "dangling-symlink":
			mustDo(t, os.Symlink(filepath.Join(s.Dir, "created-through-the-link"), lockPath))
		case "fifo":
			mustDo(t, syscall.Mkfifo(lockPath, 0o600))
		case "directory":
			mustDo(t, os.Mkdir(lockPath, 0o700))
		case "other-owner":
			mustDo(t, os.WriteFile(lockPath, nil, 0o600))
			mustDo(t, os.Chown(lockPath, 65534, 65534))
		case "world-writable":
			mustDo(t, os.WriteFile(lockPath, nil, 0o600))
			mustDo(t, os.Chmod(lockPath, 0o666))
		default:
			t.Fatalf("unknown lock setup %q", c.Setup)
		}
	case "appconfig":
		if hasSetup(c, "checkpoint-dirs-link") {
			mustDo(t, os.MkdirAll(filepath.Join(s.Install, ".claude", "agents"), 0o755))
			mustDo(t, os.WriteFile(filepath.Join(s.Install, ".claude", "agents", "coder.md"),
				[]byte("---\nname: coder\ntype: developer\n---\nWrite code.\n"), 0o644))
			for _, d := range []string{"config", "agents"} {
				out := filepath.Join(s.Dir, "outside-"+d)
				mustDo(t, os.Mkdir(out, 0o755))
				mustDo(t, os.Symlink(out, filepath.Join(s.Backups, d)))
				mustDo(t, os.Lchown(filepath.Join(s.Backups, d), 65534, 65534))
			}
			mustDo(t, os.Chown(s.Backups, 65534, 65534))
			break
		}
		if hasSetup(c, "symlink-out") {
			// the input is a good config to restore; the install's config
			// is a link to a file outside the install, made by the install's
			// (deploy) user: root follows only its own links
			victim := filepath.Join(s.Dir, "victim.json")
			mustDo(t, os.WriteFile(victim, []byte(`{"claude": {"model": "victim"}}`+"\n"), 0o644))
			cfg := filepath.Join(s.Install, "config.json")
			mustDo(t, os.Remove(cfg))
			mustDo(t, os.Symlink(victim, cfg))
			mustDo(t, os.Lchown(cfg, 65534, 65534))
			copyFile(t, filepath.Join(dir, c.File), input)
			break
		}
		if hasSetup(c, "in-install") {
			input = filepath.Join(s.Install, "config.json")
		}
		placeHostile(t, dir, c, input)
	case "agents":
		mustDo(t, os.MkdirAll(filepath.Join(s.Install, ".claude", "agents"), 0o755))
		mustDo(t, os.WriteFile(filepath.Join(s.Install, ".claude", "agents", "coder.md"),
			[]byte("---\nname: coder\ntype: developer\ndescription: writes code\npriority: high\n---\nWrite code.\n"), 0o644))
		evil := filepath.Join(s.Install, ".claude", "agents", "evil.md")
		switch {
		case hasSetup(c, "agents-dir-fifo"):
			mustDo(t, syscall.Mkfifo(evil, 0o600))
		case hasSetup(c, "agents-dir-dev-zero-link"):
			mustDo(t, os.Symlink("/dev/zero", evil))
		case hasSetup(c, "agents-dir-escape-name"):
			mustDo(t, os.WriteFile(evil, []byte("---\nname: \"\\e[2Jevil\"\ntype: developer\ndescription: x\npriority: high\n---\nx\n"), 0o644))
			input = evil
		case hasSetup(c, "agents-dir-link-out"):
			mustDo(t, os.WriteFile(filepath.Join(s.Dir, "victim"), []byte("a root-only file\n"), 0o600))
			mustDo(t, os.Symlink(filepath.Join(s.Dir, "victim"), evil))
		}
		if hasSetup(c, "agents-dir-escape-name") {
			break // the input is the definition itself
		}
		if hasSetup(c, "agents-dir-symlink") {
			outside := filepath.Join(s.Dir, "outside")
			mustDo(t, os.Rename(filepath.Join(s.Install, ".claude", "agents"), outside))
			mustDo(t, os.Symlink(outside, filepath.Join(s.Install, ".claude", "agents")))
			copyFile(t, filepath.Join(dir, c.File), input)
			break
		}
		placeHostile(t, dir, c, input)
	case "special":
		switch {
		case hasSetup(c, "at-memory-db"):
			input = filepath.Join(s.Install, ".swarm", "memory.db")
			// database backup makes its output dir before it reads the
			// database; that dir is its own, not a change to judge
			mustDo(t, os.MkdirAll(filepath.Join(s.Dir, "dbbackups"), 0o700))
		case hasSetup(c, "at-memory-db-wal"), hasSetup(c, "at-memory-db-shm"):
			db := filepath.Join(s.Install, ".swarm", "memory.db")
			copyFile(t, filepath.Join(dir, c.File), db)
			input = db + "-wal"
			if hasSetup(c, "at-memory-db-shm") {
				input = db + "-shm"
			}
		case hasSetup(c, "at-baseline"):
			input = filepath.Join(s.Dir, "state", "baseline.json")
		case hasSetup(c, "live-memory-db"):
			copyFile(t, filepath.Join(dir, "sqlite-good.db"), filepath.Join(s.Install, ".swarm", "memory.db"))
		case hasSetup(c, "at-backup-state"):
			input = filepath.Join(s.Dir, "state", "backups.json")
			// a backup emergency --dry-run can use (TestHostileManifestControl)
			arch := filepath.Join(s.Backups, hostileBackup)
			copyFile(t, filepath.Join(dir, hostileArchive), arch)
			old := time.Date(2025, 1, 5, 0, 0, 0, 0, time.UTC)
			mustDo(t, os.Chtimes(arch, old, old))
		}
		placeHostile(t, dir, c, input)
	}
	if len(c.Runs) == 0 {
		t.Fatalf("case %s has no runs", c.Name)
	}
	before, beforeLock := treeDigest(t, s.Dir), lstatDigest(t, lockPath)
	for _, run := range c.Runs {
		// (setup "journals": refused after the lock, by a step that
		// journals its failure, e.g. the checkpoint)
		journaled = run.Args[0] == "emergency" || hasSetup(c, "journals")
		beforeJournal := journalDigest(t, s)
		args := make([]string, len(run.Args))
		for i, a := range run.Args {
			args[i] = strings.ReplaceAll(a, "{file}", input)
		}
		r := runBounded(t, s, env, args...)
		t.Logf("cfrollback %s: exit %d\n%s", strings.Join(run.Args, " "), r.Code, cut(strings.TrimSpace(r.Stdout+r.Stderr)))
		if r.Code != run.Code {
			t.Errorf("cfrollback %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(run.Args, " "), r.Code, run.Code, cut(r.Stdout), cut(r.Stderr))
		} else if !regexp.MustCompile(run.Expect).MatchString(r.Stdout + readableStderr(r.Stderr)) {
			t.Errorf("cfrollback %s: output does not match %q\nstdout:\n%s\nstderr:\n%s", strings.Join(run.Args, " "), run.Expect, cut(r.Stdout), cut(r.Stderr))
		}
		if after := treeDigest(t, s.Dir); after != before {
			t.Fatalf("cfrollback %s changed something:\nbefore:\n%s\nafter:\n%s", strings.Join(run.Args, " "), before, after)
		}
		if after := lstatDigest(t, lockPath); c.Kind == "lock" && after != beforeLock {
			t.Fatalf("cfrollback %s changed the lock path: %s, now %s", strings.Join(run.Args, " "), beforeLock, after)
		}
		if after := journalDigest(t, s); !journaled && after != beforeJournal {
			t.Fatalf("cfrollback %s changed the journal: %s\nnow\n%s", strings.Join(run.Args, " "), beforeJournal, after)
		}
		if _, err := os.Stat(filepath.Join(s.Dir, "service.log")); err == nil {
			t.Fatalf("cfrollback %s stopped or started the service:\n%s", strings.Join(run.Args, " "), readFile(t, filepath.Join(s.Dir, "service.log")))
		}
	}
	if _, err := os.Lstat(filepath.Join(s.Dir, "created-through-the-link")); err == nil {
		t.Fatalf("a file was created through the symlinked lock")
	}
}

// TestHostileManifestControl: the archive the manifest cases use, with the
// generator's good manifest, verifies and is what emergency --dry-run would
// restore; so each manifest case fails for its damage alone.
func TestHostileManifestControl(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "hostile")
	s := newSandbox(t)
	mustDo(t, drillapp.WriteInstall(s.Install, "2.0.0-phase2", false))
	env := shellService(t, s)
	arch := filepath.Join(s.Backups, hostileBackup)
	copyFile(t, filepath.Join(dir, hostileArchive), arch)
	old := time.Date(2025, 1, 5, 0, 0, 0, 0, time.UTC)
	mustDo(t, os.Chtimes(arch, old, old))
	copyFile(t, filepath.Join(dir, "manifest-good.manifest.json"), strings.TrimSuffix(arch, ".tar.gz")+".manifest.json")
	if r := runBounded(t, s, env, "backup", "verify", "--all"); r.Code != 0 {
		t.Fatalf("backup verify: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := runBounded(t, s, env, "emergency", "--dry-run"); r.Code != 0 || !strings.Contains(r.Stdout+r.Stderr, "verified "+hostileBackup) {
		t.Fatalf("emergency --dry-run: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// TestHostileCorpusHeldOut runs the cases of testdata/hostile/bugs.json:
// inputs today's code mishandles (each case's "bug" says how). They are
// skipped unless CFROLLBACK_HOSTILE_BUGS=1; a fixed bug's case moves to
// cases.json (drop its Bug in scripts/gen-hostile).
func TestHostileCorpusHeldOut(t *testing.T) {
	if os.Getenv("CFROLLBACK_HOSTILE_BUGS") != "1" {
		t.Skip("set CFROLLBACK_HOSTILE_BUGS=1 to run the cases held out for known bugs")
	}
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "hostile")
	b, err := os.ReadFile(filepath.Join(dir, "bugs.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with: go run ./scripts/gen-hostile)", err)
	}
	var cases []hostileCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Log("known bug: " + c.Bug)
			runHostileCase(t, dir, c)
		})
	}
}

// readableStderr turns the {"warning": "..."} lines that --json prints on stderr into the
// "warning: ..." text they stand for, so that a case's expected message matches either way
// (a message with quotes is escaped in JSON).
func readableStderr(stderr string) string {
	lines := strings.Split(stderr, "\n")
	for i, l := range lines {
		var w struct {
			Warning *string `json:"warning"`
		}
		if strings.HasPrefix(l, `{"warning":`) && json.Unmarshal([]byte(l), &w) == nil && w.Warning != nil {
			lines[i] = "warning: " + *w.Warning
		}
	}
	return strings.Join(lines, "\n")
}
