package standby

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
	"golang.org/x/sys/unix"
)

// BenchmarkCheck checks the seal of a 20,000-entry standby (1,000 dirs of 17 small files,
// about the 500 MB bench install's entry count) with a warm cache: the cost an emergency
// pays before it takes the standby, by the stat walk and by the read-only mount (which
// needs root; it reads every mount namespace's mountinfo, so it is slower while other
// namespaces run).
//
//	go test -run '^$' -bench Check -benchtime 20x ./internal/standby
func BenchmarkCheck(b *testing.B) {
	b.Run("walk", func(b *testing.B) { benchCheck(b, false) })
	b.Run("mounted", func(b *testing.B) { benchCheck(b, true) })
}

func benchCheck(b *testing.B, mounted bool) {
	root := b.TempDir()
	dir := filepath.Join(root, "app.standby")
	for d := 0; d < 1000; d++ {
		sub := filepath.Join(dir, "node_modules", fmt.Sprintf("pkg%04d", d), "lib")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < 17; f++ {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("file%02d.js", f)), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	archive := filepath.Join(root, "backup.tar.gz")
	if err := os.WriteFile(archive, []byte("x"), 0o600); err != nil {
		b.Fatal(err)
	}
	bk, err := BackupOf(archive)
	if err != nil {
		b.Fatal(err)
	}
	s, err := Make(context.Background(), dir, bk, -1, -1, time.Now(), "run")
	if err != nil {
		b.Fatal(err)
	}
	if mounted {
		testenv.RequireMounts(b, root)
		old := Namespaces // other tests' sandboxes would rightly refuse the mount; BenchmarkWritableWays times the full scan
		Namespaces = func() []string { return []string{"/proc/self"} }
		b.Cleanup(func() { Namespaces = old })
		if err := Arm(dir, s); err != nil {
			b.Fatal(err)
		}
	}
	if err := Write(SealPath(dir), s); err != nil {
		b.Fatal(err)
	}
	w := Want{Backup: bk, UID: -1, GID: -1}
	b.ReportMetric(float64(s.Entries), "entries")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := Check(context.Background(), dir, w)
		if err != nil {
			b.Fatal(err)
		}
		if how, why := got.Proof(); (how == ProofMount) != mounted {
			b.Fatalf("checked by %s (%s)", how, why)
		}
	}
}

// BenchmarkWritableWays times the scan of every mount namespace's mountinfo that the mount's
// proof does, with all processes of the machine (it finds ways in when other namespaces, such
// as a systemd sandbox, reach the temp dir; the time is what counts here).
func BenchmarkWritableWays(b *testing.B) {
	root := b.TempDir()
	testenv.RequireMounts(b, root)
	dir := filepath.Join(root, "t")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		b.Fatal(err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	b.ReportMetric(float64(len(procs)), "procs")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := writableWays(dir); err != nil {
			b.Fatal(err)
		}
	}
}
