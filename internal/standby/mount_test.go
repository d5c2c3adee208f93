package standby

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cfrollback/cfrollback/internal/testenv"
	"golang.org/x/sys/unix"
)

// onlyOwnNamespace makes writableWays read only this process's mount namespace until the
// test ends: other tests' systemd sandboxes, running at the same time, reach every temp
// dir writable and would rightly keep any standby from being proved by its mount.
func onlyOwnNamespace(t *testing.T) {
	old := Namespaces
	Namespaces = func() []string { return []string{"/proc/self"} }
	t.Cleanup(func() { Namespaces = old })
}

// armedTree is sealedTree with the read-only mount on and the seal recording it.
func armedTree(t *testing.T) (string, Want) {
	t.Helper()
	dir, w := sealedTree(t)
	testenv.RequireMounts(t, filepath.Dir(dir))
	onlyOwnNamespace(t)
	s, err := Read(SealPath(dir))
	must(t, err)
	must(t, Arm(dir, s))
	must(t, Write(SealPath(dir), s))
	return dir, w
}

func TestArmProvesByTheMount(t *testing.T) {
	dir, w := armedTree(t)
	s, err := Check(context.Background(), dir, w)
	if err != nil {
		t.Fatal(err)
	}
	if how, why := s.Proof(); how != ProofMount {
		t.Fatalf("checked by %q (%s), want the read-only mount", how, why)
	}
	if !Mounted(dir) {
		t.Fatal("Mounted says no")
	}
	// Nothing goes through the path, root included.
	err = os.WriteFile(filepath.Join(dir, "app.js"), []byte("edited"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("a write into the armed standby: %v, want EROFS", err)
	}
	if err := os.Remove(filepath.Join(dir, "lib", "a.js")); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("a removal in the armed standby: %v, want EROFS", err)
	}
}

// Unmounted, edited, and mounted read-only again by someone else: the mount is not the
// one the seal names, so the walk decides, and finds the edit.
func TestArmAnotherMountFallsBackToTheWalk(t *testing.T) {
	dir, w := armedTree(t)
	must(t, Disarm(dir))
	if Mounted(dir) {
		t.Fatal("still mounted after Disarm")
	}
	s, err := Check(context.Background(), dir, w)
	if err != nil {
		t.Fatalf("unchanged but unmounted: %v", err)
	}
	if how, why := s.Proof(); how != ProofWalk || !strings.Contains(why, "is not there") {
		t.Fatalf("checked by %q (%s), want the walk because the mount is gone", how, why)
	}
	must(t, os.WriteFile(filepath.Join(dir, "app.js"), []byte("console.log('v2')\n"), 0o644))
	must(t, unix.Mount(dir, dir, "", unix.MS_BIND, ""))
	must(t, unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""))
	_, err = Check(context.Background(), dir, w)
	var mm *MismatchError
	if !errors.As(err, &mm) || !strings.Contains(err.Error(), "app.js") {
		t.Fatalf("an edit made while unmounted: %v, want a mismatch naming app.js", err)
	}
}

// A writable bind mount that reaches the tree another way: Arm refuses (and leaves no
// mount), and a standby armed before such a mount appears is walked.
func TestArmWritableWayIn(t *testing.T) {
	dir, w := sealedTree(t)
	root := filepath.Dir(dir)
	testenv.RequireMounts(t, root)
	onlyOwnNamespace(t)
	alias := filepath.Join(root, "alias")
	must(t, os.Mkdir(alias, 0o755))
	must(t, unix.Mount(root, alias, "", unix.MS_BIND, ""))
	s, err := Read(SealPath(dir))
	must(t, err)
	err = Arm(dir, s)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(alias, "app.standby")) {
		t.Fatalf("Arm with a writable alias mount: %v, want a refusal naming %s", err, filepath.Join(alias, "app.standby"))
	}
	if Mounted(dir) || s.MountID != 0 {
		t.Fatal("a refused Arm left a mount or a mount id")
	}
	must(t, unix.Unmount(alias, unix.MNT_DETACH))

	must(t, Arm(dir, s))
	must(t, Write(SealPath(dir), s))
	must(t, unix.Mount(root, alias, "", unix.MS_BIND, "")) // non-recursive: the tree is writable there
	got, err := Check(context.Background(), dir, w)
	if err != nil {
		t.Fatal(err)
	}
	if how, why := got.Proof(); how != ProofWalk || !strings.Contains(why, alias) {
		t.Fatalf("checked by %q (%s), want the walk because of %s", how, why, alias)
	}
}

