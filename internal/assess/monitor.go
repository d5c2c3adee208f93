package assess

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cfrollback/cfrollback/internal/lock"
)

// historyKept is how many recent samples Monitor keeps in memory for the alerts and the view.
const historyKept = 2000

// Monitor is monitor's loop: a sample every Interval, appended to Store (compacted to its
// retention at the start and every 10,000 samples), judged for the --watch-for alerts. One
// monitor runs at a time: Run holds LockPath.
type Monitor struct {
	// NewSampler builds the sampler once the lock is held and the store compacted: a second
	// monitor is refused before it opens any log.
	NewSampler func() *Sampler
	Store      Store
	LockPath   string
	Interval   time.Duration
	Samples    int        // stop after this many; 0: until ctx ends
	Thresholds Thresholds // of the memory-leak alert
	Now        func() time.Time
	// Show hears every sample taken: the recent samples, the newest last, and its alerts.
	Show func(history []Sample, alerts []string)
}

// Run takes samples until ctx ends or Samples were taken. An interrupted sample is not
// kept, and an interrupted run is no error; a store that cannot be written is.
func (m *Monitor) Run(ctx context.Context) error {
	host, _ := os.Hostname()
	lk, err := lock.Acquire(m.LockPath, lock.Holder{PID: os.Getpid(), Host: host, Command: "cfrollback monitor"})
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	defer func() { _ = lk.Release() }()
	if _, err := m.Store.Compact(m.Now()); err != nil {
		return fmt.Errorf("monitor: compact %s: %w", m.Store.Path, err)
	}
	sampler := m.NewSampler()
	var history []Sample
	for n := 1; m.Samples == 0 || n <= m.Samples; n++ {
		if n > 1 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(m.Interval):
			}
		}
		s := sampler.Take(ctx)
		if ctx.Err() != nil {
			return nil // an interrupted sample is not a sample
		}
		if err := m.Store.Append(s); err != nil {
			return fmt.Errorf("monitor: %w", err)
		}
		if n%10_000 == 0 {
			if _, err := m.Store.Compact(m.Now()); err != nil {
				return fmt.Errorf("monitor: compact %s: %w", m.Store.Path, err)
			}
		}
		history = append(history, s)
		if len(history) > historyKept {
			history = history[len(history)-historyKept:]
		}
		m.Show(history, sampler.Alerts(history, s, m.Thresholds))
	}
	return nil
}

// RSSSeries is the samples of history's newest process that measured its RSS: the series a
// memory trend is fitted over.
func RSSSeries(history []Sample) []Sample {
	if len(history) == 0 {
		return nil
	}
	var out []Sample
	pid := history[len(history)-1].PID
	for _, s := range history {
		if s.PID == pid && s.RSS != nil {
			out = append(out, s)
		}
	}
	return out
}
