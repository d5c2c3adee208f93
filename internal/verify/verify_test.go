package verify

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

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/logs"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
)

type fakeService struct{ active bool }

func (f fakeService) Name() string { return "fake" }
func (f fakeService) Kind() string { return service.KindCommand }
func (f fakeService) Status(context.Context) (service.Status, error) {
	state := "inactive"
	if f.active {
		state = "active"
	}
	return service.Status{Manager: service.KindCommand, Exists: true, Active: f.active, State: state}, nil
}
func (fakeService) Stop(context.Context) error  { return nil }
func (fakeService) Start(context.Context) error { return nil }

func TestSummarise(t *testing.T) {
	row := func(name string, v health.Verdict) health.Check {
		return health.Check{Name: name, Verdict: v, Detail: name + " detail"}
	}
	cases := []struct {
		rows   []health.Check
		status health.Verdict
		detail string
	}{
		{nil, health.Skip, "no things rows"},
		{[]health.Check{row("a", health.Pass), row("b", health.Pass)}, health.Pass, "2 of 2 rows pass"},
		{[]health.Check{row("a", health.Pass), row("b", health.Warn)}, health.Warn, "b: b detail"},
		{[]health.Check{row("a", health.Warn), row("b", health.Fail)}, health.Fail, "a: a detail; b: b detail"},
		{[]health.Check{row("a", health.Skip), row("b", health.Skip)}, health.Skip, "none of 2 checked: a detail"},
	}
	for _, c := range cases {
		s := Summarise(c.rows, "things")
		if s.Status != c.status || s.Detail != c.detail {
			t.Errorf("%v: got %s %q, want %s %q", c.rows, s.Status, s.Detail, c.status, c.detail)
		}
	}
}

func TestCheckAgentsMissingAndEmpty(t *testing.T) {
	dir := t.TempDir()
	if s := CheckAgents(filepath.Join(dir, "nope")); s.Status != health.Skip {
		t.Errorf("no dir: %s %s", s.Status, s.Detail)
	}
	if s := CheckAgents(dir); s.Status != health.Warn || !strings.Contains(s.Detail, "no agent definitions") {
		t.Errorf("empty dir: %s %s", s.Status, s.Detail)
	}
}

// Run's seven steps with a fake service, a local health URL, a connect function and log
// lines around the verified run's end: errors after the end fail, before it only warn.
func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
	defer srv.Close()
	dir := t.TempDir()
	cfg := settings.Defaults()
	cfg.InstallDir, cfg.Backup.Dir = filepath.Join(dir, "app"), filepath.Join(dir, "backups")
	cfg.Health.URL, cfg.Databases = srv.URL, nil
	if err := os.MkdirAll(cfg.InstallDir, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ended := now.Add(-10 * time.Minute)
	lines := []logs.Line{{Time: ended.Add(-time.Minute), Message: "ERROR before"}}
	o := Options{Config: cfg, Service: fakeService{active: true}, Samples: 3, Interval: time.Millisecond, Target: 2 * time.Second,
		APIURLErr: errors.New("no app config"), ErrorGrep: "ERROR", RunID: "r1", RunEnded: ended, Now: func() time.Time { return now },
		ErrorLines: func(context.Context, time.Time) ([]logs.Line, string, error) { return lines, "files x", nil },
		Connect: func(context.Context, appconfig.ConnOptions) (appconfig.ConnResult, error) {
			t.Fatal("Connect called without a URL")
			return appconfig.ConnResult{}, nil
		}}
	res := Run(context.Background(), o)
	byName := map[string]Step{}
	for i, s := range res.Steps {
		if s.Step != i+1 {
			t.Errorf("step %s numbered %d, want %d", s.Name, s.Step, i+1)
		}
		byName[s.Name] = s
	}
	if len(res.Steps) != 7 {
		t.Fatalf("%d steps, want 7: %+v", len(res.Steps), res.Steps)
	}
	if s := byName["service"]; s.Status != health.Pass {
		t.Errorf("service: %s %s", s.Status, s.Detail)
	}
	if s := byName["API connectivity"]; s.Status != health.Skip || !strings.Contains(s.Detail, "no app config") {
		t.Errorf("api: %s %s", s.Status, s.Detail)
	}
	if s := byName["response time"]; s.Status != health.Pass || !strings.Contains(s.Detail, "over 3 requests") {
		t.Errorf("latency: %s %s", s.Status, s.Detail)
	}
	if s := byName["error count"]; s.Status != health.Warn || !strings.Contains(s.Detail, "1 lines matching \"ERROR\" in the last hour, 0 since run r1 ended") {
		t.Errorf("errors before the end: %s %s", s.Status, s.Detail)
	}
	lines = append(lines, logs.Line{Time: ended.Add(time.Minute), Message: "ERROR after"})
	o.Service = fakeService{active: false}
	res = Run(context.Background(), o)
	if res.OK || res.Steps[0].Status != health.Fail {
		t.Errorf("an inactive service passed: %+v", res.Steps[0])
	}
	if s := res.Steps[6]; s.Status != health.Fail || !strings.Contains(s.Detail, "1 since run r1 ended") {
		t.Errorf("an error after the run ended: %s %s", s.Status, s.Detail)
	}
	if res.Failures < 2 {
		t.Errorf("failures %d, want at least 2", res.Failures)
	}
}
