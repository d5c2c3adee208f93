package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/config"
	"github.com/cfrollback/cfrollback/internal/runbook"
)

// TestNotifyRetries: a webhook that fails (500), then times out, then
// succeeds is delivered on the third attempt; the token in its URL never
// reaches the log.
func TestNotifyRetries(t *testing.T) {
	var mu sync.Mutex
	var calls int
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls++
		n := calls
		bodies = append(bodies, string(b))
		mu.Unlock()
		switch n {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2:
			select { // longer than the client's timeout
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		}
	}))
	defer srv.Close()
	var log bytes.Buffer
	n := notifier{Client: srv.Client(), Timeout: 100 * time.Millisecond, Retries: 3, Backoff: 10 * time.Millisecond, Log: &log}
	hooks := []config.Webhook{{Name: "ops", URL: srv.URL + "/hooks/T000/B000/s3cr3t?token=s3cr3t", Kind: "slack"}}
	start := time.Now()
	res := n.send(t.Context(), hooks, eventFromRun(&runbook.Result{RunID: "r1", Service: "svc", Outcome: "ok", DowntimeMS: 1200}))
	if len(res) != 1 || !res[0].OK || res[0].Attempts != 3 || res[0].Status != 200 {
		t.Fatalf("%+v\n%s", res, log.String())
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %s: the timeout did not bound the slow attempt", time.Since(start))
	}
	for _, want := range []string{"attempt 1 of 4 failed: HTTP 500", "attempt 2 of 4 failed: no answer within 100ms"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(log.String(), "s3cr3t") || strings.Contains(res[0].URL, "s3cr3t") {
		t.Errorf("secret in the log: %s %s", log.String(), res[0].URL)
	}
	var slack map[string]string
	if err := json.Unmarshal([]byte(bodies[2]), &slack); err != nil || !strings.Contains(slack["text"], "rolled back and healthy (run r1, downtime 1.2s)") {
		t.Errorf("slack body %s (%v)", bodies[2], err)
	}

	// a 4xx is not retried; an unreachable hook gives up after its retries
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	defer bad.Close()
	res = n.send(t.Context(), []config.Webhook{{Name: "gone", URL: bad.URL}, {Name: "down", URL: "http://127.0.0.1:1/x", Kind: "statuspage"}},
		notifyEvent{Event: "test", Message: "hi"})
	if res[0].OK || res[0].Attempts != 1 || res[0].Status != 404 {
		t.Errorf("404: %+v", res[0])
	}
	if res[1].OK || res[1].Attempts != 4 {
		t.Errorf("unreachable: %+v", res[1])
	}
}

func TestPayloads(t *testing.T) {
	ev := notifyEvent{Event: "rollback_complete", Service: "claude-flow", RunID: "r1", Message: "restored"}
	for kind, want := range map[string]string{
		"generic":    `"event":"rollback_complete"`,
		"slack":      `{"text":"restored"}`,
		"statuspage": `"status":"resolved"`,
	} {
		b, err := payload(kind, ev)
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s: %s %v", kind, b, err)
		}
	}
	if got := appconfig.RedactWebhookURL("https://user:pw@hooks.slack.com/services/T/B/x?y=1"); got != "https://hooks.slack.com/…?…" {
		t.Errorf("redacted %s", got)
	}
}
