package fsutil

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadFileRefusesSpecialFilesWithoutBlocking(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zeroLink := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zeroLink); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, zeroLink, "/dev/zero", dir} {
		done := make(chan error, 1)
		go func() { _, err := ReadFile(p, MaxSmallFile); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: err %v, want ErrNotRegular naming the path", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: ReadFile blocked", p)
		}
		if err := RequireRegular(p); !errors.Is(err, ErrNotRegular) {
			t.Errorf("RequireRegular(%s) = %v", p, err)
		}
	}
}

func TestReadFileSizeCapAndNormalFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(p, 5); err != nil || string(b) != "12345" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	if _, err := ReadFile(p, 4); err == nil || !strings.Contains(err.Error(), "more than the 4") {
		t.Fatalf("over the cap: %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), 5); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	if err := RequireRegular(p); err != nil {
		t.Fatalf("RequireRegular of a file: %v", err)
	}
	// a few megabytes, read whole in one buffer; and a file whose fstat size (0) is not
	// its length, which must still be read to its end
	big := make([]byte, 3<<20+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	bp := filepath.Join(dir, "big")
	if err := os.WriteFile(bp, big, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(bp, MaxLargeFile); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("ReadFile of %d bytes: %d bytes, %v", len(big), len(b), err)
	}
	if _, err := ReadFile(bp, int64(len(big)-1)); err == nil {
		t.Fatal("a file over the cap by one byte was read")
	}
	want, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if b, err := ReadFile("/proc/self/limits", 1<<20); err != nil || len(b) < 100 || !bytes.Equal(b[:40], want[:40]) {
		t.Fatalf("ReadFile of a file fstat calls empty: %q, %v", b, err)
	}
}
