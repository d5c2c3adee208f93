package archive

import (
	stdgzip "compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// benchTree writes a tree like an install dir: many small files of
// compressible text (sources, node_modules) and a few large ones, one of them
// incompressible. CFROLLBACK_BENCH_MB sets its size (default 50).
func benchTree(b *testing.B, root string) int64 {
	b.Helper()
	mb := 50
	if s := os.Getenv("CFROLLBACK_BENCH_MB"); s != "" {
		var err error
		if mb, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("const function return require module exports import from async await if else for while true false null undefined this new class extends")
	text := func(n int) []byte {
		var sb strings.Builder
		for sb.Len() < n {
			sb.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(8) == 0 {
				sb.WriteString(";\n")
			} else {
				sb.WriteByte(' ')
			}
		}
		return []byte(sb.String()[:n])
	}
	var total int64
	write := func(rel string, data []byte) {
		p := filepath.Join(root, rel)
		must(b, os.MkdirAll(filepath.Dir(p), 0o755))
		must(b, os.WriteFile(p, data, 0o644))
		total += int64(len(data))
	}
	budget := int64(mb) << 20
	large := budget * 2 / 5 // 40% in three large files, the rest in small ones
	random := make([]byte, large/3)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	write("assets/blob.bin", random)
	write("dist/bundle.js", text(int(large/3)))
	write("dist/bundle.js.map", text(int(large/3)))
	for i := 0; total < budget; i++ {
		write(fmt.Sprintf("node_modules/pkg%03d/lib/file%04d.js", i%300, i), text(1024+rng.IntN(24*1024)))
	}
	return total
}

func BenchmarkCreate(b *testing.B) {
	tmp := b.TempDir()
	src := filepath.Join(tmp, "src")
	b.SetBytes(benchTree(b, src))
	dest := filepath.Join(tmp, "b.tar.gz")
	b.ResetTimer()
	for range b.N {
		if _, err := Create(context.Background(), src, dest, CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchArchive(b *testing.B) (archivePath string, bytes int64) {
	archivePath, sum := benchArchiveSummary(b)
	return archivePath, sum.Bytes
}

func benchArchiveSummary(b *testing.B) (string, Summary) {
	b.Helper()
	tmp := b.TempDir()
	src := filepath.Join(tmp, "src")
	benchTree(b, src)
	archivePath := filepath.Join(tmp, "b.tar.gz")
	sum, err := Create(context.Background(), src, archivePath, CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	must(b, os.RemoveAll(src))
	return archivePath, sum
}

func BenchmarkExtract(b *testing.B) {
	archivePath, n := benchArchive(b)
	b.SetBytes(n)
	dir := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		dest := filepath.Join(dir, strconv.Itoa(i))
		if _, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		must(b, os.RemoveAll(dest))
		b.StartTimer()
	}
}

// BenchmarkGzipReaders is the measurement behind openGzip: Verify (gunzip,
// parse, hash, discard) and Extract with each candidate reader. Run it with
// TMPDIR on a tmpfs to see the readers rather than the disk.
func BenchmarkGzipReaders(b *testing.B) {
	archivePath, sum := benchArchiveSummary(b)
	n := sum.Bytes
	b.Logf("%d MB of files, %d MB compressed", n/1e6, sum.CompressedSize/1e6)
	readers := []struct {
		name string
		open func(io.Reader, int64) (gzipReader, error)
	}{
		{"compress-gzip", func(r io.Reader, _ int64) (gzipReader, error) { return stdgzip.NewReader(r) }},
		{"klauspost-gzip", func(r io.Reader, _ int64) (gzipReader, error) { return kgzip.NewReader(r) }},
		{"pgzip", openGzip},
	}
	saved := openGzip
	defer func() { openGzip = saved }()
	for _, r := range readers {
		b.Run(r.name, func(b *testing.B) {
			openGzip = r.open
			b.SetBytes(n)
			for range b.N {
				if _, err := Verify(context.Background(), archivePath, Limits{}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(r.name+"-extract", func(b *testing.B) {
			openGzip = r.open
			b.SetBytes(n)
			dir := b.TempDir()
			for i := range b.N {
				dest := filepath.Join(dir, strconv.Itoa(i))
				if _, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				must(b, os.RemoveAll(dest))
				b.StartTimer()
			}
		})
	}
}