// Another mount namespace that reaches the tree writable (a process started in a copy of
// this one before the mount was made): Arm refuses, naming it.
func TestArmWritableInAnotherNamespace(t *testing.T) {
	dir, _ := sealedTree(t)
	testenv.RequireMounts(t, filepath.Dir(dir))
	other := testenv.OtherMountNamespace(t)
	old := Namespaces
	Namespaces = func() []string { return []string{"/proc/self", other} }
	t.Cleanup(func() { Namespaces = old })
	s, err := Read(SealPath(dir))
	must(t, err)
	err = Arm(dir, s)
	otherNS, _ := os.Readlink(other + "/ns/mnt")
	if err == nil || !strings.Contains(err.Error(), otherNS) {
		t.Fatalf("Arm with the tree writable in %s: %v, want a refusal naming it", otherNS, err)
	}
	if Mounted(dir) {
		t.Fatal("a refused Arm left a mount")
	}
}

func TestExposures(t *testing.T) {
	const info = `26 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 26 254:0 /opt/app.standby /opt/app.standby ro,relatime - ext4 /dev/vda rw
41 26 254:1 / /data rw,relatime - ext4 /dev/vdb rw
42 26 254:0 /opt /srv/opt ro,relatime - ext4 /dev/vda rw
43 26 254:0 /opt /mnt/opt\040x rw,relatime - ext4 /dev/vda rw
44 43 254:0 /opt/app.standby /mnt/opt\040x/app.standby ro,relatime - ext4 /dev/vda rw
45 26 254:0 /opt/app.standby/lib /lib2 rw,relatime - ext4 /dev/vda rw
46 26 254:0 /home /home rw,relatime - ext4 /dev/vda rw
`
	ms := parseMountinfo([]byte(info))
	tree := ms[1]
	got := exposures(ms, tree, "ns")
	// "/" is covered by 40, /srv/opt is read-only, /mnt/opt x is covered by 44, /home does
	// not hold the tree, /data is another filesystem; /lib2 is a writable mount inside it.
	if len(got) != 1 || got[0] != "/lib2 (mount namespace ns)" {
		t.Fatalf("exposures = %q", got)
	}
	ms = append(ms[:5], ms[6:]...) // without 44: /mnt/opt x/app.standby is writable
	got = exposures(ms, tree, "ns")
	if len(got) != 2 || got[0] != "/mnt/opt x/app.standby (mount namespace ns)" {
		t.Fatalf("exposures without the covering mount = %q", got)
	}
}

func TestShutTree(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	must(t, os.Mkdir(tree, 0o755))
	s, err := ShutTree(tree)
	must(t, err)
	if fi, _ := os.Stat(tree); fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode while shut: %v, want 0700", fi.Mode().Perm())
	}
	must(t, s.Open())
	if fi, _ := os.Stat(tree); fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode after Open: %v, want 0755", fi.Mode().Perm())
	}
	must(t, os.Symlink(tree, filepath.Join(dir, "link")))
	if _, err := ShutTree(filepath.Join(dir, "link")); err == nil {
		t.Fatal("ShutTree followed a symlink")
	}
}

// The mount table's answer (what an older kernel without STATX_ATTR_MOUNT_ROOT gets) agrees
// with statx's on a real bind mount and on a plain dir, and Disarm of a dir that was never
// mounted is no error.
func TestMountPointInAgreesWithStatx(t *testing.T) {
	root := t.TempDir()
	testenv.RequireMounts(t, root)
	plain, bound := filepath.Join(root, "plain"), filepath.Join(root, "with space")
	must(t, os.Mkdir(plain, 0o755))
	must(t, os.Mkdir(bound, 0o755))
	must(t, unix.Mount(bound, bound, "", unix.MS_BIND, ""))
	b, err := os.ReadFile("/proc/self/mountinfo")
	must(t, err)
	ms := parseMountinfo(b)
	for dir, want := range map[string]bool{plain: false, bound: true} {
		got, err := isMountRoot(dir)
		if err != nil || got != want || mountPointIn(ms, dir) != want {
			t.Errorf("%s: statx %v (%v), mountinfo %v, want %v", dir, got, err, mountPointIn(ms, dir), want)
		}
	}
	must(t, Disarm(plain))
	must(t, Disarm(bound))
	if Mounted(bound) {
		t.Fatal("Disarm left the bind mount")
	}
	must(t, Disarm(filepath.Join(root, "missing")))
}
