package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func dirFlags(t *testing.T, dir string) (uint32, error) {
	t.Helper()
	f, err := os.Open(dir)
	must(t, err)
	defer f.Close()
	return unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
}

// TestExtractSpreadsDirsOnlyWhileExtracting: where the file system has
// inode flags (ext4), dest carries FS_TOPDIR_FL while entries are written
// and not after; the tree is the same as without the flag.
func TestExtractSpreadsDirsOnlyWhileExtracting(t *testing.T) {
	tmp := t.TempDir()
	if _, err := dirFlags(t, tmp); errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
		t.Skipf("%s has no inode flags (%v): the flag is only a hint there", tmp, err)
	}
	archivePath := writeTemp(t, tmp, "a.tar.gz", tgz(t, parallelEntries()...))
	dest := filepath.Join(tmp, "spread")
	var during []uint32
	_, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1, AfterEntry: func(n int) {
		if n == 1 || n == 200 {
			fl, err := dirFlags(t, dest)
			must(t, err)
			during = append(during, fl)
		}
	}})
	must(t, err)
	if len(during) != 2 {
		t.Fatalf("AfterEntry saw %d of the 2 samples", len(during))
	}
	for _, fl := range during {
		if fl&fsTopDirFl == 0 {
			t.Errorf("dest's flags during the extraction: %#x, want FS_TOPDIR_FL (%#x) set", fl, fsTopDirFl)
		}
	}
	fl, err := dirFlags(t, dest)
	must(t, err)
	if fl&fsTopDirFl != 0 {
		t.Errorf("dest's flags after the extraction: %#x, FS_TOPDIR_FL still set", fl)
	}

	saved := spreadDirs
	spreadDirs = false
	t.Cleanup(func() { spreadDirs = saved })
	plain := filepath.Join(tmp, "plain")
	_, err = Extract(context.Background(), archivePath, plain, ExtractOptions{UID: -1, GID: -1})
	must(t, err)
	compareTrees(t, plain, dest, compareOpts{})
}
