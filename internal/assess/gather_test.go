package assess

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/service"
)

type unreachableService struct{ downService }

func (unreachableService) Status(context.Context) (service.Status, error) {
	return service.Status{}, errors.New("dbus: no answer")
}

type oneDatabase struct{}

func (oneDatabase) CheckDatabases(context.Context) []health.Check {
	return []health.Check{{Name: "db memory", Verdict: health.Fail, Detail: "corrupt"}}
}

func TestGatherReadsEverySource(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	state := t.TempDir()
	if err := WriteBaseline(state, Baseline{Recorded: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := (Store{Path: StorePath(state)}).Append(Sample{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var warnings []string
	g := Gatherer{Service: downService{}, Databases: oneDatabase{}, InstallDir: t.TempDir(), HealthURL: srv.URL,
		Timeout: time.Second, Samples: 3, StateDir: state, Warn: func(m string) { warnings = append(warnings, m) },
		Now: func() time.Time { return now }}
	in := g.Gather(t.Context())
	if !in.Now.Equal(now) || in.Service == nil || in.Service.Active || in.Service.State != "inactive" {
		t.Errorf("service: %+v at %v", in.Service, in.Now)
	}
	if len(in.Data) != 2 || in.Data[1].Name != "db memory" {
		t.Errorf("data rows: %+v", in.Data)
	}
	if len(in.Latency) != 3 || in.LatencyFailed != 0 {
		t.Errorf("latency: %d ok, %d failed", len(in.Latency), in.LatencyFailed)
	}
	if in.Baseline == nil || len(in.Samples) != 1 || len(warnings) != 0 {
		t.Errorf("baseline %v, %d samples, warnings %q", in.Baseline, len(in.Samples), warnings)
	}
}

// What cannot be read is left out and said, never made up.
func TestGatherLeavesOutWhatItCannotRead(t *testing.T) {
	state := t.TempDir()
	if err := os.WriteFile(filepath.Join(state, "baseline.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(StorePath(state), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	g := Gatherer{Service: unreachableService{}, InstallDir: t.TempDir(), Samples: 3, StateDir: state,
		Warn: func(m string) { warnings = append(warnings, m) }, Now: time.Now}
	in := g.Gather(t.Context())
	if in.Service != nil || in.ServiceErr != "dbus: no answer" {
		t.Errorf("service %+v, err %q", in.Service, in.ServiceErr)
	}
	if in.Latency != nil || in.Baseline != nil || len(in.Data) != 1 {
		t.Errorf("no URL: latency %v; bad baseline: %v; data %d rows", in.Latency, in.Baseline, len(in.Data))
	}
	all := strings.Join(warnings, "\n")
	if !strings.Contains(all, "judging without a baseline") || !strings.Contains(all, "1 lines of "+StorePath(state)) {
		t.Errorf("warnings %q", warnings)
	}
}
