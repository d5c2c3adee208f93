// Command gen-hostile writes the hostile-input corpus under testdata/hostile:
// archives, gzip streams, SQLite files, settings files and backup-dir
// layouts that cfrollback must refuse with a clear error while changing
// nothing. Deterministic: the same program writes the same bytes.
//
//	go run ./scripts/gen-hostile [OUTDIR]   (default testdata/hostile)
//
// cases.json lists every case with what kind of input it is and what the
// error must say; internal/integration/hostile_test.go runs them.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Case is one hostile input.
type Case struct {
	Name string `json:"name"`
	// Kind: archive (a backup-*.tar.gz for emergency), settings (a
	// --config file), sqlite (a database for database check), backupdir
	// (a layout built by the test from Setup).
	Kind string `json:"kind"`
	File string `json:"file,omitempty"`
	// Expect is a regular expression the error output must match.
	Expect string `json:"expect"`
	// Setup, for backupdir cases, says what the newest entry is.
	Setup string `json:"setup,omitempty"`
}

var mtime = time.Date(2025, 1, 4, 14, 0, 0, 0, time.UTC)

type entry struct {
	hdr  tar.Header
	body string
}

func file(name, body string) entry {
	return entry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}, body}
}
func dir(name string) entry {
	return entry{tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}, ""}
}
func link(name, target string, typ byte) entry {
	return entry{tar.Header{Name: name, Typeflag: typ, Linkname: target, Mode: 0o777, ModTime: mtime}, ""}
}

