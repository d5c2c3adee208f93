package archive

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"unicode/utf8"
)

// Limits bounds what an archive may contain. A zero or negative field means
// its default, so Limits{} is the same as DefaultLimits().
type Limits struct {
	MaxEntries   int   // entries of any type, the root entry included; default 1_000_000
	MaxFileSize  int64 // bytes of one regular file; default 16 GiB
	MaxTotalSize int64 // bytes of all regular files together; default 256 GiB
	MaxNameLen   int   // bytes of an entry name or link target; default 4096 (PATH_MAX)
}

// DefaultLimits returns limits far above any install dir cfrollback is meant
// for, yet low enough that a hostile archive cannot fill a disk or memory.
func DefaultLimits() Limits {
	return Limits{
		MaxEntries:   1_000_000,
		MaxFileSize:  16 << 30,
		MaxTotalSize: 256 << 30,
		MaxNameLen:   4096,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = d.MaxTotalSize
	}
	if l.MaxNameLen <= 0 {
		l.MaxNameLen = d.MaxNameLen
	}
	return l
}

// maxComponentLen is Linux's NAME_MAX.
const maxComponentLen = 255

// maxSymlinkHops matches Linux's MAXSYMLINKS: a chain the kernel would refuse
// to follow is refused here too, rather than searched forever.
const maxSymlinkHops = 40

type kind uint8

const (
	kindImplicitDir kind = iota // a parent that no entry named (yet)
	kindDir
	kindFile // a regular file, whether stored with data or as a hard link
	kindSymlink
	kindHardlink // only in entry.kind; the tree records hard links as kindFile
)

type node struct {
	kind   kind
	target string // symlink target as stored
}

// entry is a header that passed the rules, in the form the writers need.
type entry struct {
	hdr      *tar.Header
	name     string      // cleaned, relative, "." for the root
	kind     kind        // never kindImplicitDir
	linkname string      // symlink: target as stored; hard link: cleaned target entry
	mode     fs.FileMode // permission bits only: setuid, setgid and sticky are dropped
	newDirs  []string    // parents that do not exist yet, outermost first
}

// checker applies the safety rules to a stream of headers. It keeps a model of
// the tree built so far so that Verify, which writes nothing, refuses exactly
// what Extract refuses, and so that Create can refuse to write an archive that
// could not be restored.
type checker struct {
	lim     Limits
	tree    map[string]*node // cleaned name -> node; "." is the root
	links   []string         // symlink names, for the final whole-tree check
	entries int
	total   int64
}

func newChecker(lim Limits) *checker {
	return &checker{
		lim:  lim.withDefaults(),
		tree: map[string]*node{".": {kind: kindImplicitDir}},
	}
}

