package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// holdEnv makes the test binary a lock holder: it takes the lock at the
// path in the variable, says so on stdout, and waits to be killed.
const holdEnv = "CFROLLBACK_LOCK_TEST_HOLD"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		os.Exit(hold(path))
	}
	os.Exit(m.Run())
}

func hold(path string) int {
	_, err := Acquire(path, Holder{Command: "cfrollback emergency", RunID: "child-run"})
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	fmt.Println("locked")
	// Wait to be killed; if the test dies first, stdin closes and we exit.
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func lockPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "run", "cfrollback", "cfrollback.lock")
}

func acquireT(t *testing.T, path string, h Holder) *Lock {
	t.Helper()
	l, err := Acquire(path, h)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	t.Cleanup(func() { _ = l.Release() })
	return l
}

func TestAcquireWritesHolder(t *testing.T) {
	path := lockPath(t)
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := acquireT(t, path, Holder{Command: "cfrollback rollback", RunID: "r1", Since: since})

	h, err := ReadHolder(path)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	want := Holder{PID: os.Getpid(), Host: host, Command: "cfrollback rollback", RunID: "r1", Since: since}
	if !h.Since.Equal(want.Since) || h.PID != want.PID || h.Host != want.Host || h.Command != want.Command || h.RunID != want.RunID {
		t.Fatalf("holder %+v, want %+v", *h, want)
	}
	if l.Holder().PID != os.Getpid() || l.Path() != path {
		t.Fatalf("Lock reports %+v at %s", l.Holder(), l.Path())
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o600 != 0o600 || perm&0o133 != 0 {
		t.Errorf("lock file mode %v, want 0644 less the umask", perm)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm&0o700 != 0o700 || perm&0o022 != 0 {
		t.Errorf("lock dir mode %v, want 0755 less the umask", perm)
	}
}

func TestSecondAcquireInSameProcessFails(t *testing.T) {
	path := lockPath(t)
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pid := os.Getpid()
	acquireT(t, path, Holder{PID: pid, Host: "web-1", Command: "cfrollback emergency", Since: since})

	l, err := Acquire(path, Holder{Command: "cfrollback undo"})
	if err == nil {
		_ = l.Release()
		t.Fatal("second Acquire in the same process succeeded; flock should be per open file")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("error %v is not ErrLocked", err)
	}
	var held *HeldError
	if !errors.As(err, &held) || held.Holder == nil || held.Holder.PID != pid || held.Path != path {
		t.Fatalf("error %#v does not carry the holder", err)
	}
	want := fmt.Sprintf("another cfrollback run holds the lock: pid %d (cfrollback emergency) on host web-1 since 2026-01-02T03:04:05Z; lock file %s", pid, path)
	if err.Error() != want {
		t.Fatalf("message\n%s\nwant\n%s", err, want)
	}
	// The loser must not have touched the winner's record.
	if h, err := ReadHolder(path); err != nil || h.PID != pid {
		t.Fatalf("holder after a failed Acquire: %+v, %v", h, err)
	}
}

func TestReleaseThenAcquire(t *testing.T) {
	path := lockPath(t)
	l, err := Acquire(path, Holder{Command: "first"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Release removed the lock file: %v", err)
	}
	if _, err := ReadHolder(path); err == nil {
		t.Fatal("a released lock still names a holder")
	}
	l2 := acquireT(t, path, Holder{Command: "second"})
	if h, err := ReadHolder(path); err != nil || h.Command != "second" || l2.Holder().Command != "second" {
		t.Fatalf("holder after re-acquire: %+v, %v", h, err)
	}
}

func TestHeldErrorWithoutHolder(t *testing.T) {
	e := &HeldError{Path: "/run/cfrollback.lock"}
	if got, want := e.Error(), "another cfrollback run holds the lock (holder unknown); lock file /run/cfrollback.lock"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !errors.Is(fmt.Errorf("emergency: %w", e), ErrLocked) {
		t.Fatal("wrapped HeldError is not ErrLocked")
	}
}

// An unreadable record does not hide the holder: the kernel's /proc/locks names it
// (here this very process).
func TestHeldWithUnreadableHolder(t *testing.T) {
	path := lockPath(t)
	acquireT(t, path, Holder{Command: "x"})
	if err := os.WriteFile(path, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(path, Holder{})
	var held *HeldError
	if !errors.As(err, &held) || held.Holder == nil || held.Holder.PID != os.Getpid() ||
		!strings.Contains(held.Holder.Command, filepath.Base(os.Args[0])) {
		t.Fatalf("Acquire: %v, want a HeldError naming pid %d from /proc/locks", err, os.Getpid())
	}
}

// A holder that is not cfrollback (flock(1) in a script), with a stale record left by a
// killed run in the file: the error names the real holder, not the dead run.
func TestHeldByAnotherProgramOverStaleRecord(t *testing.T) {
	bin := testenv.RequireTool(t, "flock")
	path := lockPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	stale := `{"pid":999999999,"host":"h","command":"cfrollback emergency","run_id":"dead-run","since":"2025-01-01T00:00:00Z"}`
	if err := os.WriteFile(path, []byte(stale+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--no-fork", path, "sleep", "20")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var held *HeldError
	for deadline := time.Now().Add(5 * time.Second); ; {
		l, err := Acquire(path, Holder{Command: "test"})
		if err == nil {
			l.Release()
			if time.Now().After(deadline) {
				t.Fatal("flock(1) never took the lock")
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if !errors.As(err, &held) {
			t.Fatalf("Acquire: %v", err)
		}
		break
	}
	if held.Holder == nil || held.Holder.PID != cmd.Process.Pid || !strings.Contains(held.Holder.Command, "sleep 20") {
		t.Fatalf("holder %+v, want pid %d running flock ... sleep 20", held.Holder, cmd.Process.Pid)
	}
	t.Logf("%v", held)
}

// TestKilledHolderDoesNotBlock runs a child process that takes the lock,
// checks that the lock keeps us out while the child lives, SIGKILLs it, and
// then takes the lock: the kernel released it with the dead process.
func TestKilledHolderDoesNotBlock(t *testing.T) {
	path := lockPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child said %q (%v), want \"locked\"", line, err)
	}

	_, err = Acquire(path, Holder{Command: "parent"})
	var held *HeldError
	if !errors.As(err, &held) || held.Holder == nil || held.Holder.PID != cmd.Process.Pid || held.Holder.RunID != "child-run" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("Acquire while the child holds the lock: %v, want a HeldError naming pid %d", err, cmd.Process.Pid)
	}
	t.Logf("while the child lives: %v", err)

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL", err)
	}

	// The dead child's record is still in the file...
	if h, err := ReadHolder(path); err != nil || h.PID != cmd.Process.Pid {
		t.Fatalf("holder after the kill: %+v, %v", h, err)
	}
	// ...but it holds nothing.
	l := acquireT(t, path, Holder{Command: "parent"})
	if h, err := ReadHolder(path); err != nil || h.PID != os.Getpid() || h.Command != "parent" || l == nil {
		t.Fatalf("holder after taking over: %+v, %v", h, err)
	}
}

// A symlink planted at the lock path (another user, in a dir others can write) is refused:
// its target is neither truncated nor written.
func TestAcquireRefusesSymlinkedLock(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "root-only-secret")
	if err := os.WriteFile(target, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "cfrollback.lock")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if l, err := Acquire(path, Holder{Command: "x"}); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		if l != nil {
			_ = l.Release()
		}
		t.Fatalf("Acquire through a symlink: %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious\n" {
		t.Fatalf("the symlink's target was changed: %q", b)
	}
}

// A lock file others may write, or that another user owns, is refused with a message naming
// it; a lock file cfrollback creates is 0600 (nobody else can open it to hold a shared flock).
func TestAcquireRefusesUntrustedLockFile(t *testing.T) {
	path := lockPath(t)
	l := acquireT(t, path, Holder{Command: "x"})
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new lock file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(path, Holder{}); err == nil || !strings.Contains(err.Error(), "writable by others") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Acquire of a 0666 lock file: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.RequireRoot(t) // to give the file to another user
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(path, Holder{}); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("Acquire of another user's lock file: %v", err)
	}
}