func tarGz(entries ...entry) []byte {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, e := range entries {
		h := e.hdr
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			panic(fmt.Sprintf("%s: %v", h.Name, err))
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				panic(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return gz(tb.Bytes())
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	zw.ModTime = mtime
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}

// rawTar builds a one-entry tar by hand, for names archive/tar refuses to write.
func rawTar(name string, typ byte, body string) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", len(body)))
	copy(h[136:148], fmt.Sprintf("%011o\x00", mtime.Unix()))
	h[156] = typ
	copy(h[257:263], "ustar\x00")
	copy(h[263:265], "00")
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	var b bytes.Buffer
	b.Write(h)
	b.WriteString(body)
	if pad := len(body) % 512; pad != 0 {
		b.Write(make([]byte, 512-pad))
	}
	b.Write(make([]byte, 1024))
	return b.Bytes()
}

func main() {
	out := "testdata/hostile"
	if len(os.Args) > 1 {
		out = os.Args[1]
	}
	if err := os.RemoveAll(out); err != nil {
		panic(err)
	}
	must(os.MkdirAll(out, 0o755))
	var cases []Case
	put := func(c Case, data []byte) {
		if data != nil {
			c.File = c.Name + map[string]string{"archive": ".tar.gz", "settings": ".yaml", "sqlite": ".db"}[c.Kind]
			must(os.WriteFile(filepath.Join(out, c.File), data, 0o644))
		}
		cases = append(cases, c)
	}
	good := file("app.txt", "v1\n")
	unsafe := `escapes|outside|absolute|\.\.|not allowed|refus|unsafe|link`

	// tar entries
	put(Case{Name: "tar-absolute-path", Kind: "archive", Expect: `entry "/etc/cfrollback-hostile"`}, tarGz(good, file("/etc/cfrollback-hostile", "x")))
	put(Case{Name: "tar-dotdot", Kind: "archive", Expect: `entry "\.\./escape"`}, tarGz(good, file("../escape", "x")))
	put(Case{Name: "tar-dotdot-nested", Kind: "archive", Expect: `entry "a/\.\./\.\./escape"`}, tarGz(good, dir("a/"), file("a/../../escape", "x")))
	put(Case{Name: "tar-symlink-absolute", Kind: "archive", Expect: `entry "etc"`}, tarGz(good, link("etc", "/etc", tar.TypeSymlink)))
	put(Case{Name: "tar-symlink-escape-relative", Kind: "archive", Expect: `entry "up"`}, tarGz(good, link("up", "../../..", tar.TypeSymlink)))
	put(Case{Name: "tar-write-through-symlink", Kind: "archive", Expect: `entry "d/passwd"|entry "d"`}, tarGz(good, link("d", "/tmp", tar.TypeSymlink), file("d/passwd", "x")))
	put(Case{Name: "tar-symlink-then-dir-trick", Kind: "archive", Expect: unsafe}, tarGz(good, dir("d/"), link("l", "d/../x", tar.TypeSymlink), link("d2", ".", tar.TypeSymlink), file("d2/../../x", "x")))
	put(Case{Name: "tar-hardlink-outside", Kind: "archive", Expect: `entry "h"`}, tarGz(good, link("h", "/etc/shadow", tar.TypeLink)))
	put(Case{Name: "tar-hardlink-missing", Kind: "archive", Expect: `entry "h"`}, tarGz(good, link("h", "nothere", tar.TypeLink)))
	put(Case{Name: "tar-fifo", Kind: "archive", Expect: `entry "pipe"`}, tarGz(good, entry{tar.Header{Name: "pipe", Typeflag: tar.TypeFifo, Mode: 0o644, ModTime: mtime}, ""}))
	put(Case{Name: "tar-char-device", Kind: "archive", Expect: `entry "null"`}, tarGz(good, entry{tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666, ModTime: mtime}, ""}))
	put(Case{Name: "tar-block-device", Kind: "archive", Expect: `entry "sda"`}, tarGz(good, entry{tar.Header{Name: "sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o660, ModTime: mtime}, ""}))
	put(Case{Name: "tar-duplicate-name", Kind: "archive", Expect: `entry "app.txt"`}, tarGz(good, file("app.txt", "evil\n")))
	put(Case{Name: "tar-duplicate-dot-slash", Kind: "archive", Expect: `entry "\./app.txt"`}, tarGz(good, file("./app.txt", "evil\n")))
	put(Case{Name: "tar-dir-then-file", Kind: "archive", Expect: `entry "lib"`}, tarGz(good, dir("lib/"), file("lib", "x")))
	put(Case{Name: "tar-invalid-utf8-name", Kind: "archive", Expect: `UTF-8|utf-8|name`}, gz(rawTar("bad\xff\xfename", '0', "x")))
	put(Case{Name: "tar-long-name", Kind: "archive", Expect: `long|name`}, tarGz(good, file(strings.Repeat("a/", 2100)+"f", "x")))
	put(Case{Name: "tar-gnu-sparse", Kind: "archive", Expect: `sparse`}, gz(rawTar("sparse.bin", 'S', "")))
	put(Case{Name: "tar-unknown-type", Kind: "archive", Expect: `type|entry "weird"`}, gz(rawTar("weird", 'Z', "")))
	put(Case{Name: "tar-huge-size-header", Kind: "archive", Expect: `corrupt|truncat|unexpected EOF|large|limit`},
		func() []byte { b := rawTar("big", '0', ""); copy(b[124:136], "77777777777\x00"); return gz(fixSum(b)) }())
	// gzip streams
	valid := tarGz(good, file("lib/x.js", strings.Repeat("module.exports = 1;\n", 200)))
	put(Case{Name: "gz-truncated", Kind: "archive", Expect: `corrupt`}, valid[:len(valid)/2])
	flipped := append([]byte(nil), valid...)
	flipped[len(flipped)/2] ^= 0x40
	put(Case{Name: "gz-bit-flipped", Kind: "archive", Expect: `corrupt`}, flipped)
	put(Case{Name: "gz-trailing-junk", Kind: "archive", Expect: `corrupt`}, append(append([]byte(nil), valid...), []byte("JUNK AFTER THE STREAM")...))
	put(Case{Name: "gz-not-gzip", Kind: "archive", Expect: `corrupt`}, []byte("this is not a gzip stream at all\n"))
	put(Case{Name: "gz-empty-file", Kind: "archive", Expect: `corrupt|empty`}, []byte{})
	put(Case{Name: "gz-tar-without-end-marker", Kind: "archive", Expect: `corrupt`}, gz(rawTar("a", '0', "x")[:1024]))
	// SQLite files
	put(Case{Name: "sqlite-not-sqlite", Kind: "sqlite", Expect: `(?i)corrupt|not an? (sqlite )?database`}, []byte("SQLite format 2\x00 -- not really\n"))
	put(Case{Name: "sqlite-zero-bytes", Kind: "sqlite", Expect: `(?i)empty|corrupt|not an? (sqlite )?database`}, []byte{})
	put(Case{Name: "sqlite-random-header", Kind: "sqlite", Expect: `(?i)corrupt|not an? (sqlite )?database`}, bytes.Repeat([]byte{0xA5}, 8192))
	// settings files
	put(Case{Name: "settings-bad-yaml", Kind: "settings", Expect: `settings file`}, []byte("service: [unclosed\n"))
	put(Case{Name: "settings-wrong-type", Kind: "settings", Expect: `service.stop_timeout`}, []byte("service:\n  stop_timeout: [1, 2]\n"))
	put(Case{Name: "settings-unknown-manager", Kind: "settings", Expect: `service.manager`}, []byte("service:\n  manager: upstart\n"))
	put(Case{Name: "settings-relative-install", Kind: "settings", Expect: `install_dir`}, []byte("install_dir: opt/claude-flow\n"))
	put(Case{Name: "settings-root-install", Kind: "settings", Expect: `install_dir`}, []byte("install_dir: /\n"))
	put(Case{Name: "settings-preserve-escape", Kind: "settings", Expect: `restore.preserve`}, []byte("restore:\n  preserve: [../../etc]\n"))
	put(Case{Name: "settings-failed-dir-elsewhere", Kind: "settings", Expect: `failed_dir_pattern`}, []byte("failed_dir_pattern: /tmp/x-{ts}\n"))
	// backup-dir oddities: the newest entry is not a plain file
	for _, s := range []string{"symlink", "fifo", "directory"} {
		put(Case{Name: "backupdir-newest-is-" + s, Kind: "backupdir", Setup: s, Expect: `not a regular file`}, nil)
	}
	put(Case{Name: "backupdir-newest-is-world-writable", Kind: "backupdir", Setup: "world-writable", Expect: `world-writable`}, nil)
	b, _ := json.MarshalIndent(cases, "", "  ")
	must(os.WriteFile(filepath.Join(out, "cases.json"), append(b, '\n'), 0o644))
	fmt.Printf("gen-hostile: %d cases in %s\n", len(cases), out)
}

func fixSum(h []byte) []byte {
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h[:512] {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