// check decides whether hdr may be restored and, if so, records it in the
// model. Limits are checked from the header alone, before any data is read.
func (c *checker) check(hdr *tar.Header) (entry, error) {
	raw := hdr.Name
	c.entries++
	if c.entries > c.lim.MaxEntries {
		return entry{}, unsafeEntry(raw, "is over the limit of %d entries", c.lim.MaxEntries)
	}
	e := entry{hdr: hdr, mode: fs.FileMode(hdr.Mode) & fs.ModePerm} //nolint:gosec // only the permission bits are kept (& fs.ModePerm); the high bits of an untrusted mode are dropped either way
	switch hdr.Typeflag {
	case tar.TypeReg:
		e.kind = kindFile
		if isPAXSparse(hdr) {
			return entry{}, unsafeEntry(raw, "is a sparse file, which cfrollback does not restore")
		}
	case tar.TypeDir:
		e.kind = kindDir
	case tar.TypeSymlink:
		e.kind = kindSymlink
	case tar.TypeLink:
		e.kind = kindHardlink
	default:
		return entry{}, unsafeEntry(raw, "is %s, which cfrollback does not restore", describeType(hdr.Typeflag))
	}

	name, err := c.cleanName(raw, raw, "name")
	if err != nil {
		return entry{}, err
	}
	if name == "." && e.kind != kindDir {
		return entry{}, unsafeEntry(raw, "names the archive root but is not a directory")
	}
	e.name = name

	if e.kind == kindFile {
		if hdr.Size > c.lim.MaxFileSize {
			return entry{}, unsafeEntry(raw, "is %d bytes, over the limit of %d bytes per file", hdr.Size, c.lim.MaxFileSize)
		}
		c.total += hdr.Size
		if c.total > c.lim.MaxTotalSize {
			return entry{}, unsafeEntry(raw, "brings the archive to %d bytes, over the limit of %d bytes", c.total, c.lim.MaxTotalSize)
		}
	}

	// Every parent must be a directory (named or implied). A parent that is a
	// symlink is the classic way to make a later entry land outside the root.
	for i := range len(name) {
		if name[i] != '/' {
			continue
		}
		p := name[:i]
		switch n := c.tree[p]; {
		case n == nil:
			e.newDirs = append(e.newDirs, p)
		case n.kind == kindSymlink:
			return entry{}, unsafeEntry(raw, "would be written through the symlink %q", p)
		case n.kind == kindFile:
			return entry{}, unsafeEntry(raw, "is below %q, which is not a directory", p)
		}
	}

	// One name, one entry: a second entry would overwrite the first or change
	// its type, and tools disagree on which one wins.
	if n := c.tree[name]; n != nil && !(n.kind == kindImplicitDir && e.kind == kindDir) {
		return entry{}, unsafeEntry(raw, "appears twice in the archive (an earlier entry has the same name)")
	}

	switch e.kind {
	case kindHardlink:
		target, err := c.cleanName(raw, hdr.Linkname, "hard link target")
		if err != nil {
			return entry{}, err
		}
		if n := c.tree[target]; n == nil || n.kind != kindFile {
			return entry{}, unsafeEntry(raw, "is a hard link to %q, which is not an earlier regular file in the archive", hdr.Linkname)
		}
		e.linkname = target
	case kindSymlink:
		if err := c.checkSymlinkTarget(raw, name, hdr.Linkname); err != nil {
			return entry{}, err
		}
		e.linkname = hdr.Linkname
	}

	for _, p := range e.newDirs {
		c.tree[p] = &node{kind: kindImplicitDir}
	}
	switch e.kind {
	case kindDir:
		c.tree[name] = &node{kind: kindDir}
	case kindFile, kindHardlink:
		c.tree[name] = &node{kind: kindFile}
	case kindSymlink:
		c.tree[name] = &node{kind: kindSymlink, target: e.linkname}
		c.links = append(c.links, name)
	}
	return e, nil
}

// finish re-checks every symlink against the whole tree. At entry time a
// symlink is resolved against earlier entries only; a later symlink can change
// where it points (with "d" absent, "l -> d/../x" stays inside, but once
// "d -> ." arrives, l resolves to ../x). Only the complete tree is what the
// service will follow after the swap.
func (c *checker) finish() error {
	for _, name := range c.links {
		n := c.tree[name]
		if reason := c.resolve(path.Dir(name), n.target); reason != "" {
			return unsafeEntry(name, "is a symlink to %q, which %s", n.target, reason)
		}
	}
	return nil
}

