package service

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// A program run without a deadline is still bounded, and dies with its process group (here
// a child of sh that would otherwise outlive it).
func TestExecRunnerBoundsACommandWithoutDeadline(t *testing.T) {
	old := DefaultCommandTimeout
	DefaultCommandTimeout = 300 * time.Millisecond
	t.Cleanup(func() { DefaultCommandTimeout = old })
	start := time.Now()
	out, err := (&execRunner{}).Run(context.Background(), nil, "sh", "-c", "sleep 60 & echo $!; wait")
	if err == nil || time.Since(start) > 20*time.Second {
		t.Fatalf("Run returned %v after %s, want an error within the bound", err, time.Since(start))
	}
	var pid int
	if _, serr := fmt.Sscan(string(out), &pid); serr != nil || pid <= 0 {
		t.Fatalf("no child pid in %q", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d outlived the bounded command", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
