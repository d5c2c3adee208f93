package standby

// The read-only mount: a sealed standby is bind-mounted onto itself read-only, so that no
// write can go through its path any more (EROFS, for root too), and the emergency's check
// becomes a few syscalls instead of a stat walk that grows with the tree: the mount it
// finds is the very mount the refresh made (its unique id, this boot), read-only, and no
// other mount in any mount namespace reaches the tree writable. Anything else (no mount
// after a reboot, a mount that is not ours, another writable way in) falls back to the
// walk, which proves the same as before. docs/RELIABILITY.md says what each can and cannot
// stop.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Proof says how Check proved a standby unchanged.
const (
	ProofMount = "read-only mount"
	ProofWalk  = "stat walk"
)

const bootIDPath = "/proc/sys/kernel/random/boot_id"

// Shut is a tree about to be put in place as the standby: its root made 0700 (root's only),
// so that between the rename that makes it reachable and the read-only mount nobody else
// can open a file in it for writing (a descriptor opened then would write past the mount).
// Its descriptor is on the writable mount, so Open can give the root its mode back once the
// read-only mount is on.
type Shut struct {
	fd   int
	mode uint32
}

// ShutTree opens tree's root (no symlink) and makes it 0700 until Open.
func ShutTree(tree string) (*Shut, error) {
	fd, err := unix.Open(tree, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: tree, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: tree, Err: err}
	}
	if err := unix.Fchmod(fd, 0o700); err != nil {
		_ = unix.Close(fd)
		return nil, &os.PathError{Op: "chmod", Path: tree, Err: err}
	}
	return &Shut{fd: fd, mode: st.Mode & 0o7777}, nil
}

// Open gives the root its mode back (through the writable mount) and closes it.
func (s *Shut) Open() error {
	if s == nil || s.fd < 0 {
		return nil
	}
	err := unix.Fchmod(s.fd, s.mode)
	_ = unix.Close(s.fd)
	s.fd = -1
	return err
}

// Arm bind-mounts dir onto itself read-only and records the mount in s (MountID, BootID).
// It refuses, changing nothing, when another mount already reaches the tree writable (the
// read-only mount would not stop writes there); the error then says where.
func Arm(dir string, s *Seal) error {
	dir = filepath.Clean(dir)
	if err := seesEveryProcess(); err != nil {
		return err
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s onto itself: %w", dir, err)
	}
	undo := func(err error) error {
		_ = unix.Unmount(dir, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		return err
	}
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return undo(fmt.Errorf("make the mount at %s read-only: %w", dir, err))
	}
	id, err := uniqueMountID(dir)
	if err != nil {
		return undo(err)
	}
	if ways, err := writableWays(dir); err != nil {
		return undo(err)
	} else if len(ways) > 0 {
		return undo(fmt.Errorf("the tree can also be written through %s, which a read-only mount at %s would not stop", strings.Join(ways, ", "), dir))
	}
	boot, err := bootID()
	if err != nil {
		return undo(err)
	}
	s.MountID, s.BootID = id, boot
	return nil
}

