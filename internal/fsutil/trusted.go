package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The safe-path rule (OpenSSH's safe_path, sudo's sudo_secure_path) for the dirs root writes
// in: the journal's, the state dir, the log dir, the lock's, the install's parent (where the
// staging and failed dirs go). Another local user must not be able to make root write
// through a symlink or swap what root writes, so every directory on the way to such a dir,
// symlinks followed, must be:
//
//   - owned by root or by the effective uid;
//   - an ancestor: writable by group or others only if it has the sticky bit (as /tmp: others
//     cannot rename or remove what they do not own);
//   - the dir itself: not writable by others at all, nor by its group unless the group is
//     root's or syslog (below).
//
// A symlink met on the way (/var/run -> /run) must itself be owned by root or the effective
// uid; it was found in a dir already checked, and its target is checked the same way.
//
// Group write is refused as OpenSSH does, except for the groups of the system's own log
// daemons (systemGroups): Ubuntu ships /var/log as root:syslog 0775, and refusing it would
// refuse the default journal (/var/log/cfrollback) and log_dir (/var/log) on every Ubuntu host.
//
// backup.dir is deliberately not held to this rule: a deploy user may own it and is trusted
// with the backups (docs/SECURITY.md). What root writes there (app-config checkpoints,
// database backups) is held to CheckSharedDir, which keeps only other users out.

// UntrustedDirError says why a dir root would write in is refused. Callers set Key to the
// setting the dir comes from, so the message can say what to change.
type UntrustedDirError struct {
	Path   string      // the dir root was to write in
	Dir    string      // the offending dir or symlink on the way to it (may equal Path)
	UID    uint32      // Dir's owner
	GID    uint32      // Dir's group
	Mode   fs.FileMode // Dir's mode
	Reason string      // "is writable by other users", ...
	Fix    string      // what to do
	Key    string      // the setting Path comes from, "" if none
	File   bool        // Path is a file written through links (CheckLinks), not a dir
}

func (e *UntrustedDirError) Error() string {
	var b strings.Builder
	if e.File {
		fmt.Fprintf(&b, "refusing to write %s: ", e.Path)
	} else {
		fmt.Fprintf(&b, "refusing to write in %s: ", e.Path)
	}
	if e.Dir != e.Path {
		fmt.Fprintf(&b, "%s ", e.Dir)
	} else {
		b.WriteString("it ")
	}
	fmt.Fprintf(&b, "%s (%s, owner uid %d, group gid %d); %s", e.Reason, lsMode(e.Mode), e.UID, e.GID, e.Fix)
	if e.Key != "" {
		fmt.Fprintf(&b, " or set %s to another dir", e.Key)
	}
	return b.String()
}

// ErrUntrustedDir matches every *UntrustedDirError with errors.Is.
var ErrUntrustedDir = errors.New("dir writable by other users")

// Is makes errors.Is(err, ErrUntrustedDir) true.
func (e *UntrustedDirError) Is(target error) bool { return target == ErrUntrustedDir }

// WithKey names the setting a refused dir comes from: a *UntrustedDirError in err gets Key
// (its message then says to set the key to another dir). Other errors are returned as they are.
func WithKey(err error, key string) error {
	var ue *UntrustedDirError
	if errors.As(err, &ue) && ue.Key == "" {
		ue.Key = key
	}
	return err
}

// CheckTrustedDir returns a *UntrustedDirError unless dir, which must exist, and every
// directory and symlink on the way to it are safe for root to write in (the rule above).
// Other errors (dir missing, not a directory) are returned as they are, naming the path.
func CheckTrustedDir(dir string) error {
	return checkDir(dir, true, false)
}

// CheckSharedDir is CheckTrustedDir for the dirs a deploy user may own, which root also
// writes in: backup.dir (app-config checkpoints, database backups). The deploy user is
// trusted there (docs/SECURITY.md), other users are not: owners are not checked and the
// group may write, but no dir on the way may be writable by others unless it is an ancestor
// with the sticky bit, and a symlink on the way must be owned by root or the effective uid. The archives themselves are not checked this way: what is
// read from them is held by the extraction rules, and root writes them as new files.
func CheckSharedDir(dir string) error {
	return checkDir(dir, true, true)
}

// MkdirShared is MkdirTrusted with the CheckSharedDir rule.
func MkdirShared(dir string, perm fs.FileMode) error {
	if err := checkExisting(dir, true); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	return CheckSharedDir(dir)
}

