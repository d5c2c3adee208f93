package runbook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/standby"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

func (e *env) refresh() (*StandbyResult, error) {
	return StandbyRefresh(context.Background(), Options{Config: e.cfg}, Deps{Service: e.m})
}

// A dry run of an emergency says it would take the standby and leaves it, sealed, in place.
func TestEmergencyDryRunWouldTakeStandby(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1\n"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken\n"})
	if res, err := e.refresh(); err != nil || res.Outcome != "ok" {
		t.Fatalf("refresh: %v %+v", err, res)
	}
	res, err := e.run(true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Standby == nil || !res.Standby.Used || !strings.Contains(res.Steps[0].Detail, "would take the standby") {
		t.Fatalf("dry run: standby %+v, preflight %q", res.Standby, res.Steps[0].Detail)
	}
	dir := e.cfg.StandbyPath()
	if !install.Exists(dir) || !install.Exists(standby.SealPath(dir)) {
		t.Fatal("the dry run moved the standby or its seal")
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v2 broken\n" {
		t.Fatalf("the dry run changed the install: %q", got)
	}
}

// A standby.dir in a dir other users can write is refused by refresh and never used by an
// emergency, which extracts and says why.
func TestStandbyDirOthersCanWriteIsRefused(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1\n"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken\n"})
	shared := filepath.Join(filepath.Dir(e.cfg.InstallDir), "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	e.cfg.Standby.Dir = filepath.Join(shared, "app.standby")
	res, err := e.refresh()
	if err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Fatalf("refresh into a dir others can write: %v %+v", err, res)
	}
	if install.Exists(e.cfg.Standby.Dir) || len(leftovers(e.cfg.Standby.Dir)) != 0 {
		t.Fatal("the refused refresh wrote into the shared dir")
	}
	e.extractsInstead("writable by other users")
}

// extractsInstead runs an emergency that must not take the standby (the reason says why)
// and must restore v1 by extracting.
func (e *env) extractsInstead(why string) {
	e.t.Helper()
	r, err := e.run(false)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.Standby == nil || r.Standby.Used || !strings.Contains(r.Standby.Reason, why) {
		e.t.Fatalf("emergency's standby: %+v, want it not used because %q", r.Standby, why)
	}
	if got := read(e.t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1\n" {
		e.t.Fatalf("install after the emergency: %q", got)
	}
}

// standby drop removes the seal and the tree; a second drop finds nothing.
func TestStandbyDrop(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1\n"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2\n"})
	if _, err := e.refresh(); err != nil {
		t.Fatal(err)
	}
	drop := func() *StandbyResult {
		res, err := StandbyDrop(context.Background(), Options{Config: e.cfg}, Deps{}, DropOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := drop(); res.Outcome != "dropped" {
		t.Fatalf("first drop: %+v", res)
	}
	dir := e.cfg.StandbyPath()
	if install.Exists(dir) || install.Exists(standby.SealPath(dir)) {
		t.Fatal("drop left the standby or its seal")
	}
	if res := drop(); res.Outcome != "none" {
		t.Fatalf("second drop: %+v", res)
	}
}

// mountEnv is an env with a backup (v1) and a broken install (v2) where the standby's
// read-only mount can be made, and whose mount proofs read only this process's mount
// namespace until the test ends (other tests' systemd sandboxes reach every temp dir
// writable and would rightly keep the standby from being mounted).
func mountEnv(t *testing.T) *env {
	e := newEnv(t)
	testenv.RequireMounts(t, filepath.Dir(e.cfg.InstallDir))
	old := standby.Namespaces
	standby.Namespaces = func() []string { return []string{"/proc/self"} }
	t.Cleanup(func() { standby.Namespaces = old })
	e.backup("20250101-000000", map[string]string{"app.txt": "v1\n"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken\n"})
	return e
}

// The standby's read-only mount, end to end: refresh mounts it (no write goes through),
// emergency proves it by the mount instead of walking it and takes it off before the
// rename (the restored install is writable); a standby whose mount is gone (a reboot) is
// extracted again by the next refresh to get it back; drop leaves no mount.
func TestStandbyReadOnlyMount(t *testing.T) {
	e := mountEnv(t)
	dir := e.cfg.StandbyPath()
	if res, err := e.refresh(); err != nil || res.Outcome != "ok" {
		t.Fatalf("refresh: %v %+v", err, res)
	}
	if !standby.Mounted(dir) {
		t.Fatal("the refreshed standby is not mounted")
	}
	if err := os.WriteFile(filepath.Join(dir, "app.txt"), []byte("edited"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("a write into the standby: %v, want EROFS", err)
	}
	if st := CheckStandby(context.Background(), e.cfg); !st.Valid || st.Proof != standby.ProofMount || !st.ReadOnlyMount {
		t.Fatalf("status: %+v", st)
	}

	// A reboot takes the mount away: the tree still checks (by the walk), but refresh
	// extracts it again to mount it.
	if err := standby.Disarm(dir); err != nil {
		t.Fatal(err)
	}
	if st := CheckStandby(context.Background(), e.cfg); !st.Valid || st.Proof != standby.ProofWalk {
		t.Fatalf("status without the mount: %+v", st)
	}
	if res, err := e.refresh(); err != nil || res.Outcome != "ok" || !standby.Mounted(dir) {
		t.Fatalf("refresh of an unmounted standby: %v %+v, mounted %v", err, res, standby.Mounted(dir))
	}
	if res, err := e.refresh(); err != nil || res.Outcome != "current" {
		t.Fatalf("refresh of a mounted, current standby: %v %+v", err, res)
	}

	res, err := e.run(false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Standby == nil || !res.Standby.Used || res.Standby.Proof != standby.ProofMount {
		t.Fatalf("emergency: standby %+v", res.Standby)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1\n" {
		t.Fatalf("install after the emergency: %q", got)
	}
	if standby.Mounted(e.cfg.InstallDir) {
		t.Fatal("the restored install is still mounted read-only")
	}
	if err := os.WriteFile(filepath.Join(e.cfg.InstallDir, "app.txt"), []byte("v1\nwritable\n"), 0o644); err != nil {
		t.Fatalf("the restored install is not writable: %v", err)
	}
	if res, err := StandbyDrop(context.Background(), Options{Config: e.cfg}, Deps{}, DropOptions{}); err != nil || res.Outcome != "dropped" {
		t.Fatalf("drop: %v %+v", err, res)
	}
	if install.Exists(dir) || len(testenv.MountsUnder(filepath.Dir(dir))) != 0 {
		t.Fatalf("drop left %s or a mount: %q", dir, testenv.MountsUnder(filepath.Dir(dir)))
	}
}

// A copy of the standby's read-only mount left in another mount namespace (one made after
// the refresh mounted it): renaming the standby into the install would carry that mount
// along, making the install read-only there, so the emergency extracts instead and says why.
func TestEmergencyStandbyMountedElsewhere(t *testing.T) {
	e := mountEnv(t)
	if res, err := e.refresh(); err != nil || res.Outcome != "ok" || !standby.Mounted(e.cfg.StandbyPath()) {
		t.Fatalf("refresh: %v %+v", err, res)
	}
	other := testenv.OtherMountNamespace(t)
	standby.Namespaces = func() []string { return []string{"/proc/self", other} }
	e.extractsInstead("still mounted read-only")
	if err := os.WriteFile(filepath.Join(e.cfg.InstallDir, "app.txt"), []byte("v1\nwritable\n"), 0o644); err != nil {
		t.Fatalf("the restored install is not writable: %v", err)
	}
}