// Disarm takes any mount off dir (lazily: a process whose cwd is inside keeps its view),
// so that dir can be renamed or removed. No mount there is not an error.
func Disarm(dir string) error {
	dir = filepath.Clean(dir)
	for i := 0; i < 8; i++ { // mounts can be stacked
		root, err := isMountRoot(dir)
		if err != nil || !root {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := unix.Unmount(dir, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
			return fmt.Errorf("unmount the read-only mount at %s: %w", dir, err)
		}
	}
	return fmt.Errorf("%s is still a mount point after 8 unmounts", dir)
}

// MountedElsewhere names a mount on dir left in some mount namespace after Disarm took this
// namespace's off ("" when there is none). A rename of dir would carry such a mount along
// (the kernel moves a mount with the dir it is on, in every namespace), so that the renamed
// tree, the restored install, would be read-only there. It needs to see every process.
func MountedElsewhere(dir string) (string, error) {
	dir = filepath.Clean(dir)
	if err := seesEveryProcess(); err != nil {
		return "", err
	}
	dev, fsPath, err := fsPathOf(dir)
	if err != nil {
		return "", err
	}
	where := ""
	eachNamespace(func(ns string, ms []mount) {
		for _, m := range ms {
			if where == "" && (m.mountPoint == dir || (m.dev == dev && m.root == fsPath)) {
				where = fmt.Sprintf("%s (mount namespace %s)", m.mountPoint, ns)
			}
		}
	})
	return where, nil
}

// eachNamespace calls fn with the mounts of each mount namespace of Namespaces(), once per
// namespace; a process that ends meanwhile is skipped.
func eachNamespace(fn func(ns string, ms []mount)) {
	seen := map[string]bool{}
	for _, p := range Namespaces() {
		ns, err := os.Readlink(p + "/ns/mnt")
		if err != nil || seen[ns] {
			continue
		}
		b, err := os.ReadFile(p + "/mountinfo")
		if err != nil {
			continue
		}
		seen[ns] = true
		fn(ns, parseMountinfo(b))
	}
}

// initialPIDNamespace is the inode of the host's PID namespace (the kernel's
// PROC_PID_INIT_INO): only a process in it sees every process, and so every mount namespace.
const initialPIDNamespace = "pid:[4026531836]"

// seesEveryProcess refuses a process in a PID namespace of its own (a container, the
// tests' systemd sandbox): it cannot see every mount namespace, so it can neither tell that
// no other one reaches the tree writable nor find a mount left on it.
func seesEveryProcess() error {
	if ns, err := os.Readlink("/proc/self/ns/pid"); err != nil || ns != initialPIDNamespace {
		return errors.New("this process runs in a PID namespace of its own (a container?), from which not every mount namespace can be seen")
	}
	return nil
}

// fsPathOf is the device (major:minor) dir is on and its path inside that filesystem, from
// the mount that holds its parent.
func fsPathOf(dir string) (string, string, error) {
	parent := filepath.Dir(dir)
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, parent, 0, unix.STATX_MNT_ID, &stx); err != nil {
		return "", "", &os.PathError{Op: "statx", Path: parent, Err: err}
	}
	self, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	for _, m := range parseMountinfo(self) {
		if uint64(m.id) == stx.Mnt_id { //nolint:gosec // ids are small and positive
			rel := strings.TrimPrefix(parent, strings.TrimSuffix(m.mountPoint, "/"))
			return m.dev, filepath.Join(m.root, rel, filepath.Base(dir)), nil
		}
	}
	return "", "", fmt.Errorf("the mount holding %s is not in /proc/self/mountinfo", parent)
}

// Mounted says whether dir is the root of a mount (the standby's read-only mount, normally).
func Mounted(dir string) bool {
	root, err := isMountRoot(filepath.Clean(dir))
	return err == nil && root
}

// armedProof says why the read-only mount does not prove the standby unchanged ("" when it
// does): dir must be the root of the very mount Arm made (same unique mount id, same boot),
// read-only, on the sealed root inode, with no other writable way into the tree.
func armedProof(dir string, s *Seal) string {
	switch {
	case s.Root.Path != ".":
		return "the seal has no root entry"
	case s.MountID == 0 && s.ArmNote != "":
		return "it was sealed without a read-only mount: " + s.ArmNote
	case s.MountID == 0:
		return "it was sealed without a read-only mount"
	}
	if boot, err := bootID(); err != nil || boot != s.BootID {
		return "the read-only mount was made before the last boot"
	}
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID_UNIQUE, &stx); err != nil {
		return "statx: " + err.Error()
	}
	if stx.Mask&unix.STATX_MNT_ID_UNIQUE == 0 || stx.Mnt_id != s.MountID {
		return "the read-only mount made when it was sealed is not there"
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 || stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return "it is not the root of its mount"
	}
	root := s.Root
	if stx.Ino != root.Ino || unix.Mkdev(stx.Dev_major, stx.Dev_minor) != s.Dev || uint32(stx.Mode)|unix.S_IFDIR != root.Mode ||
		stx.Uid != root.UID || stx.Gid != root.GID || stx.Ctime.Sec*1e9+int64(stx.Ctime.Nsec) != root.CtimeNS {
		return "its root is not the sealed one"
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || fs.Flags&unix.ST_RDONLY == 0 {
		return "its mount is not read-only"
	}
	ways, err := writableWays(dir)
	if err != nil {
		return err.Error()
	}
	if len(ways) > 0 {
		return "it can also be written through " + strings.Join(ways, ", ")
	}
	return ""
}

func uniqueMountID(dir string) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID_UNIQUE, &stx); err != nil {
		return 0, &os.PathError{Op: "statx", Path: dir, Err: err}
	}
	if stx.Mask&unix.STATX_MNT_ID_UNIQUE == 0 {
		return 0, errors.New("this kernel has no unique mount ids (Linux 6.8 or later has)")
	}
	return stx.Mnt_id, nil
}

