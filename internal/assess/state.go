package assess

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// Baseline is what "healthy" looked like after a good deploy; assess judges
// response time against it.
type Baseline struct {
	Recorded time.Time `json:"recorded"`
	Host     string    `json:"host,omitempty"`
	Service  string    `json:"service,omitempty"`
	URL      string    `json:"url,omitempty"` // redacted
	Latency  Latency   `json:"latency"`
	// RSSBytes is the main process's RSS; 0 when its pid was not visible.
	RSSBytes uint64 `json:"rss_bytes,omitempty"`
	// ErrorRate is the fraction of the recording's requests that failed.
	ErrorRate float64 `json:"error_rate"`
	// ErrorLinesLastHour is the error log lines in the hour before; nil
	// when the log could not be read.
	ErrorLinesLastHour *int `json:"error_lines_last_hour,omitempty"`
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50MS float64 `json:"p50_ms"`
	P95MS float64 `json:"p95_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

// BaselinePath is the baseline's file in stateDir.
func BaselinePath(stateDir string) string { return filepath.Join(stateDir, "baseline.json") }

// WriteBaseline stores b durably: the file is the old baseline or the new
// one, never half of either.
func WriteBaseline(stateDir string, b Baseline) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return writeStateFile(BaselinePath(stateDir), append(data, '\n'))
}

// ReadBaseline reads the baseline; an error matching fs.ErrNotExist means
// none was recorded.
func ReadBaseline(stateDir string) (*Baseline, error) {
	data, err := fsutil.ReadFile(BaselinePath(stateDir), fsutil.MaxSmallFile)
	if err != nil {
		return nil, err
	}
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("read baseline %s: %w", BaselinePath(stateDir), err)
	}
	return &b, nil
}

// writeStateFile is fsutil.WriteFileTrusted naming state_dir in its refusal: root writes in
// state_dir, never in a dir other users can write, never through a symlink.
func writeStateFile(path string, data []byte) error {
	return fsutil.WithKey(fsutil.WriteFileTrusted(path, data, 0o644), "state_dir")
}

// Store is the monitor's sample file: JSON Lines, oldest first, bounded by
// Retention (and MaxSamples) whenever it is compacted. One monitor writes
// it at a time (the cli holds <state_dir>/monitor.lock); readers never lock.
type Store struct {
	Path       string
	Retention  time.Duration // samples older than this are dropped on Compact
	MaxSamples int           // at most this many are kept; 0 means no count limit
}

// DefaultRetention keeps a day of samples: enough for every window of the
// matrix, small enough (17k lines at 5s) to read at 3am.
const DefaultRetention = 24 * time.Hour

// StorePath is the sample store's file in stateDir.
func StorePath(stateDir string) string { return filepath.Join(stateDir, "monitor.jsonl") }

// Append writes samples at the end of the store, one write per sample so a
// crash leaves at most one torn last line, which Read skips.
func (s Store) Append(samples ...Sample) error {
	// Root appends in state_dir: never in a dir other users can write, never through a symlink.
	if err := fsutil.MkdirTrusted(filepath.Dir(s.Path), 0o755); err != nil {
		return fsutil.WithKey(err, "state_dir")
	}
	f, err := fsutil.OpenAppend(s.Path, 0o644)
	if err != nil {
		return err
	}
	for _, smp := range samples {
		b, err := json.Marshal(smp)
		if err != nil {
			_ = f.Close()
			return err
		}
		if _, err := f.Write(append(b, '\n')); err != nil {
			_ = f.Close()
			return fmt.Errorf("append to %s: %w", s.Path, err)
		}
	}
	return f.Close()
}

// Read returns every sample in the store, oldest first, and how many lines
// could not be read (torn or foreign). A missing store is no samples.
func (s Store) Read() (samples []Sample, bad int, err error) {
	f, err := os.Open(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close() //nolint:errcheck // opened read-only: nothing to lose
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var smp Sample
		if json.Unmarshal(line, &smp) != nil || smp.Time.IsZero() {
			bad++
			continue
		}
		samples = append(samples, smp)
	}
	if err := sc.Err(); err != nil {
		return samples, bad, fmt.Errorf("read %s: %w", s.Path, err)
	}
	return SortedByTime(samples), bad, nil
}

// Compact rewrites the store durably with only the samples newer than
// now-Retention (and the newest MaxSamples of those). It returns how many
// samples were kept.
func (s Store) Compact(now time.Time) (int, error) {
	samples, bad, err := s.Read()
	if err != nil {
		return 0, err
	}
	keep := samples[:0]
	for _, smp := range samples {
		if s.Retention <= 0 || smp.Time.After(now.Add(-s.Retention)) {
			keep = append(keep, smp)
		}
	}
	if s.MaxSamples > 0 && len(keep) > s.MaxSamples {
		keep = keep[len(keep)-s.MaxSamples:]
	}
	if len(keep) == len(samples) && bad == 0 {
		return len(keep), nil
	}
	var buf bytes.Buffer
	for _, smp := range keep {
		b, err := json.Marshal(smp)
		if err != nil {
			return 0, err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return len(keep), writeStateFile(s.Path, buf.Bytes())
}
