package assess

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/lock"
)

func testMonitor(t *testing.T, dir string, samples int) (*Monitor, *[]int) {
	t.Helper()
	var shown []int
	m := &Monitor{
		NewSampler: func() *Sampler { return &Sampler{Service: downService{}, Now: time.Now} },
		Store:      Store{Path: StorePath(dir), Retention: time.Hour, MaxSamples: 100},
		LockPath:   filepath.Join(dir, "monitor.lock"), Interval: time.Millisecond, Samples: samples,
		Thresholds: DefaultThresholds, Now: time.Now,
		Show: func(h []Sample, _ []string) { shown = append(shown, len(h)) },
	}
	return m, &shown
}

func TestMonitorKeepsEverySample(t *testing.T) {
	dir := t.TempDir()
	m, shown := testMonitor(t, dir, 3)
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(*shown) != 3 || (*shown)[2] != 3 {
		t.Errorf("Show heard histories of %v, want 1 2 3", *shown)
	}
	got, bad, err := m.Store.Read()
	if err != nil || bad != 0 || len(got) != 3 {
		t.Errorf("store: %d samples, %d bad, %v", len(got), bad, err)
	}
}

// One monitor at a time: a second is refused with the lock's error, before it builds a
// sampler.
func TestMonitorOneAtATime(t *testing.T) {
	dir := t.TempDir()
	held, err := lock.Acquire(filepath.Join(dir, "monitor.lock"), lock.Holder{PID: os.Getpid(), Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Release() }()
	m, shown := testMonitor(t, dir, 1)
	built := false
	m.NewSampler = func() *Sampler { built = true; return nil }
	if err := m.Run(t.Context()); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("second monitor: %v, want ErrLocked", err)
	}
	if built || len(*shown) != 0 {
		t.Errorf("a refused monitor built its sampler (%v) or showed samples (%v)", built, *shown)
	}
}

// An interrupted run is no error and keeps no half-taken sample.
func TestMonitorInterrupted(t *testing.T) {
	dir := t.TempDir()
	m, _ := testMonitor(t, dir, 0)
	ctx, cancel := context.WithCancel(t.Context())
	m.Show = func(h []Sample, _ []string) {
		if len(h) == 2 {
			cancel()
		}
	}
	if err := m.Run(ctx); err != nil {
		t.Fatalf("interrupted monitor: %v", err)
	}
	got, _, _ := m.Store.Read()
	if len(got) != 2 {
		t.Errorf("%d samples kept, want the 2 taken before the interrupt", len(got))
	}
}

func TestRSSSeries(t *testing.T) {
	rss := uint64(1)
	h := []Sample{{PID: 1, RSS: &rss}, {PID: 2, RSS: &rss}, {PID: 2}, {PID: 2, RSS: &rss}}
	if got := RSSSeries(h); len(got) != 2 {
		t.Errorf("RSSSeries: %d samples, want pid 2's two with an RSS", len(got))
	}
	if RSSSeries(nil) != nil {
		t.Error("RSSSeries(nil) is not nil")
	}
}
