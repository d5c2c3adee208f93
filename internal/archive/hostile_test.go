package archive

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type hostileCase struct {
	name string
	data func(t testing.TB) []byte // the .tar.gz file's bytes
	lim  Limits
	want error // ErrUnsafe or ErrCorrupt
}

func hostileCases() []hostileCase {
	tg := func(entries ...tEntry) func(testing.TB) []byte {
		return func(t testing.TB) []byte { return tgz(t, entries...) }
	}
	rawTgz := func(parts func() [][]byte) func(testing.TB) []byte {
		return func(t testing.TB) []byte { return gzipBytes(t, concat(parts()...)) }
	}
	valid := func(t testing.TB) []byte {
		return tgz(t, tEntry{name: "./", typ: tar.TypeDir}, tEntry{name: "./a", body: strings.Repeat("payload ", 2000)})
	}
	// validTar is an uncompressed archive with one 3000-byte file, for cutting.
	validTar := func(t testing.TB) []byte {
		// USTAR and whole seconds: no PAX headers, so the layout is fixed:
		// headers at 0 and 512, data at 1024..4024 padded to 4096, then the
		// end-of-archive marker.
		sec := testTime.Truncate(time.Second)
		return tarBytes(t, tEntry{name: "./", typ: tar.TypeDir, mtime: sec, format: tar.FormatUSTAR},
			tEntry{name: "./a", body: strings.Repeat("x", 3000), mtime: sec, format: tar.FormatUSTAR})
	}
	dir := func(name string) tEntry { return tEntry{name: name, typ: tar.TypeDir} }
	file := func(name string) tEntry { return tEntry{name: name, body: "data\n"} }
	symlink := func(name, target string) tEntry { return tEntry{name: name, typ: tar.TypeSymlink, link: target} }
	hardlink := func(name, target string) tEntry { return tEntry{name: name, typ: tar.TypeLink, link: target} }

	return []hostileCase{
		// Paths.
		{name: "absolute path", data: tg(file("/etc/cron.d/x")), want: ErrUnsafe},
		{name: "dot-dot traversal", data: tg(file("../outside/x")), want: ErrUnsafe},
		{name: "dot-dot after a dir", data: tg(dir("a/"), file("a/../../outside/x")), want: ErrUnsafe},
		{name: "dot-dot that stays inside", data: tg(dir("a/"), file("a/../b")), want: ErrUnsafe},
		{name: "bare dot-dot", data: tg(dir("..")), want: ErrUnsafe},
		{name: "root entry is a file", data: tg(tEntry{name: ".", body: "x"}), want: ErrUnsafe},
		// Symlinks.
		{name: "symlink to absolute path", data: tg(symlink("l", "/etc")), want: ErrUnsafe},
		{name: "symlink escaping relatively", data: tg(dir("d/"), symlink("d/l", "../../outside")), want: ErrUnsafe},
		{name: "symlink escaping through an earlier symlink", data: tg(dir("a/"), symlink("a/up", ".."), symlink("l", "a/up/../outside")), want: ErrUnsafe},
		{name: "symlink escaping through a later symlink", data: tg(symlink("l", "d/../../outside"), symlink("d", ".")), want: ErrUnsafe},
		{name: "symlink made to escape by a later symlink", data: tg(symlink("l", "d/../x"), symlink("d", ".")), want: ErrUnsafe},
		{name: "symlink loop", data: tg(symlink("a", "b"), symlink("b", "a")), want: ErrUnsafe},
		{name: "symlink with empty target", data: tg(symlink("l", "")), want: ErrUnsafe},
		{name: "write through symlink to dir", data: tg(dir("d/"), symlink("l", "d"), file("l/x")), want: ErrUnsafe},
		{name: "write through escaping symlink", data: tg(symlink("l", "../outside"), file("l/x")), want: ErrUnsafe},
		{name: "symlink replaced by file", data: tg(symlink("l", "x"), file("l")), want: ErrUnsafe},
		// Hard links.
		{name: "hard link to outside", data: tg(hardlink("h", "../outside/secret")), want: ErrUnsafe},
		{name: "hard link to absolute path", data: tg(hardlink("h", "/etc/passwd")), want: ErrUnsafe},
		{name: "hard link to nonexistent", data: tg(hardlink("h", "nope")), want: ErrUnsafe},
		{name: "hard link to later file", data: tg(hardlink("h", "f"), file("f")), want: ErrUnsafe},
		{name: "hard link to dir", data: tg(dir("d/"), hardlink("h", "d")), want: ErrUnsafe},
		{name: "hard link to symlink", data: tg(symlink("l", "x"), hardlink("h", "l")), want: ErrUnsafe},
		{name: "hard link through symlink", data: tg(dir("d/"), file("d/f"), symlink("l", "d"), hardlink("h", "l/f")), want: ErrUnsafe},
		// Types.
		{name: "fifo", data: tg(tEntry{name: "fifo", typ: tar.TypeFifo}), want: ErrUnsafe},
		{name: "char device", data: tg(tEntry{name: "null", typ: tar.TypeChar}), want: ErrUnsafe},
		{name: "block device", data: tg(tEntry{name: "sda", typ: tar.TypeBlock}), want: ErrUnsafe},
		{name: "unknown type", data: rawTgz(func() [][]byte { return [][]byte{rawHeader("x", 'Z', 0, false), endOfArchive()} }), want: ErrUnsafe},
		{name: "contiguous file", data: rawTgz(func() [][]byte { return [][]byte{rawHeader("x", tar.TypeCont, 0, false), endOfArchive()} }), want: ErrUnsafe},
		{name: "old GNU sparse file", data: rawTgz(func() [][]byte { return [][]byte{rawHeader("x", tar.TypeGNUSparse, 0, true), endOfArchive()} }), want: ErrUnsafe},
		{name: "PAX sparse file", data: rawTgz(func() [][]byte {
			return [][]byte{
				rawPAX([2]string{"GNU.sparse.major", "0"}, [2]string{"GNU.sparse.minor", "1"}, [2]string{"GNU.sparse.numblocks", "1"}, [2]string{"GNU.sparse.map", "0,5"},
					[2]string{"GNU.sparse.size", "5"}, [2]string{"GNU.sparse.name", "x"}),
				rawHeader("GNUSparseFile.0/x", tar.TypeReg, 5, false), pad512([]byte("hello")), endOfArchive(),
			}
		}), want: ErrUnsafe},
		{name: "PAX global header", data: tg(tEntry{name: "pax_global_header", typ: tar.TypeXGlobalHeader, pax: map[string]string{"comment": "x"}}), want: ErrUnsafe},
		// Duplicates and type changes.
		{name: "duplicate name", data: tg(file("a"), file("a")), want: ErrUnsafe},
		{name: "dot-slash duplicate", data: tg(file("./a"), file("a")), want: ErrUnsafe},
		{name: "duplicate after cleaning", data: tg(dir("d/"), file("d//f"), file("d/./f")), want: ErrUnsafe},
		{name: "dir then file", data: tg(dir("a/"), file("a")), want: ErrUnsafe},
		{name: "file then dir", data: tg(file("a"), dir("a/")), want: ErrUnsafe},
		{name: "file below a file", data: tg(file("a"), file("a/b")), want: ErrUnsafe},
		{name: "implied dir then file", data: tg(file("a/b"), file("a")), want: ErrUnsafe},
		{name: "duplicate root", data: tg(dir("./"), dir(".")), want: ErrUnsafe},
		// Names.
		{name: "NUL in name", data: rawTgz(func() [][]byte {
			// archive/tar refuses a PAX path with a NUL byte itself.
			return [][]byte{rawPAX([2]string{"path", "a\x00../../outside/x"}), rawHeader("a", tar.TypeReg, 0, false), endOfArchive()}
		}), want: ErrCorrupt},
		{name: "invalid UTF-8 name", data: tg(file("bad\xffname")), want: ErrUnsafe},
		{name: "invalid UTF-8 symlink target", data: tg(symlink("l", "bad\xfe")), want: ErrUnsafe},
		{name: "name too long", data: tg(file(strings.Repeat("n/", 2100) + "x")), want: ErrUnsafe},
		{name: "name component too long", data: tg(file(strings.Repeat("c", 256))), want: ErrUnsafe},
		{name: "name over a small limit", data: tg(file(strings.Repeat("n", 101))), lim: Limits{MaxNameLen: 100}, want: ErrUnsafe},
		{name: "symlink target too long", data: tg(symlink("l", strings.Repeat("t", 200))), lim: Limits{MaxNameLen: 100}, want: ErrUnsafe},
		// Limits.
		{name: "too many entries", data: tg(dir("./"), file("a"), file("b"), file("c")), lim: Limits{MaxEntries: 3}, want: ErrUnsafe},
		{name: "file too big", data: tg(tEntry{name: "big", body: strings.Repeat("x", 101)}), lim: Limits{MaxFileSize: 100}, want: ErrUnsafe},
		{name: "total too big", data: tg(tEntry{name: "a", body: strings.Repeat("x", 60)}, tEntry{name: "b", body: strings.Repeat("x", 60)}), lim: Limits{MaxTotalSize: 100}, want: ErrUnsafe},
		// Damage.
		{name: "truncated gzip", data: func(t testing.TB) []byte { d := valid(t); return d[:len(d)/2] }, want: ErrCorrupt},
		{name: "gzip cut before trailer", data: func(t testing.TB) []byte { d := valid(t); return d[:len(d)-8] }, want: ErrCorrupt},
		{name: "bit flip in compressed data", data: func(t testing.TB) []byte { d := valid(t); d[len(d)/2] ^= 0x10; return d }, want: ErrCorrupt},
		{name: "bad CRC", data: func(t testing.TB) []byte { d := valid(t); d[len(d)-8] ^= 0x01; return d }, want: ErrCorrupt},
		{name: "bad length", data: func(t testing.TB) []byte { d := valid(t); d[len(d)-4] ^= 0x01; return d }, want: ErrCorrupt},
		{name: "trailing garbage", data: func(t testing.TB) []byte { return append(valid(t), "garbage"...) }, want: ErrCorrupt},
		{name: "trailing zero bytes", data: func(t testing.TB) []byte { return append(valid(t), make([]byte, 512)...) }, want: ErrCorrupt},
		{name: "half a gzip member after", data: func(t testing.TB) []byte { d := valid(t); return append(d, d[:20]...) }, want: ErrCorrupt},
		{name: "data after tar end inside gzip", data: func(t testing.TB) []byte { return gzipBytes(t, append(validTar(t), "tail"...)) }, want: ErrCorrupt},
		{name: "truncated tar data", data: func(t testing.TB) []byte { return gzipBytes(t, validTar(t)[:2024]) }, want: ErrCorrupt},
		{name: "tar cut at a header boundary", data: func(t testing.TB) []byte { return gzipBytes(t, validTar(t)[:4096]) }, want: ErrCorrupt},
		{name: "bad tar header checksum", data: func(t testing.TB) []byte { d := validTar(t); d[100] ^= 1; return gzipBytes(t, d) }, want: ErrCorrupt},
		{name: "empty file", data: func(testing.TB) []byte { return nil }, want: ErrCorrupt},
		{name: "empty gzip", data: func(t testing.TB) []byte { return gzipBytes(t, nil) }, want: ErrCorrupt},
		{name: "not gzip at all", data: func(testing.TB) []byte { return []byte("#!/bin/sh\nrm -rf /\n") }, want: ErrCorrupt},
		{name: "plain tar", data: func(t testing.TB) []byte { return validTar(t) }, want: ErrCorrupt},
	}
}

