package integration

// Paths root writes (issue 13): an unprivileged user (nobody, uid 65534) plants symlinks and
// opens up dirs; root's cfrollback refuses to write there, names the path and what to do,
// and changes nothing it was not told to: the root-only file a link points at stays as it
// was, and an emergency refused this way never stops the service.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

const nobody = 65534

// untrustedSandbox is a sandbox nobody can reach (its dirs 0755 on the way), with a
// root-only secret for links to point at and a shell service that is running.
func untrustedSandbox(t *testing.T) (s *sandbox, env []string, secret string) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "setpriv")
	s = newSandbox(t)
	// t.TempDir() is <tmp>/TestName123/001, both 0700: let nobody walk to its dirs
	// (still root-owned and not writable by others, so still trusted).
	mustDo(t, os.Chmod(filepath.Dir(s.Dir), 0o755))
	mustDo(t, os.Chmod(s.Dir, 0o755))
	s.goodBackupBrokenInstall()
	env = shellService(t, s)
	secret = filepath.Join(s.Dir, "root-only")
	mustDo(t, os.WriteFile(secret, []byte("root only\n"), 0o600))
	return s, env, secret
}

// asNobody runs a shell script as uid/gid 65534 with no supplementary groups.
func asNobody(t *testing.T, script string) (string, error) {
	t.Helper()
	out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script).CombinedOutput()
	return string(out), err
}

func mustAsNobody(t *testing.T, script string) {
	t.Helper()
	if out, err := asNobody(t, script); err != nil {
		t.Fatalf("as nobody: %s: %v\n%s", script, err, out)
	}
}

// openUp makes dir writable by everyone with raw mode bits (0o1777 is sticky).
func openUp(t *testing.T, dir string, mode uint32) {
	t.Helper()
	mustDo(t, os.MkdirAll(dir, 0o755))
	mustDo(t, syscall.Chmod(dir, mode))
}

func assertSecretKept(t *testing.T, secret string) {
	t.Helper()
	b, err := os.ReadFile(secret)
	if err != nil || string(b) != "root only\n" {
		t.Fatalf("the root-only file a link pointed at changed: %q %v", b, err)
	}
	fi, err := os.Stat(secret)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the root-only file's mode changed: %v %v", fi.Mode(), err)
	}
}

func assertServiceNotStopped(t *testing.T, s *sandbox) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(s.Dir, "service.log")); err == nil {
		t.Fatalf("the service was stopped or started:\n%s", readFile(t, filepath.Join(s.Dir, "service.log")))
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "running")); err != nil {
		t.Fatal("the service is no longer running")
	}
	if got := readFile(t, filepath.Join(s.Install, drillapp.VersionFile)); got != "2.0.0-phase2" {
		t.Fatalf("the install changed: %s", got)
	}
}

func wantRefusal(t *testing.T, r runResult, code int, words ...string) {
	t.Helper()
	out := r.Stdout + r.Stderr
	if r.Code != code {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.Code, code, r.Stdout, r.Stderr)
	}
	for _, w := range words {
		if !strings.Contains(out, w) {
			t.Fatalf("the output does not say %q:\n%s\n%s", w, r.Stdout, r.Stderr)
		}
	}
}

