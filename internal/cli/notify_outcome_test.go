package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/notify"
)

// arrival is what a webhook receiver saw when an event came in: the time and the journal
// records then.
type arrival struct {
	at      time.Time
	runID   string
	journal []journal.Record
}

// outcomeReceiver is a generic webhook on 127.0.0.1 that notes, for each event, when it came
// and what the journal held at that moment.
func outcomeReceiver(t *testing.T, journalPath string) (url string, got func() map[string]arrival) {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]arrival{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		var ev notify.Event
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("webhook body %q: %v", b, err)
		}
		recs, err := journal.ReadAll(journalPath)
		if err != nil {
			t.Errorf("read the journal when %s came: %v", ev.Event, err)
		}
		mu.Lock()
		seen[ev.Event] = arrival{at: at, runID: ev.RunID, journal: recs}
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook", func() map[string]arrival {
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// standbyRecords are the run's records of its standby refresh (steps standby_*).
func standbyRecords(recs []journal.Record, runID string) []journal.Record {
	var out []journal.Record
	for _, rec := range recs {
		if rec.RunID == runID && strings.HasPrefix(rec.Step, "standby_") {
			out = append(out, rec)
		}
	}
	return out
}

// The completion webhook of a standalone rollback-type command goes out at the run's
// outcome, before the standby refresh after it begins (as guard's does), not after the
// refresh: the receiver reads the journal as the event arrives and finds the outcome there
// and no refresh step yet. The order is the program's, not the clock's: the outcome's
// notification is sent, and answered, before the refresh is started.
func TestCommandsNotifyAtOutcomeBeforeStandbyRefresh(t *testing.T) {
	for _, tc := range []struct {
		name, settings string
		args           func(w string) []string
		app            string // app.txt after the run
	}{
		{"emergency", "", func(string) []string { return []string{"emergency"} }, "v1 good"},
		{"rollback --to", "", func(string) []string { return []string{"rollback", "--to", "latest", "--yes"} }, "v1 good"},
		// the deploy stops the service; its gate fails and it rolls back to the backup it made
		{"deploy", "deploy: {gate_timeout: 1s, gate_passes: 2, watch: 0s}\n",
			func(w string) []string { return []string{"deploy", "--", "rm", "-f", filepath.Join(w, "running")} }, "v2 broken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, settings, _ := notifySandbox(t)
			journalPath := filepath.Join(w, "log", "journal.jsonl")
			url, got := outcomeReceiver(t, journalPath)
			yaml := tc.settings + "notify:\n  timeout: 2s\n  retries: 1\n  webhooks:\n    - {name: ops, url: \"" + url + "\", kind: generic}\n"
			if err := os.WriteFile(settings, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI(append([]string{"--config", settings, "--json"}, tc.args(w)...)...)
			a, ok := got()[notify.RollbackComplete]
			if !ok || appText(t, w) != tc.app {
				t.Fatalf("exit %d, app %q, rollback_complete heard: %v\n%s\n%s", code, appText(t, w), ok, out, errOut)
			}
			runID := a.runID
			if !strings.Contains(out, `"run_id": "`+runID+`"`) {
				t.Errorf("rollback_complete names run %q, not in the result:\n%s", runID, out)
			}
			final, err := journal.ReadAll(journalPath)
			if err != nil {
				t.Fatal(err)
			}
			refresh := standbyRecords(final, runID)
			if len(refresh) == 0 {
				t.Fatalf("the run refreshed no standby: the test proves nothing\n%s", errOut)
			}
			start, end := refresh[0].Time, refresh[len(refresh)-1].Time
			t.Logf("rollback_complete arrived %v before the refresh's first record (%s), %v before its last (%s) (negative: after)",
				start.Sub(a.at), refresh[0].Event+":"+refresh[0].Step, end.Sub(a.at), refresh[len(refresh)-1].Step)
			outcome := false
			for _, rec := range a.journal {
				outcome = outcome || (rec.RunID == runID && rec.Event == journal.EventOutcome)
			}
			if early := standbyRecords(a.journal, runID); !outcome || len(early) > 0 {
				t.Errorf("when rollback_complete arrived the journal had the outcome: %v, and %d standby refresh records (want 0)", outcome, len(early))
			}
			if !a.at.Before(start) {
				t.Errorf("rollback_complete arrived at %s, after the refresh began at %s", a.at.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))
			}
		})
	}
}
