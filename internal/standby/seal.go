package standby

import (
	"bufio"
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// sealVersion is the seal file's format; another version is never trusted. Version 1 was
// JSON; version 2 was sealMagic and then the Seal in encoding/gob, which decodes the 22,200
// entries of a 500 MB install about 6x faster (BenchmarkSealDecode: 39 -> 7 ms, and 3.2 ->
// 1.7 MB), time an emergency spends before it stops the service. Version 3 writes the seal
// without its tree first and the tree after it, as a second gob value: a check that the
// read-only mount proves never decodes the tree (BenchmarkSealDecode: header only). A seal
// of another version is refused with its reason; the standby is then extracted as if there
// were none.
const sealVersion = 3

// sealMagic starts a seal file of version 3.
const sealMagic = "cfrollback-seal 3\n"

// SealPath is where the seal of the standby at dir is kept: beside it, in the same trusted
// parent, never inside the tree it vouches for.
func SealPath(dir string) string { return filepath.Clean(dir) + ".seal" }

// TempPrefix names the siblings a refresh works in (`<dir>.tmp-RUN` for the tree being
// extracted, `<dir>.old-RUN` for the standby it replaces); what a killed refresh left is
// removed by the next one.
func TempPrefix(dir string) string { return filepath.Clean(dir) + ".tmp-" }

// OldPrefix names the standby a refresh set aside before removing it.
func OldPrefix(dir string) string { return filepath.Clean(dir) + ".old-" }

// Backup is a backup file's identity: where it is, and what stat says of it. A backup file
// rewritten in place, replaced under the same name, or touched has another identity.
type Backup struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	CtimeNS int64  `json:"ctime_ns"`
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	// SHA256 is the archive's digest as the extraction read it (archive.Summary.SHA256).
	SHA256 string `json:"sha256,omitempty"`
}