// isMountRoot says whether dir is a mount point in this namespace: by statx's
// STATX_ATTR_MOUNT_ROOT (Linux 5.8 and later), else by /proc/self/mountinfo, so that on an
// older kernel (where Arm never mounts: it needs 6.8) Disarm still finds nothing to do
// instead of failing, and a standby is still taken.
func isMountRoot(dir string) (bool, error) {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE, &stx)
	switch {
	case err == nil && stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0:
		return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
	case err != nil && !errors.Is(err, unix.ENOSYS):
		return false, &os.PathError{Op: "statx", Path: dir, Err: err}
	}
	if _, err := os.Lstat(dir); err != nil {
		return false, err
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	return mountPointIn(parseMountinfo(b), dir), nil
}

// mountPointIn says whether a mount of ms sits at dir.
func mountPointIn(ms []mount, dir string) bool {
	for _, m := range ms {
		if m.mountPoint == dir {
			return true
		}
	}
	return false
}

func bootID() (string, error) {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// mount is one line of /proc/PID/mountinfo.
type mount struct {
	id         int
	dev        string // major:minor
	root       string // the path inside its filesystem that is mounted
	mountPoint string
	readOnly   bool // this mount's own flags
}

func parseMountinfo(b []byte) []mount {
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		id, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		ro := false
		for _, o := range strings.Split(f[5], ",") {
			ro = ro || o == "ro"
		}
		out = append(out, mount{id: id, dev: f[2], root: unescape(f[3]), mountPoint: unescape(f[4]), readOnly: ro})
	}
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// under reports whether p is base or inside it (both clean, slash paths).
func under(p, base string) bool {
	return p == base || base == "/" || strings.HasPrefix(p, base+"/")
}

// writableWays lists where, in any mount namespace, the tree of dir's read-only mount can
// be reached through a writable mount not covered by a read-only mount of the tree: a
// mount of the same filesystem whose root holds the tree (or lies inside it).
func writableWays(dir string) ([]string, error) {
	self, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil {
		return nil, &os.PathError{Op: "statx", Path: dir, Err: err}
	}
	var tree mount
	for _, m := range parseMountinfo(self) {
		if uint64(m.id) == stx.Mnt_id { //nolint:gosec // ids are small and positive
			tree = m
		}
	}
	if tree.dev == "" {
		return nil, fmt.Errorf("the mount at %s is not in /proc/self/mountinfo", dir)
	}
	var ways []string
	eachNamespace(func(ns string, ms []mount) { ways = append(ways, exposures(ms, tree, ns)...) })
	return ways, nil
}

// Namespaces lists the /proc/PID dirs whose mount namespaces writableWays reads (one per
// namespace is enough; duplicates are skipped): this process's and every process's. Tests
// that need a verdict about their own mounts only narrow it, since the machine may run
// other tests' namespaces (the systemd sandbox's) that reach every temp dir writable.
var Namespaces = func() []string {
	pids, _ := filepath.Glob("/proc/[0-9]*")
	return append([]string{"/proc/self"}, pids...)
}

// exposures lists the writable ways into tree (the read-only mount's own line) among the
// mounts of one namespace.
func exposures(ms []mount, tree mount, ns string) []string {
	var out []string
	covered := func(at string) bool { // a read-only mount of the tree sits at 'at'
		for _, m := range ms {
			if m.dev == tree.dev && m.root == tree.root && m.mountPoint == at && m.readOnly {
				return true
			}
		}
		return false
	}
	for _, m := range ms {
		if m.dev != tree.dev || m.readOnly {
			continue
		}
		switch {
		case m.root == tree.root: // another writable mount of the tree itself (even one on top of ours)
			out = append(out, fmt.Sprintf("%s (mount namespace %s)", m.mountPoint, ns))
		case under(tree.root, m.root): // m holds the tree at mountPoint + the rest of its path
			at := filepath.Join(m.mountPoint, strings.TrimPrefix(tree.root, strings.TrimSuffix(m.root, "/")))
			if !covered(at) {
				out = append(out, fmt.Sprintf("%s (mount namespace %s)", at, ns))
			}
		case under(m.root, tree.root): // a writable mount of a dir inside the tree
			out = append(out, fmt.Sprintf("%s (mount namespace %s)", m.mountPoint, ns))
		}
	}
	return out
}
