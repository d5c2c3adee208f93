package runbook

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/service"
)

// informedManager is a fakeManager that is service.Informed: it records what the run passes
// as seen to its stop and start.
type informedManager struct {
	*fakeManager
	stopSeen, startSeen []service.Seen
	confirmed           service.Seen // what its stop returns
}

var _ service.Informed = (*informedManager)(nil)

func (m *informedManager) StopInformed(ctx context.Context, seen service.Seen) (service.Seen, error) {
	m.stopSeen = append(m.stopSeen, seen)
	if err := m.Stop(ctx); err != nil {
		return service.Seen{}, err
	}
	m.confirmed = service.Seen{Status: service.Status{Manager: "command", Exists: true, State: "inactive"}, At: time.Now()}
	return m.confirmed, nil
}

func (m *informedManager) StartInformed(ctx context.Context, seen service.Seen) error {
	m.startSeen = append(m.startSeen, seen)
	return m.Start(ctx)
}

// The manager's own checks before its stop and start commands are spared by what the run
// saw: preflight's status goes to the stop, the stop's confirmation to the start.
func TestEmergencyPassesWhatItSawToTheStopAndStart(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken"})
	m := &informedManager{fakeManager: e.m}
	begin := time.Now()
	res, err := Emergency(context.Background(), Options{Config: e.cfg}, Deps{Service: m})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("emergency: %v (%+v)", err, res)
	}
	if len(m.stopSeen) != 1 || !m.stopSeen[0].Status.Active || !m.stopSeen[0].Status.Exists || m.stopSeen[0].At.Before(begin) {
		t.Errorf("the stop was given %+v, want preflight's status (active, read after %v)", m.stopSeen, begin)
	}
	if len(m.startSeen) != 1 || m.startSeen[0] != m.confirmed {
		t.Errorf("the start was given %+v, want the stop's confirmation %+v", m.startSeen, m.confirmed)
	}
}

// A start that does not follow this run's own stop through the file steps knows nothing:
// here the stop failed, and the old install is started again.
func TestEmergencyStartAfterAFailedStopKnowsNothing(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken"})
	e.m.stopErr = errors.New("stop command: exit status 1")
	m := &informedManager{fakeManager: e.m}
	if _, err := Emergency(context.Background(), Options{Config: e.cfg}, Deps{Service: m}); !errors.Is(err, ErrAfterStop) {
		t.Fatalf("err = %v, want a failure after the stop", err)
	}
	if len(m.startSeen) != 1 || m.startSeen[0] != (service.Seen{}) {
		t.Errorf("the start again was given %+v, want nothing seen", m.startSeen)
	}
}

// TestEmergencyReadsTheServiceAgainAfterARecoveryStartedIt: the emergency's status is read
// ahead of preflight, while its intent is journaled; a recovery that starts the service
// makes that read stale, and preflight reads the state again.
func TestEmergencyReadsTheServiceAgainAfterARecoveryStartedIt(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken"})
	// The first run is interrupted right after its stop: the service stays down, no outcome.
	ctx, cancel := context.WithCancelCause(context.Background())
	e.m.onStop = func() { cancel(&Interrupt{Signal: syscall.SIGINT}) }
	if _, err := Emergency(ctx, Options{Config: e.cfg}, Deps{Service: e.m}); !errors.Is(err, ErrInterrupted) || e.m.active {
		t.Fatalf("first run: %v, active %v", err, e.m.active)
	}
	e.m.onStop = nil
	var warnings []string
	res, err := Emergency(context.Background(), Options{Config: e.cfg}, Deps{Service: e.m, Events: func(ev Event) {
		if ev.Kind == "warn" {
			warnings = append(warnings, ev.Message)
		}
	}})
	if err != nil || res.Recovered == nil || res.Recovered.Action != "abandoned" {
		t.Fatalf("second run: %v, recovered %+v", err, res.Recovered)
	}
	for _, w := range warnings {
		if strings.Contains(w, "already down") {
			t.Errorf("preflight used the state read before the recovery started the service: %q", w)
		}
	}
	if got := strings.Join(e.m.calls, ","); got != "stop,start,stop,start" {
		t.Errorf("service calls %s", got)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1" {
		t.Errorf("app.txt = %q after the second run, want v1", got)
	}
}
