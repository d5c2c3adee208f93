package runbook

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/install"
	"github.com/cfrollback/cfrollback/internal/standby"
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
	r, err := e.run(false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Standby == nil || r.Standby.Used || !strings.Contains(r.Standby.Reason, "writable by other users") {
		t.Fatalf("emergency's standby: %+v", r.Standby)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1\n" {
		t.Fatalf("install after the emergency: %q", got)
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
