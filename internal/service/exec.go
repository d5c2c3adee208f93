package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// runner runs one external program. env holds NAME=VALUE entries added to the inherited
// environment. The output is stdout and stderr interleaved. A program that ran and exited
// non-zero gives an *exec.ExitError.
type runner interface {
	Run(ctx context.Context, env []string, name string, args ...string) ([]byte, error)
}

var _ runner = (*execRunner)(nil)

// maxOutput bounds what a runner reads back; 'pm2 jlist' with many apps is the largest.
const maxOutput = 32 << 20

// execRunner runs programs for real.
//
// Output goes to an unlinked temp file, not a pipe: a start command that backgrounds a daemon
// (`nohup app >log 2>&1 &`, or pm2 spawning its God daemon) must return even though the daemon
// may inherit stdout, and a pipe would keep Wait waiting or, once closed, hand the daemon
// EPIPE. A daemon that keeps writing to the inherited stdout writes into that unlinked file;
// redirect its output. Each program runs in its own process group so the operator's Ctrl-C
// reaches cfrollback, not the service it starts; when ctx ends the whole group is killed.
type execRunner struct {
	dir string // working directory; "" inherits cfrollback's
}

// DefaultCommandTimeout bounds a program run with a context that has no deadline of its own
// (the runbook's steps give theirs; a caller that forgets must not hang for ever: a 'pm2 stop'
// under memory pressure once ran for 13 minutes). A var for tests.
var DefaultCommandTimeout = 2 * time.Minute

func (r *execRunner) Run(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCommandTimeout)
		defer cancel()
	}
	out, err := os.CreateTemp("", "cfrollback-exec-*")
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", name, err)
	}
	defer out.Close()         //nolint:errcheck // an unlinked temp file holding the output, read back and never kept
	_ = os.Remove(out.Name()) // nothing to leave behind, even if cfrollback is killed

	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = r.dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()

	fi, err := out.Stat()
	if err != nil {
		return nil, fmt.Errorf("run %s: read output: %w", name, err)
	}
	// Past the limit keep the end: errors and pm2's JSON come last.
	off := max(0, fi.Size()-maxOutput)
	b := make([]byte, fi.Size()-off)
	n, err := out.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("run %s: read output: %w", name, err)
	}
	return b[:n], runErr
}

// withOutput adds the tail of a program's output to its error, which is where pm2, systemctl
// and users' scripts say what went wrong.
func withOutput(err error, out []byte) error {
	if t := outputTail(out); t != "" {
		return fmt.Errorf("%w: %s", err, t)
	}
	return err
}

const tailBytes = 4 << 10

var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

// outputTail returns the last 4 KiB of out without colour codes or surrounding blank space.
func outputTail(out []byte) string {
	if len(out) > tailBytes {
		out = out[len(out)-tailBytes:]
	}
	return strings.TrimSpace(ansiEscape.ReplaceAllString(string(out), ""))
}
