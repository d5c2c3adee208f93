package guard

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/lock"
)

// noSuchPID is above the kernel's largest pid_max (2^22): no process here has it, as a
// guard's pid of another pid namespace may not.
const noSuchPID = 1<<22 + 1

// guard status judges "running" by the lock, not by the recorded pid: a guard whose pid
// means nothing here (another pid namespace) runs; a record whose pid is alive but holds no
// lock (a killed guard, its pid reused) does not.
func TestStatusRunningIsTheLock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, LockFile)
	since := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	lk, err := lock.Acquire(path, lock.Holder{PID: noSuchPID, Command: "cfrollback guard", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lk.Release() }()
	st, err := ReadStatus(dir, testPolicy(), since.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.Holder == nil || st.Holder.PID != noSuchPID || st.Note != "" {
		t.Fatalf("held by a pid of another namespace: running %v, holder %+v, note %q", st.Running, st.Holder, st.Note)
	}
	// the probe did not take the lock from the guard
	if _, err := lock.Acquire(path, lock.Holder{Command: "second"}); err == nil {
		t.Fatal("guard status released the guard's lock")
	}
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}

	// a record a killed guard left, whose pid is now a live process (this one): not running
	b, _ := json.Marshal(lock.Holder{PID: os.Getpid(), Command: "cfrollback guard", Since: since})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := ReadStatus(dir, testPolicy(), since.Add(time.Minute)); err != nil || st.Running || st.Holder != nil {
		t.Fatalf("stale record of a live pid: running %v, holder %+v, %v", st.Running, st.Holder, err)
	}
}