// MkdirTrusted creates dir and its missing parents with perm (os.MkdirAll) and checks it with
// CheckTrustedDir. The deepest dir that already exists is checked before anything is
// created, so nothing is created through a dir other users can write.
func MkdirTrusted(dir string, perm fs.FileMode) error {
	if err := checkExisting(dir, false); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	return CheckTrustedDir(dir)
}

// checkExisting checks the deepest existing dir of dir's path as an ancestor would be checked.
func checkExisting(dir string, shared bool) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			if d == abs {
				return checkDir(abs, true, shared)
			}
			err := checkDir(d, false, shared)
			var ue *UntrustedDirError
			if errors.As(err, &ue) {
				ue.Path = abs
			}
			return err
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if filepath.Dir(d) == d {
			return nil
		}
	}
}

const maxLinks = 40 // as the kernel's MAXSYMLINKS

// checkDir walks dir from / component by component, following symlinks, and checks each
// directory and symlink met. final says whether the last directory is the one written in
// (the strict rule) or only an ancestor.
// shared selects the CheckSharedDir rule.
func checkDir(dir string, final, shared bool) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	euid := uint32(os.Geteuid()) //nolint:gosec // a uid is a uint32 in the kernel; getuid never fails
	refuse := func(at string, st *syscall.Stat_t, mode fs.FileMode, reason, fix string) error {
		return &UntrustedDirError{Path: abs, Dir: at, UID: st.Uid, GID: st.Gid, Mode: mode, Reason: reason, Fix: fix}
	}
	ownerOK := func(st *syscall.Stat_t) bool { return shared || st.Uid == 0 || st.Uid == euid }
	const chownFix = "make it owned by root (chown root)"
	chmodFix := "make it root-owned and not writable by others (chmod o-w,g-w)"
	// the write bits an ancestor may have only with the sticky bit
	var openBits fs.FileMode = 0o022
	if shared {
		chmodFix = "make it not writable by others (chmod o-w)"
		openBits = 0o002
	}

	checkDirectory := func(at string, fi fs.FileInfo, last bool) error {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		mode := fi.Mode()
		if !ownerOK(st) {
			return refuse(at, st, mode, "is owned by another user", chownFix)
		}
		perm := mode.Perm()
		if last {
			if perm&0o002 != 0 {
				return refuse(at, st, mode, "is writable by other users", chmodFix)
			}
			if perm&0o020 != 0 && !shared && !systemGroup(st.Gid) {
				return refuse(at, st, mode, "is writable by its group", chmodFix)
			}
			return nil
		}
		open := perm & openBits
		if open == 0o020 && systemGroup(st.Gid) {
			open = 0 // Ubuntu's /var/log: root:syslog 0775
		}
		if open != 0 && mode&fs.ModeSticky == 0 {
			return refuse(at, st, mode, "is writable by other users and has no sticky bit (they could rename or replace what is in it)",
				chmodFix+", or sticky as /tmp (chmod +t)")
		}
		return nil
	}

	last, err := walkResolved(abs, false,
		func(at string, st *syscall.Stat_t, mode fs.FileMode) error {
			// Only root's own links are followed, under both rules: a link the deploy user
			// owns in backup.dir could be repointed at any dir (/root, /etc/cron.d) and root
			// would write its checkpoint there.
			return refuse(at, st, mode, "is a symbolic link owned by another user", "replace it with a root-owned link or a dir")
		},
		func(at string, fi fs.FileInfo, more bool) error {
			if !fi.IsDir() {
				return fmt.Errorf("%s: not a directory", at)
			}
			if !more {
				return nil // the last dir is checked below, with the rule for it
			}
			return checkDirectory(at, fi, false) // every dir on the way, as an ancestor
		})
	if err != nil {
		return err
	}
	// and the dir the path resolves to with the rule for it (a link to ".." may end the walk
	// on a dir met before as an ancestor)
	fi, err := os.Lstat(last)
	if err != nil {
		return err
	}
	return checkDirectory(last, fi, final)
}