// cleanName applies the name rules to s (an entry name or a hard link target)
// and returns it cleaned and relative, "." for the root. entryName is the
// entry the error is about.
func (c *checker) cleanName(entryName, s, what string) (string, error) {
	switch {
	case s == "":
		return "", unsafeEntry(entryName, "has an empty %s", what)
	case len(s) > c.lim.MaxNameLen:
		return "", unsafeEntry(entryName, "has a %s of %d bytes, over the limit of %d", what, len(s), c.lim.MaxNameLen)
	case strings.IndexByte(s, 0) >= 0:
		return "", unsafeEntry(entryName, "has a NUL byte in its %s", what)
	case !utf8.ValidString(s):
		return "", unsafeEntry(entryName, "has a %s that is not valid UTF-8", what)
	case strings.HasPrefix(s, "/"):
		return "", unsafeEntry(entryName, "has an absolute %s %q", what, s)
	}
	cleaned := path.Clean(s)
	for _, part := range strings.Split(cleaned, "/") {
		// NAME_MAX: no Linux filesystem can create a longer component, so
		// Verify says no now rather than Extract failing later.
		if len(part) > maxComponentLen {
			return "", unsafeEntry(entryName, "has a %s with a component of %d bytes, over the limit of %d", what, len(part), maxComponentLen)
		}
	}
	if cleaned == ".." || strings.HasPrefix(cleaned, "../") {
		if s == entryName {
			return "", unsafeEntry(entryName, "escapes the archive root")
		}
		return "", unsafeEntry(entryName, "has a %s %q that escapes the archive root", what, s)
	}
	// "a/../b" stays inside once cleaned, but no tar we accept writes it, and
	// what ".." means on disk depends on whether "a" is a symlink: refuse
	// rather than reason about it.
	for _, part := range strings.Split(s, "/") {
		if part == ".." {
			return "", unsafeEntry(entryName, "has a \"..\" component in its %s %q", what, s)
		}
	}
	return cleaned, nil
}

func (c *checker) checkSymlinkTarget(raw, name, target string) error {
	switch {
	case target == "":
		return unsafeEntry(raw, "is a symlink with an empty target")
	case len(target) > c.lim.MaxNameLen:
		return unsafeEntry(raw, "is a symlink whose target is %d bytes, over the limit of %d", len(target), c.lim.MaxNameLen)
	case strings.IndexByte(target, 0) >= 0:
		return unsafeEntry(raw, "is a symlink whose target has a NUL byte")
	case !utf8.ValidString(target):
		return unsafeEntry(raw, "is a symlink whose target is not valid UTF-8")
	case strings.HasPrefix(target, "/"):
		return unsafeEntry(raw, "is a symlink to the absolute path %q", target)
	}
	if reason := c.resolve(path.Dir(name), target); reason != "" {
		return unsafeEntry(raw, "is a symlink to %q, which %s", target, reason)
	}
	return nil
}

// resolve follows target from the directory dir the way the kernel would on
// the restored tree, substituting symlinks known to the model, and returns
// why it is unsafe ("" when it stays inside the root). Components that do not
// exist are taken literally, which can only make the check stricter.
func (c *checker) resolve(dir, target string) string {
	var stack []string
	if dir != "." {
		stack = strings.Split(dir, "/")
	}
	hops := 0
	_, reason := c.walk(stack, target, &hops)
	return reason
}

func (c *checker) walk(stack []string, target string, hops *int) ([]string, string) {
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return nil, "escapes the archive root"
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, part)
		n := c.tree[strings.Join(stack, "/")]
		if n == nil || n.kind != kindSymlink {
			continue
		}
		*hops++
		if *hops > maxSymlinkHops {
			return nil, "goes through more than 40 symlinks (a loop?)"
		}
		if strings.HasPrefix(n.target, "/") {
			return nil, "goes through a symlink to an absolute path"
		}
		var reason string
		stack, reason = c.walk(stack[:len(stack)-1], n.target, hops)
		if reason != "" {
			return nil, reason
		}
	}
	return stack, ""
}

// isPAXSparse reports a GNU sparse file stored in PAX form, which archive/tar
// presents as an ordinary TypeReg entry.
func isPAXSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func describeType(t byte) string {
	switch t {
	case tar.TypeChar:
		return "a character device"
	case tar.TypeBlock:
		return "a block device"
	case tar.TypeFifo:
		return "a FIFO"
	case tar.TypeGNUSparse:
		return "a sparse file"
	case tar.TypeCont:
		return "a contiguous file (type '7')"
	case tar.TypeXGlobalHeader:
		return "a PAX global header"
	}
	if t >= ' ' && t <= '~' {
		return fmt.Sprintf("of unknown type '%c'", t)
	}
	return fmt.Sprintf("of unknown type 0x%02x", t)
}
