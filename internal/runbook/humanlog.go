package runbook

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// humanLog is the seed's /var/log/claude-flow-rollback-<ts>.log: plain lines
// for a person reading the incident afterwards. The journal is the record
// of truth; failing to write this log only warns.
type humanLog struct {
	path string
	f    *os.File
}

func openHumanLog(cfg settings.Config, start time.Time, warn func(Event)) *humanLog {
	name := filepath.Base(filepath.Clean(cfg.InstallDir)) + "-rollback-" + start.Format(settings.TimestampLayout) + ".log"
	p := filepath.Join(cfg.LogDir, name)
	// Root appends here: never in a dir other users can write, never through a symlink.
	if err := fsutil.MkdirTrusted(cfg.LogDir, 0o755); err != nil {
		warn(Event{Kind: "warn", Message: fmt.Sprintf("human log %s not written: %v", p, fsutil.WithKey(err, "log_dir"))})
		return nil
	}
	f, err := fsutil.OpenAppend(p, 0o640)
	if err != nil {
		warn(Event{Kind: "warn", Message: fmt.Sprintf("human log %s not written: %v", p, err)})
		return nil
	}
	return &humanLog{path: p, f: f}
}

func (h *humanLog) printf(format string, a ...any) {
	if h == nil {
		return
	}
	fmt.Fprintf(h.f, "%s %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, a...))
}

func (h *humanLog) event(e Event) {
	if h == nil {
		return
	}
	switch e.Kind {
	case "step_start":
		h.printf("step %s: started", e.Step)
	case "step_done":
		h.printf("step %s: done in %s %s", e.Step, e.Duration.Round(time.Millisecond), e.Message)
	case "step_failed":
		h.printf("step %s: FAILED after %s: %s", e.Step, e.Duration.Round(time.Millisecond), e.Message)
	default:
		h.printf("%s: %s", e.Kind, e.Message)
	}
}

func (h *humanLog) close() {
	if h == nil {
		return
	}
	_ = h.f.Sync()
	_ = h.f.Close()
}