func TestHostileArchives(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			outside := filepath.Join(tmp, "outside")
			must(t, os.Mkdir(outside, 0o755))
			writeTemp(t, outside, "secret", []byte("do not touch\n"))
			archivePath := writeTemp(t, tmp, "backup.tar.gz", tc.data(t))
			dest := filepath.Join(tmp, "dest")
			before := snapshot(t, tmp)

			_, err := Verify(context.Background(), archivePath, tc.lim, nil)
			checkClass(t, "Verify", err, tc.want)

			sum, err := Extract(context.Background(), archivePath, dest, ExtractOptions{Limits: tc.lim, UID: -1, GID: -1})
			checkClass(t, "Extract", err, tc.want)
			if !reflect.DeepEqual(sum, Summary{}) {
				t.Errorf("Extract returned a summary with its error: %+v", sum)
			}
			if _, err := os.Lstat(dest); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("dest still exists after a failed Extract (Lstat: %v)", err)
			}
			if after := snapshot(t, tmp); !reflect.DeepEqual(before, after) {
				t.Errorf("the temp dir changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func checkClass(t *testing.T, what string, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v; want an error matching %v", what, err, want)
	}
	other := ErrCorrupt
	if errors.Is(want, ErrCorrupt) {
		other = ErrUnsafe
	}
	if errors.Is(err, other) {
		t.Errorf("%s: %v matches %v too", what, err, other)
	}
	if errors.Is(want, ErrUnsafe) {
		var ue *UnsafeEntryError
		if !errors.As(err, &ue) || ue.Name == "" || ue.Reason == "" {
			t.Errorf("%s: %v is not an *UnsafeEntryError with a name and a reason", what, err)
		}
	}
	t.Logf("%s: %v", what, err)
}
