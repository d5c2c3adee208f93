package archive

import (
	"os"

	"golang.org/x/sys/unix"
)

// spreadDirs: see setTopDir. Benchmarks turn it off to compare.
var spreadDirs = true

// fsTopDirFl is FS_TOPDIR_FL (chattr +T), which x/sys/unix does not define.
const fsTopDirFl = 0x00020000

// setTopDir marks dest as the top of a directory hierarchy (chattr +T) for
// the time of the extraction, and reports whether it did. On ext4 this
// changes where the inodes of dest's subdirectories go: each is placed like
// a directory at the root of the file system (Orlov's allocator: the block
// group with the fewest directories among those with more free inodes and
// blocks than average) instead of in its parent's group, and the files of a
// directory go to their directory's group. An extracted tree is then spread
// over fresh groups rather than packed into the group of dest's parent. That
// group is where everything else under the same parent (a temp dir, /opt)
// is created and deleted, and ext4 without a journal skips every inode freed
// in the last seconds to minutes when it allocates one (find_inode_bit,
// recently_deleted): on the test machine that scan was most of the kernel
// time of extraction (docs/BENCHMARKS.md). File systems without the flag
// (tmpfs, xfs, ...) refuse or ignore it; either way nothing else changes.
// finishDir clears the flag again, so the restored tree carries no trace.
func setTopDir(root *os.Root) bool {
	f, err := root.Open(".")
	if err != nil {
		return false
	}
	defer f.Close() //nolint:errcheck // opened read-only
	return setDirFlags(int(f.Fd()), fsTopDirFl, 0) == nil
}

// setDirFlags sets then clears inode flags (FS_IOC_GETFLAGS/SETFLAGS) on
// the directory open as fd.
func setDirFlags(fd int, set, unset uint32) error {
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return err
	}
	nflags := flags&^unset | set
	if nflags == flags {
		return nil
	}
	return unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(nflags))
}
