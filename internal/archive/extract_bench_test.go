package archive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/testenv"
	"golang.org/x/sys/unix"
)

// BenchmarkExtractVsTar times Extract against GNU tar -xzf on the same
// archive, each run in a child process under GNU time (for its peak RSS)
// into an empty directory, the variants alternating round
// by round. Run it once:
//
//	go test ./internal/archive -run '^$' -bench ExtractVsTar -benchtime 1x
//
// The tree is like an install dir: CFROLLBACK_BENCH_FILES small files
// (default 20000, node_modules-like sizes) and three large ones of
// CFROLLBACK_BENCH_LARGE_MB in all (default 60, one of them incompressible).
// CFROLLBACK_BENCH_ROUNDS (default 3) rounds; the median times and the
// highest peak RSS are reported.
// CFROLLBACK_BENCH_WRITERS overrides extractWriters in the children;
// CFROLLBACK_BENCH_ARCHIVE names an archive to reuse (or to create).
//
// Variants: extract (the pipeline), extract-nowb (the pipeline without the
// background syncfs during the extraction: writebackOn off), extract-wb16
// and extract-wb256 (a background syncfs every 16 or 256 MB instead of every
// writebackBatchBytes), extract-packed (the pipeline without spreading directories over block
// groups: spreadDirs off), extract-seq (no writer goroutines), tar, and
// tar+syncfs (tar followed by the syncfs that Extract does before it returns,
// for a like-for-like durable result). CFROLLBACK_BENCH_VARIANTS picks some,
// comma-separated, in the order given. The extract variants also report how
// long their final syncfs took.
func BenchmarkExtractVsTar(b *testing.B) {
	tarBin := testenv.RequireTool(b, "tar")
	files, largeMB, rounds := envInt(b, "CFROLLBACK_BENCH_FILES", 20000), envInt(b, "CFROLLBACK_BENCH_LARGE_MB", 60), envInt(b, "CFROLLBACK_BENCH_ROUNDS", 3)
	tmp := b.TempDir()
	archivePath := os.Getenv("CFROLLBACK_BENCH_ARCHIVE") // reused when it exists
	if archivePath == "" {
		archivePath = filepath.Join(tmp, "b.tar.gz")
	}
	var sum Summary
	if _, err := os.Stat(archivePath); err == nil {
		sum, err = Verify(context.Background(), archivePath, Limits{}, nil)
		must(b, err)
	} else {
		src := filepath.Join(tmp, "src")
		installTree(b, src, files, largeMB)
		if sum, err = Create(context.Background(), src, archivePath, CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		must(b, os.RemoveAll(src))
	}
	b.Logf("%d entries, %d files, %d MB of data, %d MB compressed", sum.Entries, sum.Files, sum.Bytes/1e6, sum.CompressedSize/1e6)

	if rounds == 0 {
		return
	}
	timeBin, _ := exec.LookPath("time") // GNU time, for the peak RSS; 0 without it
	if timeBin == "" {
		b.Log("no GNU time in PATH: peak RSS reported as 0")
	}
	self, err := os.Executable()
	must(b, err)
	child := func(writers, spread, writeback string) func(dest string) *exec.Cmd {
		return func(dest string) *exec.Cmd {
			cmd := exec.Command(self, "-test.run=^TestExtractBenchChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "CFROLLBACK_EXTRACT_CHILD="+archivePath+"\n"+dest, "CFROLLBACK_EXTRACT_CHILD_WRITERS="+writers,
				"CFROLLBACK_EXTRACT_CHILD_SPREAD="+spread, "CFROLLBACK_EXTRACT_CHILD_WRITEBACK="+writeback)
			return cmd
		}
	}
	writers := os.Getenv("CFROLLBACK_BENCH_WRITERS")
	if writers == "" {
		writers = strconv.Itoa(extractWriters)
	}
	type variant struct {
		name      string
		cmd       func(dest string) *exec.Cmd
		mkdir     bool // tar wants dest to exist, Extract wants it not to
		syncAfter bool
	}
	all := []variant{
		{"extract", child(writers, "1", ""), false, false},
		{"extract-nowb", child(writers, "1", "0"), false, false},
		{"extract-wb16", child(writers, "1", "16"), false, false},
		{"extract-wb256", child(writers, "1", "256"), false, false},
		{"extract-packed", child(writers, "0", ""), false, false},
		{"extract-seq", child("0", "1", ""), false, false},
		{"tar", func(dest string) *exec.Cmd { return exec.Command(tarBin, "-xzf", archivePath, "-C", dest) }, true, false},
		{"tar+syncfs", func(dest string) *exec.Cmd { return exec.Command(tarBin, "-xzf", archivePath, "-C", dest) }, true, true},
	}
	variants := all
	if names := os.Getenv("CFROLLBACK_BENCH_VARIANTS"); names != "" {
		variants = nil
		for _, name := range strings.Split(names, ",") {
			i := slices.IndexFunc(all, func(v variant) bool { return v.name == name })
			if i < 0 {
				b.Fatalf("CFROLLBACK_BENCH_VARIANTS: no variant %q", name)
			}
			variants = append(variants, all[i])
		}
	}
	times := make([][]float64, len(variants))
	rss := make([][]float64, len(variants))
	syncs := make([][]float64, len(variants)) // the child's own syncfs, when it reports one
	b.ResetTimer()
	for range b.N {
		for r := range rounds {
			for i, v := range variants {
				dest := filepath.Join(tmp, fmt.Sprintf("%s-%d", v.name, r))
				if v.mkdir {
					must(b, os.Mkdir(dest, 0o755))
				}
				unix.Sync() // start every run with no dirty pages from the last one
				cmd := v.cmd(dest)
				rssFile := filepath.Join(tmp, "rss")
				if timeBin != "" {
					// GNU time's %M: the peak RSS of the command alone (a
					// child's own rusage would also count this process).
					cmd.Args = append([]string{timeBin, "-f", "%M", "-o", rssFile}, cmd.Args...)
					cmd.Path = timeBin
				}
				out := &strings.Builder{}
				cmd.Stdout, cmd.Stderr = out, out
				start := time.Now()
				if err := cmd.Run(); err != nil {
					b.Fatalf("%s: %v\n%s", v.name, err, out)
				}
				if v.syncAfter {
					f, err := os.Open(dest)
					must(b, err)
					must(b, unix.Syncfs(int(f.Fd())))
					f.Close()
				}
				times[i] = append(times[i], time.Since(start).Seconds())
				if _, rest, ok := strings.Cut(out.String(), "syncfs-seconds "); ok {
					secs, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
					must(b, err)
					syncs[i] = append(syncs[i], secs)
				}
				if timeBin != "" {
					data, err := os.ReadFile(rssFile)
					must(b, err)
					kb, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
					must(b, err)
					rss[i] = append(rss[i], kb/1024)
				} else {
					rss[i] = append(rss[i], 0)
				}
				b.StopTimer()
				must(b, removeTree(dest))
				b.StartTimer()
			}
		}
	}
	b.StopTimer()
	med := func(xs []float64) float64 {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[len(s)/2]
	}
	median := map[string]float64{}
	for i, v := range variants {
		b.Logf("%-14s median %6.2fs  min %6.2fs  peak RSS %5.1f MiB  runs %.2f", v.name, med(times[i]), slices.Min(times[i]), slices.Max(rss[i]), times[i])
		if len(syncs[i]) > 0 {
			b.Logf("%-14s   of which its final syncfs: median %6.2fs  runs %.2f", "", med(syncs[i]), syncs[i])
		}
		b.ReportMetric(med(times[i]), v.name+"-s")
		b.ReportMetric(slices.Max(rss[i]), v.name+"-MiB")
		median[v.name] = med(times[i])
	}
	for _, ratio := range [][2]string{{"tar", "extract"}, {"tar+syncfs", "extract"}, {"tar", "extract-nowb"}, {"extract-nowb", "extract"}} {
		if median[ratio[0]] > 0 && median[ratio[1]] > 0 {
			b.ReportMetric(median[ratio[0]]/median[ratio[1]], ratio[0]+"/"+ratio[1])
		}
	}
	// Round by round (the runs of one round are next to each other in time,
	// so these are less at the mercy of the neighbours than the medians).
	for _, ratio := range [][2]string{{"tar", "extract"}, {"extract-nowb", "extract"}} {
		a, c := slices.IndexFunc(variants, func(v variant) bool { return v.name == ratio[0] }), slices.IndexFunc(variants, func(v variant) bool { return v.name == ratio[1] })
		if a < 0 || c < 0 {
			continue
		}
		per := make([]float64, len(times[a]))
		for r := range per {
			per[r] = times[a][r] / times[c][r]
		}
		b.Logf("%s / %s per round: %.2f (median %.2f)", ratio[0], ratio[1], per, med(per))
	}
}

// TestExtractBenchChild is BenchmarkExtractVsTar's child process; it does
// nothing unless run by it.
func TestExtractBenchChild(t *testing.T) {
	arg := os.Getenv("CFROLLBACK_EXTRACT_CHILD")
	if arg == "" {
		t.Skip("run by BenchmarkExtractVsTar only")
	}
	archivePath, dest, _ := strings.Cut(arg, "\n")
	n, err := strconv.Atoi(os.Getenv("CFROLLBACK_EXTRACT_CHILD_WRITERS"))
	must(t, err)
	extractWriters = n
	if os.Getenv("CFROLLBACK_EXTRACT_CHILD_SPREAD") == "0" {
		spreadDirs = false
	}
	switch wb := os.Getenv("CFROLLBACK_EXTRACT_CHILD_WRITEBACK"); wb {
	case "0":
		writebackOn = false
	case "":
	default: // MB between two background syncfs calls
		mb, err := strconv.Atoi(wb)
		must(t, err)
		writebackBatchBytes = int64(mb) << 20
	}
	var syncTime time.Duration // the last syncfs's: the final one
	flushFS = unix.Syncfs      // not timed: it runs in the background
	syncfs = func(fd int) error {
		start := time.Now()
		err := unix.Syncfs(fd)
		syncTime = time.Since(start)
		return err
	}
	if _, err := Extract(context.Background(), archivePath, dest, ExtractOptions{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	t.Logf("syncfs-seconds %.3f", syncTime.Seconds())
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return n
}

// installTree writes files small files in a node_modules-like layout (300
// packages, a few dirs each; sizes mostly under 4 KB, some up to 256 KB) and
// three large files of largeMB in all, one incompressible.
func installTree(b *testing.B, root string, files, largeMB int) {
	b.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	words := strings.Fields("const function return require module exports import from async await if else for while true false null undefined this new class extends")
	var sb strings.Builder
	for sb.Len() < 4<<20 {
		sb.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(8) == 0 {
			sb.WriteString(";\n")
		} else {
			sb.WriteByte(' ')
		}
	}
	corpus := sb.String()
	text := func(n int) []byte {
		off := rng.IntN(len(corpus) - n)
		return []byte(corpus[off : off+n])
	}
	write := func(rel string, data []byte) {
		p := filepath.Join(root, rel)
		must(b, os.MkdirAll(filepath.Dir(p), 0o755))
		must(b, os.WriteFile(p, data, 0o644))
	}
	large := largeMB << 20 / 3
	random := make([]byte, large)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	write("assets/blob.bin", random)
	write("dist/bundle.js", text(min(large, len(corpus)-1)))
	write("dist/bundle.js.map", []byte(strings.Repeat(corpus[:1<<20], max(large>>20, 1))))
	for i := range files {
		var size int
		switch p := rng.IntN(100); {
		case p < 70:
			size = 100 + rng.IntN(4000)
		case p < 95:
			size = 4096 + rng.IntN(28*1024)
		default:
			size = 32*1024 + rng.IntN(224*1024)
		}
		pkg := i % 300
		write(fmt.Sprintf("node_modules/pkg%03d/%s/file%05d.js", pkg, []string{"lib", "dist", "src/util"}[i%3], i), text(size))
	}
}