// The journal's dir is world-writable (sticky, as /tmp): nobody plants the journal as a link
// to a root-only file. Before, root appended the run to that file; now the run is refused
// (exit 3) naming the dir, and the service is never stopped.
func TestUntrustedJournalSymlink(t *testing.T) {
	s, env, secret := untrustedSandbox(t)
	logDir := filepath.Join(s.Dir, "log")
	openUp(t, logDir, 0o1777)
	journal := filepath.Join(logDir, "journal.jsonl")
	mustAsNobody(t, "ln -s '"+secret+"' '"+journal+"' && ln -s '"+secret+"' '"+journal+".head'")
	// the human log goes elsewhere, so the journal is what is refused
	env = append(env, "CFROLLBACK_LOG_DIR="+filepath.Join(s.Dir, "hlog"))

	r := s.run(env, "emergency")
	wantRefusal(t, r, 3, "refusing to write in "+logDir, "writable by other users", "set journal to another dir")
	assertSecretKept(t, secret)
	assertServiceNotStopped(t, s)
	if fi, err := os.Lstat(journal); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the planted link was replaced: %v", err)
	}

	// The operator's way out: a root-only dir for the journal; the run then goes through.
	r = s.run(append(env, "CFROLLBACK_JOURNAL="+filepath.Join(s.Dir, "journal", "journal.jsonl")), "emergency", "--dry-run")
	if r.Code != 0 {
		t.Fatalf("with a root-only journal dir: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	assertSecretKept(t, secret)
}

// The human log's dir is world-writable: nobody plants links at every name the log could
// take in the next minutes. The human log only warns (the journal is the record), so the
// rollback goes on, says the log was not written and why, and the linked file is untouched.
func TestUntrustedHumanLogSymlink(t *testing.T) {
	s, env, secret := untrustedSandbox(t)
	hlog := filepath.Join(s.Dir, "hlog")
	openUp(t, hlog, 0o1777)
	var script strings.Builder
	now := time.Now()
	for i := -5; i < 300; i++ {
		name := filepath.Base(s.Install) + "-rollback-" + now.Add(time.Duration(i)*time.Second).Format(settings.TimestampLayout) + ".log"
		script.WriteString("ln -s '" + secret + "' '" + filepath.Join(hlog, name) + "'\n")
	}
	mustAsNobody(t, script.String())
	env = append(env, "CFROLLBACK_LOG_DIR="+hlog)

	r := s.run(env, "emergency")
	wantRefusal(t, r, 0, "human log", "not written", "refusing to write in "+hlog, "writable by other users", "set log_dir to another dir")
	assertSecretKept(t, secret)
	if got := readFile(t, filepath.Join(s.Install, drillapp.VersionFile)); got != "1.0.0" {
		t.Fatalf("not rolled back: %s", got)
	}
	entries, err := os.ReadDir(hlog)
	mustDo(t, err)
	for _, e := range entries {
		if e.Type()&os.ModeSymlink == 0 {
			t.Fatalf("root wrote %s in the untrusted log dir", e.Name())
		}
	}
}

// The state dir is world-writable, then nobody's: root would replace backups.json there and
// create its lock. Refused naming it; nothing is written in it.
func TestUntrustedStateDir(t *testing.T) {
	s, env, _ := untrustedSandbox(t)
	state := filepath.Join(s.Dir, "state")
	openUp(t, state, 0o777)

	// backup verify records its results in backup.state; that it cannot is a warning there
	// (exit 0: the verification itself is done), and nothing is written in the dir.
	r := s.run(env, "backup", "verify", "--all")
	wantRefusal(t, r, 0, "results not recorded", "refusing to write in "+state, "writable by other users", "set backup.state to another dir")
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Fatalf("root wrote in the untrusted state dir: %v", entries)
	}
	// owned by nobody but not writable by others: still refused (nobody could chmod it back)
	mustDo(t, os.Chown(state, nobody, nobody))
	mustDo(t, os.Chmod(state, 0o755))
	r = s.run(env, "backup", "verify", "--all")
	wantRefusal(t, r, 0, "refusing to write in "+state, "owned by another user", "owner uid 65534")
	mustDo(t, os.Chmod(state, 0o777))

	// An emergency records its outcome as a mark in backup.state at the end: the rollback
	// itself is not held up by that, but the mark is not written there.
	r = s.run(env, "emergency")
	wantRefusal(t, r, 0, "refusing to write in "+state)
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Fatalf("root wrote in the untrusted state dir: %v", entries)
	}
}

// The install's parent is world-writable: the staging and failed dirs would be created and
// renamed there, by root, among entries nobody controls. Refused in preflight (exit 3),
// before anything is extracted or stopped.
func TestUntrustedInstallParent(t *testing.T) {
	s, env, _ := untrustedSandbox(t)
	parent := filepath.Dir(s.Install)
	openUp(t, parent, 0o777)

	for _, args := range [][]string{{"emergency", "--dry-run"}, {"emergency"}, {"rollback", "--to", "latest", "--yes"}} {
		r := s.run(env, args...)
		wantRefusal(t, r, 3, "refusing to write in "+parent, "writable by other users", "service was not stopped")
		assertServiceNotStopped(t, s)
		if staged := glob(t, s.Install+".staging-*"); len(staged) != 0 {
			t.Fatalf("%v: staged anyway: %v", args, staged)
		}
	}
}

