package lock

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Probe says held while a lock is held, by this process or by nobody recorded, and free
// once released; it neither takes the lock nor disturbs the holder.
func TestProbe(t *testing.T) {
	path := lockPath(t)
	if held, err := Probe(path); err != nil || held {
		t.Fatalf("missing lock file: held %v, %v", held, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Probe created the lock file: %v", err)
	}
	l := acquireT(t, path, Holder{Command: "cfrollback guard"})
	for range 3 {
		if held, err := Probe(path); err != nil || !held {
			t.Fatalf("while held: held %v, %v", held, err)
		}
	}
	// the holder still holds it: a second Acquire is refused
	if _, err := Acquire(path, Holder{Command: "second"}); err == nil {
		t.Fatal("the probe released the holder's lock")
	}
	// a holder whose record was lost (an older cfrollback, a pid of another namespace) is still seen
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if held, err := Probe(path); err != nil || !held {
		t.Fatalf("held without a record: held %v, %v", held, err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if held, err := Probe(path); err != nil || held {
		t.Fatalf("released: held %v, %v", held, err)
	}
	// and a probe leaves the lock free for the next one
	acquireT(t, path, Holder{Command: "next"})
}

func TestProbeRefusesSymlinkAndFIFO(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.lock")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Probe(link); err == nil {
		t.Error("a symlinked lock file is probed")
	}
	fifo := filepath.Join(dir, "fifo.lock")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Probe(fifo); err == nil { // and does not hang on it
		t.Error("a FIFO is probed as a lock file")
	}
}
