package assess

import (
	"context"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/service"
)

type downService struct{}

func (downService) Name() string { return "down" }
func (downService) Kind() string { return service.KindCommand }
func (downService) Status(context.Context) (service.Status, error) {
	return service.Status{Manager: service.KindCommand, Exists: true, State: "inactive"}, nil
}
func (downService) Stop(context.Context) error  { return nil }
func (downService) Start(context.Context) error { return nil }

// A sample leaves out what it could not measure (no log, no URL, no process): nil, not zero.
func TestSamplerLeavesOutWhatItCannotMeasure(t *testing.T) {
	sm := &Sampler{Service: downService{}, WatchFor: []string{"api-timeout"}, Now: time.Now}
	s := sm.Take(context.Background())
	if s.Active == nil || *s.Active || s.State != "inactive" {
		t.Errorf("state: %v %q", s.Active, s.State)
	}
	if s.ErrorLines != nil || s.AgentFailures != nil || s.Probe != nil || s.RSS != nil || s.Watch != nil {
		t.Errorf("unmeasured parts are set: %+v", s)
	}
}

func TestSamplerAlerts(t *testing.T) {
	sm := &Sampler{WatchFor: []string{"agent-spawn-failure", "api-timeout", "memory-leak"}}
	now := time.Now()
	s := Sample{Time: now, Watch: map[string]int{"agent-spawn-failure": 2, "api-timeout": 0}}
	got := sm.Alerts([]Sample{s}, s, DefaultThresholds)
	if len(got) != 1 || got[0] != "agent-spawn-failure: 2 since the last sample" {
		t.Errorf("alerts %q", got)
	}
	if names := WatchNames(); len(names) != 3 || names[0] != "agent-spawn-failure" {
		t.Errorf("names %v", names)
	}
}