// BackupOf stats the backup file at path (following no final symlink).
func BackupOf(path string) (Backup, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return Backup{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return Backup{Path: path, Size: st.Size, MtimeNS: st.Mtim.Nano(), CtimeNS: st.Ctim.Nano(), Dev: st.Dev, Ino: st.Ino}, nil
}

// sameFile reports how b differs from o as a file ("" when it does not); SHA256 is not compared.
func (b Backup) sameFile(o Backup) string {
	switch {
	case b.Path != o.Path:
		return "path"
	case b.Dev != o.Dev || b.Ino != o.Ino:
		return "inode (the file was replaced)"
	case b.Size != o.Size:
		return fmt.Sprintf("size (%d bytes, was %d)", o.Size, b.Size)
	case b.MtimeNS != o.MtimeNS:
		return "modification time"
	case b.CtimeNS != o.CtimeNS:
		return "change time (written, chmod-ed or chown-ed)"
	}
	return ""
}

// Entry is one file, dir or symlink of a standby tree as a stat walk saw it.
type Entry struct {
	Path    string `json:"p"`
	Mode    uint32 `json:"m"` // st_mode: type and permission bits
	UID     uint32 `json:"u"`
	GID     uint32 `json:"g"`
	Size    int64  `json:"s"`
	MtimeNS int64  `json:"mt"`
	CtimeNS int64  `json:"ct"`
	Ino     uint64 `json:"i"`
	Nlink   uint64 `json:"n"`
}

// Seal vouches for the standby at Dir: the extraction of Backup, owned UID:GID as an
// emergency would restore it, and exactly Tree since it was walked.
type Seal struct {
	Version int       `json:"version"`
	Dir     string    `json:"dir"`
	Dev     uint64    `json:"dev"`
	Backup  Backup    `json:"backup"`
	UID     int       `json:"uid"`
	GID     int       `json:"gid"`
	Entries int       `json:"entries"`
	Bytes   int64     `json:"bytes"`
	Created time.Time `json:"created"`
	RunID   string    `json:"run_id,omitempty"`
	Tree    []Entry   `json:"tree"`
	// MountID is the unique id (statx STATX_MNT_ID_UNIQUE) of the read-only bind mount Arm
	// put on Dir, made in the boot BootID; 0 when it has none (ArmNote says why).
	MountID uint64 `json:"mount_id,omitempty"`
	BootID  string `json:"boot_id,omitempty"`
	ArmNote string `json:"arm_note,omitempty"`

	// Root is Tree[0], the standby dir itself: in the header, so that the read-only mount's
	// proof needs no tree.
	Root Entry `json:"root"`

	proof, proofNote string       // how Check proved it (ProofMount, ProofWalk) and why not by the mount
	dec              *gob.Decoder // the tree not decoded yet (decodeSeal)
	src              *sealFile    // the file to read the tree from, not read yet (Read)
}

// Proof says how Check proved the standby unchanged (ProofMount or ProofWalk) and, for a
// walk, why the read-only mount did not prove it.
func (s *Seal) Proof() (how, whyNotMount string) { return s.proof, s.proofNote }

// Make walks the extracted tree at dir and returns its seal.
func Make(ctx context.Context, dir string, b Backup, uid, gid int, now time.Time, runID string) (*Seal, error) {
	s := &Seal{Version: sealVersion, Dir: filepath.Clean(dir), Backup: b, UID: uid, GID: gid, Created: now.UTC(), RunID: runID}
	err := walk(ctx, s.Dir, func(e Entry, dev uint64) error {
		if e.Path == "." {
			s.Dev = dev
		}
		if e.Mode&syscall.S_IFMT == syscall.S_IFREG {
			s.Bytes += e.Size
		}
		s.Tree = append(s.Tree, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.Entries = len(s.Tree)
	if s.Entries > 0 {
		s.Root = s.Tree[0]
	}
	return s, nil
}

// Write stores the seal durably (fsutil.Write: temp file, fsync, rename, fsync the dir),
// mode 0600, never through a symlink.
func Write(path string, s *Seal) error {
	b, err := encodeSeal(s)
	if err != nil {
		return err
	}
	return fsutil.Write(path, b, 0o600, fsutil.WriteOptions{NoSymlink: true})
}

// encodeSeal is a seal file's bytes: sealMagic, the seal without its tree, then the tree.
func encodeSeal(s *Seal) ([]byte, error) {
	if err := s.loadTree(); err != nil { // read, changed and written again: the whole tree
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(sealMagic)
	head := *s
	head.Tree, head.dec, head.src = nil, nil, nil // a nil slice is not sent: the header decodes without the tree
	enc := gob.NewEncoder(&b)
	if err := enc.Encode(&head); err != nil {
		return nil, err
	}
	if err := enc.Encode(s.Tree); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ErrNoStandby means there is no seal: never refreshed, dropped, or taken by an emergency.
var ErrNoStandby = errors.New("no sealed standby")

// Read loads the seal at path: its header only, read from the front of the file. The tree,
// megabytes for a big install, is read from the file again only when a check walks
// (loadTree): a check by the read-only mount, standby status and backup list need none of
// it (at 72,000 entries, reading the whole file was 30 ms of an emergency's preflight, most
// of it page faults on the buffer). The seal must be a regular file (not a symlink) owned by
// the effective user and writable by nobody else: anyone else who could write it could vouch
// for any tree.
func Read(path string) (*Seal, error) {
	f, src, err := openSeal(path, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoStandby
	}
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	s, _, err := decodeSealFrom(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", path, err)
	}
	s.src = src
	return s, nil
}

// sealFile is the seal file a header was read from, as fstat saw it: the tree is read later
// only from that same file, unchanged (a rewrite changes its ctime; a replacement its inode).
type sealFile struct {
	path                   string
	dev, ino               uint64
	size, mtimeNS, ctimeNS int64
}

// openSeal opens the seal at path for reading and checks it: a regular file, not through a
// symlink, owned by the effective user, writable by nobody else, within the size limit, and
// (want non-nil) the same unchanged file as want.
func openSeal(path string, want *sealFile) (*os.File, *sealFile, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("seal %s is a %s, not a regular file", path, fsutil.Kind(fi.Mode()))
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	got := &sealFile{path: path, dev: st.Dev, ino: st.Ino, size: st.Size,
		mtimeNS: st.Mtim.Nano(), ctimeNS: st.Ctim.Nano()}
	bad := func(format string, a ...any) (*os.File, *sealFile, error) {
		_ = f.Close()
		return nil, nil, fmt.Errorf(format, a...)
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return bad("seal %s is not a regular file", path)
	case int(st.Uid) != os.Geteuid():
		return bad("seal %s is owned by uid %d, not by uid %d who seals standbys", path, st.Uid, os.Geteuid())
	case st.Mode&0o022 != 0:
		return bad("seal %s is writable by others (%s)", path, fs.FileMode(st.Mode).Perm())
	case st.Size > fsutil.MaxLargeFile:
		return bad("seal %s: %d bytes, more than the %d this file may have", path, st.Size, int64(fsutil.MaxLargeFile))
	case want != nil && *got != *want:
		return bad("seal %s changed since its header was read", path)
	}
	return f, got, nil
}

// decodeSeal parses a seal file's bytes.
func decodeSeal(b []byte) (*Seal, error) {
	s, dec, err := decodeSealFrom(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	s.dec = dec
	return s, nil
}

// decodeSealFrom reads a seal's magic and header from r; dec then decodes its tree.
func decodeSealFrom(r io.Reader) (s *Seal, dec *gob.Decoder, err error) {
	magic := make([]byte, len(sealMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != sealMagic {
		return nil, nil, fmt.Errorf("not a seal of format version %d (an older cfrollback wrote it; 'cfrollback standby refresh' writes a new one)", sealVersion)
	}
	s = new(Seal)
	dec = gob.NewDecoder(r)
	if err := dec.Decode(s); err != nil {
		return nil, nil, fmt.Errorf("decode: %w", err)
	}
	if s.Version != sealVersion {
		return nil, nil, fmt.Errorf("format version %d, not %d", s.Version, sealVersion)
	}
	if s.Root.Path != "." || len(s.Tree) != 0 {
		return nil, nil, errors.New("no root entry, or a tree in its header")
	}
	return s, dec, nil
}

// loadTree decodes the seal's tree (the second gob value of its file) if it has not been:
// from the decoder decodeSeal left, or from the file Read read the header of, opened again
// and checked to be that same file, unchanged.
func (s *Seal) loadTree() error {
	dec := s.dec
	s.dec = nil
	if dec == nil && s.src != nil {
		src := s.src
		s.src = nil
		f, _, err := openSeal(src.path, src)
		if err != nil {
			return err
		}
		defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
		if _, dec, err = decodeSealFrom(bufio.NewReaderSize(f, 256<<10)); err != nil {
			return err
		}
	}
	if dec == nil {
		return nil // made by Make, or loaded already
	}
	if err := dec.Decode(&s.Tree); err != nil {
		return fmt.Errorf("decode its tree: %w", err)
	}
	if s.Entries != len(s.Tree) {
		return fmt.Errorf("says %d entries, lists %d", s.Entries, len(s.Tree))
	}
	if s.Tree[0] != s.Root {
		return errors.New("its root entry and its tree's first differ")
	}
	return nil
}

// Want is what an emergency is about to restore: the standby must be exactly this.
type Want struct {
	Backup Backup // as BackupOf sees the chosen backup now
	// ManifestSHA256 is the archive digest its manifest records ("" when it has none).
	ManifestSHA256 string
	UID, GID       int   // the owner an extraction would give every entry now
	MaxBytes       int64 // backup.max_size; 0: no bound
}

// MismatchError says why the standby is not the tree an emergency wants.
type MismatchError struct{ Reason string }

func (e *MismatchError) Error() string { return e.Reason }

// Check proves that the standby at dir is the extraction of w.Backup, unchanged since its
// seal was made, by one stat walk compared entry by entry. The error says why not: a
// *MismatchError for a standby that is there but not the one wanted (or changed), ErrNoStandby
// when there is none, another error when the seal could not be read.
func Check(ctx context.Context, dir string, w Want) (*Seal, error) {
	dir = filepath.Clean(dir)
	s, err := Read(SealPath(dir))
	if err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) (*Seal, error) {
		return s, &MismatchError{Reason: fmt.Sprintf(format, a...)}
	}
	if s.Dir != dir {
		return bad("the seal is for %s, not %s", s.Dir, dir)
	}
	if s.Backup.Path != w.Backup.Path {
		return bad("it holds %s, not %s, the backup this run chose", filepath.Base(s.Backup.Path), filepath.Base(w.Backup.Path))
	}
	if d := s.Backup.sameFile(w.Backup); d != "" {
		return bad("the backup file %s changed since the standby was extracted: its %s differs", filepath.Base(w.Backup.Path), d)
	}
	if w.ManifestSHA256 != "" && !strings.EqualFold(w.ManifestSHA256, s.Backup.SHA256) {
		return bad("the archive it was extracted from has sha256 %s, its manifest says %s", s.Backup.SHA256, w.ManifestSHA256)
	}
	if s.UID != w.UID || s.GID != w.GID {
		return bad("it is owned %d:%d, a restore now would give %d:%d", s.UID, s.GID, w.UID, w.GID)
	}
	if w.MaxBytes > 0 && s.Bytes > w.MaxBytes {
		return bad("it holds %d bytes, more than backup.max_size (%d)", s.Bytes, w.MaxBytes)
	}
	// The read-only mount the refresh made, still there and the only way in: nothing can
	// have written the tree since it was sealed. Otherwise the walk.
	if s.proofNote = armedProof(dir, s); s.proofNote == "" {
		s.proof = ProofMount
		return s, nil
	}
	s.proof = ProofWalk
	if err := s.loadTree(); err != nil {
		return s, fmt.Errorf("seal %s: %w", SealPath(dir), err)
	}
	// A merge of the walk (lexical order, as when sealed) with the sealed list; up to
	// maxReasons differences are named, so that a dir's changed times do not hide what
	// changed inside it.
	var reasons []string
	note := func(r string) error {
		reasons = append(reasons, r)
		if len(reasons) >= maxReasons {
			return errEnough
		}
		return nil
	}
	i := 0
	err = walk(ctx, dir, func(e Entry, dev uint64) error {
		if e.Path == "." && dev != s.Dev {
			return note(fmt.Sprintf("%s is on another device than when it was sealed", dir))
		}
		for i < len(s.Tree) && pathLess(s.Tree[i].Path, e.Path) {
			if err := note(s.Tree[i].Path + " was removed after the seal"); err != nil {
				return err
			}
			i++
		}
		if i >= len(s.Tree) || s.Tree[i].Path != e.Path {
			return note(e.Path + " was added after the seal")
		}
		want := s.Tree[i]
		i++
		if why := diff(want, e); why != "" {
			return note(why)
		}
		return nil
	})
	switch {
	case errors.Is(err, fs.ErrNotExist) && i == 0 && len(reasons) == 0:
		return bad("%s is missing (the seal is left over)", dir)
	case err != nil && !errors.Is(err, errEnough):
		return s, err
	}
	for ; i < len(s.Tree) && len(reasons) < maxReasons; i++ {
		reasons = append(reasons, s.Tree[i].Path+" was removed after the seal")
	}
	if len(reasons) > 0 {
		return bad("%s", strings.Join(reasons, "; "))
	}
	return s, nil
}

// maxReasons bounds the differences a failed check names.
const maxReasons = 4

var errEnough = errors.New("enough differences")

// pathLess orders slash paths as filepath.WalkDir visits them: a dir's entries sorted by
// name, each dir's subtree right after it.
func pathLess(a, b string) bool {
	if a == "." {
		return b != "."
	}
	if b == "." {
		return false
	}
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for k := 0; k < len(as) && k < len(bs); k++ {
		if as[k] != bs[k] {
			return as[k] < bs[k]
		}
	}
	return len(as) < len(bs)
}

// diff says how the entry on disk (got) differs from the sealed one of the same name ("" when
// it does not).
func diff(want, got Entry) string {
	switch {
	case got.Mode&syscall.S_IFMT != want.Mode&syscall.S_IFMT:
		return fmt.Sprintf("%s changed type (%s, was %s)", got.Path, typeName(got.Mode), typeName(want.Mode))
	case got.Ino != want.Ino:
		return got.Path + " was replaced (another inode)"
	case got.Mode != want.Mode:
		return fmt.Sprintf("%s changed mode (%o, was %o)", got.Path, got.Mode&0o7777, want.Mode&0o7777)
	case got.UID != want.UID || got.GID != want.GID:
		return fmt.Sprintf("%s changed owner (%d:%d, was %d:%d)", got.Path, got.UID, got.GID, want.UID, want.GID)
	case got.Size != want.Size:
		return fmt.Sprintf("%s changed size (%d bytes, was %d)", got.Path, got.Size, want.Size)
	case got.MtimeNS != want.MtimeNS:
		return got.Path + " was modified (mtime)"
	case got.Nlink != want.Nlink:
		return fmt.Sprintf("%s gained or lost a hard link (%d links, was %d)", got.Path, got.Nlink, want.Nlink)
	case got.CtimeNS != want.CtimeNS:
		return got.Path + " was changed after the seal (ctime: written, chmod-ed, chown-ed, linked or renamed)"
	}
	return ""
}

func typeName(m uint32) string {
	switch m & syscall.S_IFMT {
	case syscall.S_IFREG:
		return "file"
	case syscall.S_IFDIR:
		return "dir"
	case syscall.S_IFLNK:
		return "symlink"
	}
	return fmt.Sprintf("type %o", m&syscall.S_IFMT)
}
