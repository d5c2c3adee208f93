package fsutil

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// trustedBase is a dir the tests may build in: t.TempDir() under /tmp (1777, sticky) is
// itself 0700 and owned by root, so it and everything below it pass until a test spoils them.
func trustedBase(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := CheckTrustedDir(dir); err != nil {
		t.Fatalf("t.TempDir() is not trusted, the tests cannot run here: %v", err)
	}
	return dir
}

// mkdir creates p with the raw mode bits (0o1777 is sticky), whatever the umask.
func mkdir(t *testing.T, p string, mode uint32) string {
	t.Helper()
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantUntrusted(t *testing.T, err error, dir string, words ...string) *UntrustedDirError {
	t.Helper()
	var ue *UntrustedDirError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUntrustedDir) {
		t.Fatalf("want *UntrustedDirError naming %s, got %v", dir, err)
	}
	if ue.Dir != dir {
		t.Fatalf("refused %s, want %s: %v", ue.Dir, dir, err)
	}
	for _, w := range append([]string{dir}, words...) {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("message does not say %q: %v", w, err)
		}
	}
	return ue
}

func TestCheckTrustedDirAcceptsTempDirs(t *testing.T) {
	base := trustedBase(t)
	sub := mkdir(t, filepath.Join(base, "a"), 0o755)
	// A sticky world-writable ancestor (as /tmp) is fine: others cannot rename our entries.
	sticky := mkdir(t, filepath.Join(base, "sticky"), 0o1777)
	inSticky := mkdir(t, filepath.Join(sticky, "mine"), 0o700)
	// A root-owned symlink on the way is followed (/var/run -> /run).
	link := filepath.Join(base, "link")
	if err := os.Symlink(sub, link); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{base, sub, inSticky, link, filepath.Join(link, ".."), "/"} {
		if err := CheckTrustedDir(d); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	// The group of a dir may write in it when it is root's group.
	rootGroup := mkdir(t, filepath.Join(base, "rootgroup"), 0o775)
	if err := os.Chown(rootGroup, 0, 0); err != nil && os.Geteuid() == 0 {
		t.Fatal(err)
	}
	if os.Getegid() == 0 {
		if err := CheckTrustedDir(rootGroup); err != nil {
			t.Errorf("%s: %v", rootGroup, err)
		}
	}
}

func TestCheckTrustedDirRefusesOthersWritableDir(t *testing.T) {
	base := trustedBase(t)
	d := mkdir(t, filepath.Join(base, "log"), 0o777)
	err := CheckTrustedDir(d)
	ue := wantUntrusted(t, err, d, "writable by other users", "drwxrwxrwx", "chmod o-w,g-w")
	if ue.Path != d {
		t.Fatalf("Path %s", ue.Path)
	}
	// Sticky does not help the dir root writes in itself.
	s := mkdir(t, filepath.Join(base, "sticky"), 0o1777)
	wantUntrusted(t, CheckTrustedDir(s), s, "writable by other users", "drwxrwxrwt")
	// Nor does group write, when the group is not root's.
	g := mkdir(t, filepath.Join(base, "group"), 0o770)
	if err := os.Chown(g, -1, 65534); err == nil {
		wantUntrusted(t, CheckTrustedDir(g), g, "writable by its group")
	}
	// WithKey says which setting to change.
	if err := WithKey(CheckTrustedDir(d), "log_dir"); !strings.Contains(err.Error(), "or set log_dir to another dir") {
		t.Fatalf("no key: %v", err)
	}
}

func TestCheckTrustedDirRefusesOthersWritableAncestor(t *testing.T) {
	base := trustedBase(t)
	open := mkdir(t, filepath.Join(base, "open"), 0o777)
	d := mkdir(t, filepath.Join(open, "state"), 0o700)
	err := CheckTrustedDir(d)
	ue := wantUntrusted(t, err, open, "no sticky bit", "refusing to write in "+d)
	if ue.Path != d {
		t.Fatalf("Path %s", ue.Path)
	}
	// group-writable alone is as bad, when the group is a user's
	grp := mkdir(t, filepath.Join(base, "grp"), 0o775)
	d2 := mkdir(t, filepath.Join(grp, "state"), 0o700)
	if err := os.Chown(grp, -1, 65534); err == nil {
		wantUntrusted(t, CheckTrustedDir(d2), grp, "no sticky bit")
	}
	// MkdirTrusted refuses before creating anything under it.
	missing := filepath.Join(open, "new", "dir")
	wantUntrusted(t, MkdirTrusted(missing, 0o700), open)
	if _, err := os.Stat(filepath.Join(open, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("MkdirTrusted created under an untrusted dir: %v", err)
	}
}

func TestCheckTrustedDirRefusesAnotherUsersDir(t *testing.T) {
	testenv.RequireRoot(t)
	base := trustedBase(t)
	theirs := mkdir(t, filepath.Join(base, "theirs"), 0o755)
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	wantUntrusted(t, CheckTrustedDir(theirs), theirs, "owned by another user", "owner uid 65534")
	below := mkdir(t, filepath.Join(theirs, "below"), 0o700)
	wantUntrusted(t, CheckTrustedDir(below), theirs, "owned by another user")

	// A symlink owned by another user is refused even when it points at a good dir.
	good := mkdir(t, filepath.Join(base, "good"), 0o700)
	link := filepath.Join(base, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	wantUntrusted(t, CheckTrustedDir(link), link, "symbolic link owned by another user")

	// A root-owned symlink into an untrusted dir: the target is checked.
	open := mkdir(t, filepath.Join(base, "open"), 0o777)
	rootLink := filepath.Join(base, "rootlink")
	if err := os.Symlink(open, rootLink); err != nil {
		t.Fatal(err)
	}
	wantUntrusted(t, CheckTrustedDir(rootLink), open, "writable by other users")
}

func TestMkdirTrustedCreatesAndChecks(t *testing.T) {
	base := trustedBase(t)
	d := filepath.Join(base, "a", "b")
	if err := MkdirTrusted(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		t.Fatalf("not created: %v", err)
	}
	if err := MkdirTrusted(d, 0o700); err != nil {
		t.Fatalf("again: %v", err)
	}
	// an existing dir with a bad mode is refused, not fixed behind the operator's back
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	wantUntrusted(t, MkdirTrusted(d, 0o700), d)
}

// A symlink planted where root appends (the journal, the human log, the monitor's samples)
// is refused and its target stays as it was.
func TestOpenAppendRefusesSymlink(t *testing.T) {
	base := trustedBase(t)
	secret := filepath.Join(base, "shadow")
	if err := os.WriteFile(secret, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"journal.jsonl", "claude-flow-rollback-20260101-000000.log"} {
		p := filepath.Join(base, name)
		if err := os.Symlink(secret, p); err != nil {
			t.Fatal(err)
		}
		f, err := OpenAppend(p, 0o600)
		if err == nil {
			f.Close()
			t.Fatalf("%s: a symlink was opened", name)
		}
		if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// a dangling one is not created through either
	dangling := filepath.Join(base, "dangling")
	target := filepath.Join(base, "created-by-root")
	if err := os.Symlink(target, dangling); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAppend(dangling, 0o600); !errors.Is(err, ErrSymlink) {
		t.Fatalf("dangling: %v", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("created through a dangling link: %v", err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "root only\n" {
		t.Fatalf("target changed: %q", b)
	}
	// a regular file is appended to
	p := filepath.Join(base, "ok.log")
	for range 2 {
		f, err := OpenAppend(p, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("x\n")
		f.Close()
	}
	if b, _ := os.ReadFile(p); string(b) != "x\nx\n" {
		t.Fatalf("content %q", b)
	}
}

func TestWriteFileTrustedRefusesUntrustedDir(t *testing.T) {
	base := trustedBase(t)
	open := mkdir(t, filepath.Join(base, "open"), 0o777)
	p := filepath.Join(open, "backups.json")
	wantUntrusted(t, WriteFileTrusted(p, []byte("{}"), 0o600), open)
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("written anyway: %v", err)
	}
	good := filepath.Join(base, "state", "backups.json")
	if err := WriteFileTrusted(good, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// backup.dir may be owned by a deploy user (trusted with the backups); other users are not.
func TestCheckSharedDir(t *testing.T) {
	testenv.RequireRoot(t)
	base := trustedBase(t)
	deploy := mkdir(t, filepath.Join(base, "backups"), 0o775)
	if err := os.Chown(deploy, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cfg := mkdir(t, filepath.Join(deploy, "config"), 0o700)
	if err := os.Chown(cfg, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	// the deploy user's own link inside its own dir
	link := filepath.Join(deploy, "cfg-link")
	if err := os.Symlink(cfg, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{deploy, cfg} {
		if err := CheckSharedDir(d); err != nil {
			t.Errorf("%s: %v", d, err)
		}
		if err := CheckTrustedDir(d); !errors.Is(err, ErrUntrustedDir) {
			t.Errorf("CheckTrustedDir(%s): %v", d, err)
		}
	}
	// but not a link it owns: it could repoint it at any dir (/root, /etc/cron.d) and root
	// would write there
	wantUntrusted(t, CheckSharedDir(link), link, "symbolic link owned by another user")
	// others-writable: the dir itself, or a non-sticky ancestor
	open := mkdir(t, filepath.Join(base, "open"), 0o777)
	wantUntrusted(t, CheckSharedDir(open), open, "writable by other users", "chmod o-w")
	below := mkdir(t, filepath.Join(open, "db"), 0o700)
	wantUntrusted(t, CheckSharedDir(below), open, "no sticky bit")
	wantUntrusted(t, MkdirShared(filepath.Join(open, "new"), 0o700), open)
	// a sticky ancestor is fine, but a symlink another user planted in it is not
	sticky := mkdir(t, filepath.Join(base, "tmp"), 0o1777)
	theirs := mkdir(t, filepath.Join(sticky, "theirs"), 0o755)
	if err := CheckSharedDir(theirs); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(sticky, "planted")
	if err := os.Symlink(theirs, planted); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(planted, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	wantUntrusted(t, CheckSharedDir(planted), planted, "symbolic link owned by another user")
	if err := MkdirShared(filepath.Join(deploy, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
}

// Ubuntu's /var/log is root:syslog 0775: the syslog group's write is accepted, as a dir root
// writes in and as an ancestor (the default journal is /var/log/cfrollback/journal.jsonl);
// another group's is not. Tested with nogroup standing in for syslog (no group is added to
// the host).
func TestCheckTrustedDirAcceptsTheSyslogGroup(t *testing.T) {
	testenv.RequireRoot(t)
	base := trustedBase(t)
	varLog := mkdir(t, filepath.Join(base, "log"), 0o775)
	if err := os.Chown(varLog, 0, 65534); err != nil {
		t.Fatal(err)
	}
	journalDir := mkdir(t, filepath.Join(varLog, "cfrollback"), 0o700)
	wantUntrusted(t, CheckTrustedDir(varLog), varLog, "writable by its group", "drwxrwxr-x", "group gid 65534")
	wantUntrusted(t, CheckTrustedDir(journalDir), varLog, "no sticky bit")

	groupMu.Lock()
	delete(groupNames, 65534)
	groupMu.Unlock()
	name := "nogroup"
	if g, err := user.LookupGroupId("65534"); err == nil {
		name = g.Name
	}
	systemGroups[name] = true
	t.Cleanup(func() {
		delete(systemGroups, name)
		groupMu.Lock()
		delete(groupNames, 65534)
		groupMu.Unlock()
	})
	for _, d := range []string{varLog, journalDir} {
		if err := CheckTrustedDir(d); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	// others' write is never accepted
	if err := syscall.Chmod(varLog, 0o777); err != nil {
		t.Fatal(err)
	}
	wantUntrusted(t, CheckTrustedDir(journalDir), varLog, "no sticky bit")
}

// A root-owned link to ".." ends the walk on a dir met before as an ancestor: that dir is
// the one written in, so it is judged with the rule for the last dir (a sticky /tmp passes
// as an ancestor, never as the dir written in).
func TestCheckTrustedDirJudgesWhereALinkToParentLeads(t *testing.T) {
	base := trustedBase(t)
	sticky := mkdir(t, filepath.Join(base, "tmp"), 0o1777)
	sub := mkdir(t, filepath.Join(sticky, "sub"), 0o755)
	up := filepath.Join(sub, "up")
	if err := os.Symlink("..", up); err != nil {
		t.Fatal(err)
	}
	if err := CheckTrustedDir(sub); err != nil {
		t.Fatalf("a root dir under a sticky one: %v", err)
	}
	wantUntrusted(t, CheckTrustedDir(up), sticky, "writable by other users")
}
