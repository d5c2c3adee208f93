package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

// The three run printers (emergency, deploy, version rollback) share printedAsJSON: a nil
// result prints nothing and keeps the error; --json prints the result and keeps the error
// (or returns the print's); text goes on to the person's summary, which each prints itself.
func TestRunPrintersShareTheJSONPreamble(t *testing.T) {
	runErr := errors.New("the run's error")
	printers := map[string]func(*ui.IO, bool, bool) error{
		"reportRun": func(s *ui.IO, asJSON, nilRes bool) error {
			res := &runbook.Result{RunID: "run-1", Outcome: "ok"}
			if nilRes {
				res = nil
			}
			return reportRun(s, asJSON, res, runErr)
		},
		"printDeploy": func(s *ui.IO, asJSON, nilRes bool) error {
			res := &runbook.DeployResult{RunID: "run-1", Outcome: "ok"}
			if nilRes {
				res = nil
			}
			return printDeploy(s, asJSON, res, runErr)
		},
		"reportVersion": func(s *ui.IO, asJSON, nilRes bool) error {
			res := &runbook.VersionResult{Result: &runbook.Result{RunID: "run-1", Outcome: "ok"}, ToVersion: "2.0.0"}
			if nilRes {
				res = nil
			}
			return reportVersion(s, asJSON, res, runErr)
		},
	}
	for name, printer := range printers {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			s := &ui.IO{Out: &out, ErrOut: &bytes.Buffer{}, NoColor: true}
			if err := printer(s, true, true); !errors.Is(err, runErr) || out.Len() != 0 {
				t.Errorf("nil result: err %v, printed %q", err, out.String())
			}
			if err := printer(s, true, false); !errors.Is(err, runErr) {
				t.Errorf("--json: err %v", err)
			}
			var got struct {
				RunID string `json:"run_id"`
			}
			if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.RunID != "run-1" {
				t.Errorf("--json printed %q (%v)", out.String(), err)
			}
			out.Reset()
			if err := printer(s, false, false); !errors.Is(err, runErr) || !strings.Contains(out.String(), "(run run-1)") || strings.Contains(out.String(), "{") {
				t.Errorf("text: err %v, printed %q", err, out.String())
			}
			if err := printer(&ui.IO{Out: failingWriter{}, ErrOut: &bytes.Buffer{}}, true, false); err == nil || !strings.Contains(err.Error(), "stdout closed") {
				t.Errorf("--json on a closed stdout: err %v", err)
			}
		})
	}
}
