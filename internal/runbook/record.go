package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// AppendLocked appends one record under the lock, so it never interleaves
// with a running rollback's records. A rollback in progress is waited for
// only briefly: the caller reports the record as not written.
func AppendLocked(ctx context.Context, cfg settings.Config, command, runID, event string, data any) error {
	var lk *lock.Lock
	var err error
	for i := range 10 {
		host, _ := os.Hostname()
		if lk, err = lock.Acquire(cfg.Lock, lock.Holder{PID: os.Getpid(), Host: host, Command: command, RunID: runID}); err == nil {
			break
		}
		if !errors.Is(err, lock.ErrLocked) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waiting for the lock)", context.Cause(ctx))
		case <-time.After(time.Duration(i+1) * 50 * time.Millisecond):
		}
	}
	if err != nil {
		return err
	}
	defer func() { _ = lk.Release() }()
	j, err := journal.Open(cfg.Journal)
	if err != nil {
		return fmt.Errorf("open journal %s: %w", cfg.Journal, err)
	}
	defer j.Close() //nolint:errcheck // every Append is fsynced; Close only releases the descriptor
	_, err = j.Append(runID, event, "", data)
	return err
}
