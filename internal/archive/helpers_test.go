package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// tEntry describes one entry of a test archive; zero fields get sensible
// defaults (a regular file, mode 0644 or 0755 for directories, testTime);
// mode -1 means 0000.
type tEntry struct {
	name   string
	typ    byte
	body   string
	link   string
	mode   int64
	mtime  time.Time
	format tar.Format
	pax    map[string]string
}

func tarBytes(t testing.TB, entries ...tEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		if mode < 0 {
			mode = 0 // -1 asks for mode 0000
		}
		mtime := e.mtime
		if mtime.IsZero() {
			mtime = testTime
		}
		format := e.format
		if format == tar.FormatUnknown {
			format = tar.FormatPAX
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.link, Mode: mode, ModTime: mtime, Format: format, PAXRecords: e.pax}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if typ == tar.TypeXGlobalHeader {
			hdr = &tar.Header{Typeflag: typ, PAXRecords: e.pax}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write header %q: %v", e.name, err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tgz(t testing.TB, entries ...tEntry) []byte { return gzipBytes(t, tarBytes(t, entries...)) }

func writeTemp(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// rawHeader builds a ustar header block by hand, for what archive/tar's
// writer refuses to write.
func rawHeader(name string, typ byte, size int64, gnu bool) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", testTime.Unix()))
	b[156] = typ
	if gnu {
		copy(b[257:265], "ustar  \x00")
	} else {
		copy(b[257:263], "ustar\x00")
		copy(b[263:265], "00")
	}
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// rawPAX builds a PAX extended header ('x') with records written verbatim,
// NUL bytes and all.
func rawPAX(records ...[2]string) []byte {
	var body []byte
	for _, r := range records {
		rec := " " + r[0] + "=" + r[1] + "\n"
		n := len(rec)
		for {
			l := len(strconv.Itoa(n)) + len(rec)
			if l == n {
				break
			}
			n = l
		}
		body = append(body, strconv.Itoa(n)+rec...)
	}
	out := rawHeader("PaxHeaders/x", tar.TypeXHeader, int64(len(body)), false)
	out = append(out, pad512(body)...)
	return out
}

func pad512(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

func endOfArchive() []byte { return make([]byte, 1024) }

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// snapshot records every path under dir, to prove a failed Extract left no
// trace anywhere in the temp dir, not only in dest. dir's own mtime is left
// out: creating and removing dest in it is the one change that cannot be
// avoided.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		state := fmt.Sprintf("%v %s", fi.Mode(), fi.ModTime().Format(time.RFC3339Nano))
		switch {
		case p == dir:
			state = fi.Mode().String()
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			state += " sha256:" + sha(data)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			state += " -> " + target
		}
		m[p] = state
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// treeEntry is one path of a tree as the comparisons see it.
type treeEntry struct {
	typ    string // "d", "f", "l"
	perm   fs.FileMode
	size   int64
	sha    string
	target string
	mtime  time.Time
	ino    uint64
	uid    uint32
	gid    uint32
}

func readTree(t testing.TB, root string) map[string]treeEntry {
	t.Helper()
	m := map[string]treeEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := treeEntry{perm: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), mtime: fi.ModTime(), ino: st.Ino, uid: st.Uid, gid: st.Gid}
		switch {
		case fi.IsDir():
			e.typ = "d"
		case fi.Mode().IsRegular():
			e.typ, e.size = "f", fi.Size()
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.sha = sha(data)
		case fi.Mode()&fs.ModeSymlink != 0:
			e.typ, e.perm = "l", 0
			e.target, _ = os.Readlink(p)
		default:
			e.typ = "other"
		}
		m[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type compareOpts struct {
	secondsOnly  bool // the archive format keeps whole seconds only
	dropSetID    bool // the extractor drops setuid, setgid and sticky
	skipRootTime bool // the extractor leaves the mtime of "." alone
}

// compareTrees checks b against a: same paths, types, permissions, sizes,
// contents, symlink targets and mtimes, and the same paths sharing inodes.
func compareTrees(t testing.TB, a, b string, o compareOpts) {
	t.Helper()
	ta, tb := readTree(t, a), readTree(t, b)
	var names []string
	for n := range ta {
		names = append(names, n)
	}
	for n := range tb {
		if _, ok := ta[n]; !ok {
			t.Errorf("%s: extra path in %s", n, b)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		ea, eb := ta[n], tb[n]
		if _, ok := tb[n]; !ok {
			t.Errorf("%s: missing from %s", n, b)
			continue
		}
		wantPerm := ea.perm
		if o.dropSetID {
			wantPerm &= fs.ModePerm
		}
		if ea.typ != eb.typ || wantPerm != eb.perm || ea.size != eb.size || ea.sha != eb.sha || ea.target != eb.target {
			t.Errorf("%s: got %s %v size %d sha %.8s -> %q; want %s %v size %d sha %.8s -> %q",
				n, eb.typ, eb.perm, eb.size, eb.sha, eb.target, ea.typ, wantPerm, ea.size, ea.sha, ea.target)
		}
		if n == "." && o.skipRootTime {
			continue
		}
		wm, gm := ea.mtime, eb.mtime
		if o.secondsOnly {
			wm, gm = wm.Truncate(time.Second), gm.Truncate(time.Second)
		}
		if !wm.Equal(gm) {
			t.Errorf("%s: mtime %v, want %v", n, gm, wm)
		}
	}
	// Hard links: paths that share an inode in a must share one in b.
	groups := map[uint64][]string{}
	for _, n := range names {
		if ta[n].typ == "f" {
			groups[ta[n].ino] = append(groups[ta[n].ino], n)
		}
	}
	for _, g := range groups {
		for _, n := range g[1:] {
			if tb[n].ino != tb[g[0]].ino {
				t.Errorf("%s and %s are hard links in the source but not after extraction", g[0], n)
			}
		}
	}
	for _, n := range names {
		if tb[n].typ != "f" {
			continue
		}
		for _, m := range names {
			if m != n && tb[m].typ == "f" && tb[m].ino == tb[n].ino && ta[m].ino != ta[n].ino {
				t.Errorf("%s and %s share an inode after extraction but not in the source", n, m)
			}
		}
	}
}

// makeRichTree builds a tree with everything a faithful restore must bring
// back: long names, symlinks, hard links, empty dirs, odd modes, unicode and
// nanosecond mtimes.
func makeRichTree(t testing.TB, root string, withSetID bool) {
	t.Helper()
	long100 := strings.Repeat("l", 120)
	deep := filepath.Join(strings.Repeat("d", 100), strings.Repeat("e", 100))
	files := []struct {
		name string
		body string
		mode fs.FileMode
	}{
		{"hello.txt", "hello\n", 0o644},
		{"secret.conf", "password=hunter2\n", 0o640},
		{"bin/run.sh", "#!/bin/sh\necho run\n", 0o755},
		{"empty-file", "", 0o600},
		{"héllo wörld ☃.txt", "unicode\n", 0o644},
		{long100 + ".txt", "long name over 100\n", 0o644},
		{filepath.Join(deep, strings.Repeat("f", 100)+".txt"), "path over 255\n", 0o644},
		{"data/hard-a.txt", "shared inode\n", 0o644},
		{"readonly/inside.txt", "inside a 0555 dir\n", 0o444},
		{"big.bin", strings.Repeat("0123456789abcdef", 70000), 0o644},
	}
	mkdir := func(p string, mode fs.FileMode) {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		mkdir(filepath.Dir(f.name), 0o755)
		p := filepath.Join(root, f.name)
		if err := os.WriteFile(p, []byte(f.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Link(filepath.Join(root, "data/hard-a.txt"), filepath.Join(root, "data/hard-b.txt")))
	must(t, os.Link(filepath.Join(root, "data/hard-a.txt"), filepath.Join(root, "hard-c.txt")))
	mkdir("empty-dir", 0o755)
	mkdir("data/empty-nested/deeper", 0o755)
	must(t, os.Symlink("run.sh", filepath.Join(root, "bin/run-link")))
	must(t, os.Symlink("bin", filepath.Join(root, "bin-link")))
	must(t, os.Symlink("../hello.txt", filepath.Join(root, "data/up-link")))
	must(t, os.Symlink("does-not-exist", filepath.Join(root, "dangling")))
	must(t, os.Symlink(long100+".txt", filepath.Join(root, "long-target-link")))
	if withSetID {
		p := filepath.Join(root, "bin/setuid-tool")
		must(t, os.WriteFile(p, []byte("suid\n"), 0o600))
		must(t, os.Chmod(p, fs.ModeSetuid|fs.ModeSetgid|0o755))
		mkdir("shared", 0o755)
		must(t, os.Chmod(filepath.Join(root, "shared"), fs.ModeSetgid|fs.ModeSticky|0o775))
	}
	must(t, os.Chmod(filepath.Join(root, "readonly"), 0o555))
	must(t, os.Chmod(filepath.Join(root, "empty-dir"), 0o700))
	must(t, os.Chmod(root, 0o750))
	setTimes(t, root)
}

// setTimes gives every path its own nanosecond mtime, deepest first so that
// directories keep theirs.
func setTimes(t testing.TB, root string) {
	t.Helper()
	var paths []string
	must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for i, p := range paths {
		mt := testTime.Add(time.Duration(i)*time.Hour + time.Duration(i)*time.Microsecond)
		ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
