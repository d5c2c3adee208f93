package standby

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCheck checks the seal of a 20,000-entry standby (1,000 dirs of 19 small files,
// about the 500 MB bench install's entry count) with a warm cache: the cost an emergency
// pays per entry before it takes the standby.
//
//	go test -run '^$' -bench Check -benchtime 20x ./internal/standby
func BenchmarkCheck(b *testing.B) {
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
	if err := Write(SealPath(dir), s); err != nil {
		b.Fatal(err)
	}
	w := Want{Backup: bk, UID: -1, GID: -1}
	b.ReportMetric(float64(s.Entries), "entries")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Check(context.Background(), dir, w); err != nil {
			b.Fatal(err)
		}
	}
}