// walkResolved walks abs from / one component at a time, following symlinks itself, so that
// every link and every dir a path resolves through is seen. A link owned by anyone but root
// or the effective uid is refused with badLink's error; every other component (/ included)
// is passed to visit with its Lstat info and whether components remain after it. With
// missingOK a component that does not exist ends the walk without an error (nothing further
// can be followed). It returns the real path abs resolves to.
func walkResolved(abs string, missingOK bool, badLink func(at string, st *syscall.Stat_t, mode fs.FileMode) error,
	visit func(at string, fi fs.FileInfo, more bool) error) (string, error) {
	euid := uint32(os.Geteuid()) //nolint:gosec // a uid is a uint32 in the kernel; getuid never fails
	todo := splitPath(abs)
	cur := "/"
	fi, err := os.Lstat(cur)
	if err != nil {
		return "", err
	}
	if err := visit(cur, fi, len(todo) > 0); err != nil {
		return "", err
	}
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if missingOK && errors.Is(err, fs.ErrNotExist) {
			return cur, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && st.Uid != euid {
				return "", badLink(next, st, fi.Mode())
			}
			if links++; links > maxLinks {
				return "", &fs.PathError{Op: "check", Path: abs, Err: syscall.ELOOP}
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", err
			}
			todo = append(splitPath(target), todo...)
			if filepath.IsAbs(target) {
				cur = "/"
			}
			continue
		}
		if err := visit(next, fi, len(todo) > 0); err != nil {
			return "", err
		}
		cur = next
	}
	return cur, nil
}

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// WriteFileTrusted is WriteFile for the files root keeps in its own dirs (baseline,
// monitor samples): the dir is created (0755) if missing and must pass CheckTrustedDir,
// and a symbolic link at path is refused (ErrSymlink), as OpenAppend refuses one; the
// write itself is Write's.
func WriteFileTrusted(path string, data []byte, perm fs.FileMode) error {
	if err := MkdirTrusted(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return Write(path, data, perm, WriteOptions{NoSymlink: true})
}

// ErrSymlink is returned by OpenAppend for a symbolic link at the path.
var ErrSymlink = errors.New("is a symbolic link: refused (it could point root at any file)")

// OpenAppend opens path for appending, creating it with perm, never through a symlink
// (O_NOFOLLOW: one planted at path is refused with ErrSymlink, its target untouched) and
// only if it is a regular file (checked on the descriptor; a FIFO does not block the open, and O_NONBLOCK changes
// nothing for a regular file's writes).
// The caller checks the dir (CheckTrustedDir) first.
func OpenAppend(path string, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, perm)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s %w; remove it and retry", path, ErrSymlink)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// lsMode renders a mode as ls -l does (drwxrwxrwt for /tmp), which is what an operator
// compares with; fs.FileMode's String puts the sticky bit in front (dtrwxrwxrwx).
func lsMode(m fs.FileMode) string {
	b := []byte("-rwxrwxrwx")
	switch {
	case m.IsDir():
		b[0] = 'd'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	}
	for i := 0; i < 9; i++ {
		if m&(1<<uint(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	if m&fs.ModeSticky != 0 {
		if b[9] == 'x' {
			b[9] = 't'
		} else {
			b[9] = 'T'
		}
	}
	if m&fs.ModeSetgid != 0 {
		if b[6] == 'x' {
			b[6] = 's'
		} else {
			b[6] = 'S'
		}
	}
	if m&fs.ModeSetuid != 0 {
		if b[3] == 'x' {
			b[3] = 's'
		} else {
			b[3] = 'S'
		}
	}
	return string(b)
}

// systemGroups may write a dir root writes in or below: root's group, and the group Ubuntu
// gives /var/log (syslog, whose only member is the syslog daemon). Any other group's write
// is a user's.
var systemGroups = map[string]bool{"root": true, "syslog": true}

var (
	groupMu    sync.Mutex
	groupNames = map[uint32]string{}
)

func systemGroup(gid uint32) bool {
	if gid == 0 {
		return true
	}
	groupMu.Lock()
	defer groupMu.Unlock()
	name, ok := groupNames[gid]
	if !ok {
		if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
			name = g.Name
		}
		groupNames[gid] = name
	}
	return systemGroups[name]
}

// CheckLinks returns a *UntrustedDirError if a symbolic link on the way to path (path
// included, which need not exist) is owned by a user other than root or the effective uid.
// It is the rule for root's writes inside the install dir (app config, agents), which a
// deploy user owns: its dirs are theirs to write, but root never follows a link they can
// repoint (config.json -> /etc/shadow).
func CheckLinks(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	_, err = walkResolved(abs, true,
		func(at string, st *syscall.Stat_t, mode fs.FileMode) error {
			return &UntrustedDirError{Path: abs, Dir: at, UID: st.Uid, GID: st.Gid, Mode: mode, File: true,
				Reason: "is a symbolic link owned by another user", Fix: "replace the link with the file or dir it points to, or make root own it (chown -h root)"}
		},
		func(string, fs.FileInfo, bool) error { return nil })
	return err
}
