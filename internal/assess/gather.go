package assess

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/service"
)

// Gatherer reads what the decision matrix judges, now: the manager's state, the app config
// and the databases, a few requests to the health URL, the recorded baseline and monitor's
// samples.
type Gatherer struct {
	Service   service.Manager
	Databases health.DatabaseChecker // nil: no database rows
	// InstallDir holds the app's config file, checked as health-check --comprehensive does.
	InstallDir string
	// HealthURL is measured Samples times, Interval apart, each within Timeout ("" or 0
	// samples: no latency).
	HealthURL string
	Timeout   time.Duration
	Samples   int
	Interval  time.Duration
	// StateDir keeps the baseline and monitor's samples.
	StateDir string
	// Warn hears what could not be read and is judged without (never a pass: the matrix
	// says inconclusive where it needs it).
	Warn func(string)
	Now  func() time.Time
}

// Gather reads the Input. An unreadable baseline or sample store is warned about and left
// out; the service's state that cannot be asked is in Input.ServiceErr.
func (g *Gatherer) Gather(ctx context.Context) Input {
	in := Input{Now: g.Now()}
	st, err := g.Service.Status(ctx)
	if err != nil {
		in.ServiceErr = err.Error()
	} else {
		state := st.State
		if st.SubState != "" {
			state += "/" + st.SubState
		}
		in.Service = &ServiceState{Active: st.Active, State: state, CrashLoop: health.CrashLooping(st), Restarts: st.Restarts}
	}
	in.Data = append(in.Data, health.CheckAppConfig(g.InstallDir))
	if g.Databases != nil {
		in.Data = append(in.Data, g.Databases.CheckDatabases(ctx)...)
	}
	if g.HealthURL != "" && g.Samples > 0 {
		in.Latency, in.LatencyFailed, _ = health.MeasureLatency(ctx, g.HealthURL, g.Samples, g.Interval, g.Timeout)
	}
	b, err := ReadBaseline(g.StateDir)
	switch {
	case err == nil:
		in.Baseline = b
	case !errors.Is(err, fs.ErrNotExist):
		g.Warn(fmt.Sprintf("%v; judging without a baseline", err))
	}
	store := Store{Path: StorePath(g.StateDir)}
	samples, bad, err := store.Read()
	if err != nil {
		g.Warn(fmt.Sprintf("%v; judging without monitor samples", err))
	}
	if bad > 0 {
		g.Warn(fmt.Sprintf("%d lines of %s could not be read and were skipped", bad, store.Path))
	}
	in.Samples = samples
	return in
}