// A user who cannot write the lock's dir cannot block a rollback: in the default layout
// (a root-only 0755 dir) nobody cannot create the lock file first (EACCES). A lock file
// owned by nobody (left from when the dir was open) is refused naming it, and a lock dir
// others can write is refused naming the dir, instead of a run waiting on a lock nobody holds.
func TestUntrustedLock(t *testing.T) {
	s, env, _ := untrustedSandbox(t)
	runDir := filepath.Join(s.Dir, "run")
	lockPath := filepath.Join(runDir, "cfrollback.lock")

	out, err := asNobody(t, ": > '"+lockPath+"'")
	if err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("nobody created the lock file in a root 0755 dir: %v %s", err, out)
	}
	if _, err := os.Lstat(lockPath); err == nil {
		t.Fatal("the lock file exists")
	}

	// A lock file nobody owns: refused, named.
	mustDo(t, os.WriteFile(lockPath, nil, 0o600))
	mustDo(t, os.Chown(lockPath, nobody, nobody))
	// A refusal to take the lock is a preflight failure (3): nothing was changed; never 0
	// or 6 ("locked").
	r := s.run(env, "emergency")
	if r.Code != 3 || !strings.Contains(r.Stdout+r.Stderr, lockPath) {
		t.Fatalf("a lock file owned by nobody was not refused by name: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	assertServiceNotStopped(t, s)
	mustDo(t, os.Remove(lockPath))

	// A lock dir others can write (sticky, as /tmp): nobody creates the lock file first and
	// holds it. Refused naming the dir, not "another cfrollback run holds the lock" (exit 6).
	openUp(t, runDir, 0o1777)
	mustAsNobody(t, "umask 022; : > '"+lockPath+"'")
	r = s.run(env, "emergency")
	if r.Code != 3 || !strings.Contains(r.Stdout+r.Stderr, "refusing to write in "+runDir) {
		t.Fatalf("a lock dir others can write was not refused by name: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	assertServiceNotStopped(t, s)

	// Back to a root-only dir: the rollback goes through.
	mustDo(t, os.Remove(lockPath))
	mustDo(t, os.Chmod(runDir, 0o755))
	r = s.run(env, "emergency")
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
}

// undo renames in install_dir's parent too (the failed install back, the restored one
// kept): a parent others can write is refused before the stop, as for emergency.
func TestUntrustedInstallParentUndo(t *testing.T) {
	s, env, _ := untrustedSandbox(t)
	r := s.run(env, "emergency", "--json")
	if r.Code != 0 || r.JSON["run_id"] == nil {
		t.Fatalf("emergency: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	runID, _ := r.JSON["run_id"].(string)
	failed, _ := r.JSON["failed_dir"].(string)
	mustDo(t, os.Remove(filepath.Join(s.Dir, "service.log")))
	before := treeDigest(t, filepath.Dir(s.Install))

	openUp(t, filepath.Dir(s.Install), 0o777)
	r = s.run(env, "undo", runID)
	wantRefusal(t, r, 3, "refusing to write in "+filepath.Dir(s.Install), "writable by other users")
	if _, err := os.Stat(filepath.Join(s.Dir, "service.log")); err == nil {
		t.Fatalf("the refused undo stopped or started the service:\n%s", readFile(t, filepath.Join(s.Dir, "service.log")))
	}
	mustDo(t, os.Chmod(filepath.Dir(s.Install), 0o755))
	if after := treeDigest(t, filepath.Dir(s.Install)); after != before {
		t.Fatalf("the refused undo changed install_dir's parent:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(failed); err != nil {
		t.Fatalf("the failed install %q is gone: %v", failed, err)
	}
}
