package standby

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Claim is a refresh's private work dir (`<standby>.tmp-RUN`, root's, 0700): the tree is
// extracted into it without the run lock, and the standby it replaces is set aside in it.
// The refresh holds an flock on the dir for as long as it runs, so the next refresh can tell
// a work dir a killed refresh left (nobody holds it: removed) from one a refresh is still
// extracting into (held: left alone). The kernel drops the flock when the process dies.
type Claim struct {
	Dir string
	f   *os.File
}

// NewClaim creates the work dir at dir (it must not exist: each refresh has its own) and
// holds it.
func NewClaim(dir string) (*Claim, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the refresh's work dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { // the umask cannot widen it, but be exact
		_ = os.Remove(dir)
		return nil, err
	}
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		_ = os.Remove(dir)
		return nil, fmt.Errorf("hold the refresh's work dir %s: %w", dir, err)
	}
	return &Claim{Dir: dir, f: f}, nil
}

// Remove removes the work dir and everything in it, then lets it go. Nil-safe.
func (c *Claim) Remove() error {
	if c == nil || c.f == nil {
		return nil
	}
	err := os.RemoveAll(c.Dir)
	_ = c.f.Close()
	c.f = nil
	return err
}

// Sweep removes the work dir at path when no refresh holds it (a killed refresh left it);
// held reports that a refresh that is running holds it, and it was left alone.
func Sweep(path string) (held bool, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err == nil {
		defer f.Close() //nolint:errcheck // read-only; closing releases the flock taken below
		ferr := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(ferr, syscall.EWOULDBLOCK) {
			return true, nil
		}
		if ferr != nil {
			return false, fmt.Errorf("flock %s: %w", path, ferr)
		}
	}
	// Not a dir (a symlink or a file: removed as such), or a dir nobody holds.
	return false, os.RemoveAll(path)
}

// Held reports whether a running refresh holds the work dir at path.
func Held(path string) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close() //nolint:errcheck // read-only
	return errors.Is(syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB), syscall.EWOULDBLOCK)
}

// Moved is s, made by Make on a tree that was then renamed to dir: a rename changes the
// moved dir's own ctime (and nothing under it), so the root entry is taken again, after
// checking that it is the same dir (inode, type, mode, owner).
func Moved(s *Seal, dir string) error {
	if len(s.Tree) == 0 || s.Tree[0].Path != "." {
		return errors.New("the seal has no root entry")
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	root := &s.Tree[0]
	if st.Ino != root.Ino || st.Dev != s.Dev || st.Mode != root.Mode || st.Uid != root.UID || st.Gid != root.GID {
		return fmt.Errorf("%s is not the tree that was sealed (inode, device, mode or owner differs)", dir)
	}
	root.MtimeNS, root.CtimeNS, root.Nlink, root.Size = st.Mtim.Nano(), st.Ctim.Nano(), uint64(st.Nlink), st.Size
	s.Root = *root
	s.Dir = dir
	return nil
}
