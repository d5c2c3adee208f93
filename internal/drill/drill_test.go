package drill

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// slowApp stands in for `cfrollback drill-app`: it takes 400 ms before it writes its
// pidfile (so the status command says down all that time), then runs for at most 30 s.
const slowApp = `#!/bin/sh
pidfile=
while [ $# -gt 0 ]; do
	[ "$1" = --pidfile ] && pidfile=$2
	shift
done
sleep 0.4
echo $$ >"$pidfile"
i=0
while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
`

// TestInterruptedStartLeavesNoApp: a drill interrupted while its app is starting, before
// the app has written its pidfile, must still end that app (the CI flake of
// TestSignal/drill/SIGTERM: the status command said down, so the stop did nothing).
func TestInterruptedStartLeavesNoApp(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	tmp := t.TempDir()
	exe := filepath.Join(tmp, "slow-app")
	if err := os.WriteFile(exe, []byte(slowApp), 0o755); err != nil {
		t.Fatal(err)
	}
	sandbox := filepath.Join(tmp, "sandbox")
	t.Cleanup(func() { // whatever the drill left: ours, found by the sandbox in its command line
		for _, p := range testenv.ProcsMentioning(sandbox, "") {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { // interrupt 50 ms after the app appears: inside its 400 ms start-up
		for ctx.Err() == nil && len(testenv.ProcsMentioning(sandbox, "")) == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	_, err := Run(ctx, Options{Dir: sandbox, Exe: exe})
	if err == nil {
		t.Fatalf("the drill ran to the end: it was not interrupted while the app started")
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(testenv.ProcsMentioning(sandbox, "")) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := testenv.ProcsMentioning(sandbox, ""); len(left) > 0 {
		t.Fatalf("the drill ended (%v) but its app, still starting when interrupted, outlived it: %v", err, left)
	}
	if _, err := os.Stat(sandbox); !os.IsNotExist(err) {
		t.Fatalf("the interrupted drill left its sandbox: %v", err)
	}
}
