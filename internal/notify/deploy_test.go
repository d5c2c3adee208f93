package notify

import (
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/runbook"
)

// deploy_started goes first, in the background; the outcome's event follows from Finished.
func TestDeployNotifierEvents(t *testing.T) {
	for outcome, want := range map[string]string{
		"ok": DeployComplete, "rolled_back": DeployRolledBack, "rollback_failed": DeployRollbackFailed, "not_rolled_back": DeployRollbackFailed,
	} {
		rc := newReceiver(t, reply{status: 200}, reply{status: 200})
		var warns []string
		d := DeployNotifier{runNotifier(rc.URL, nil, &warns)}
		res := &runbook.DeployResult{RunID: "d1", Service: "svc", DeployCommand: []string{"./deploy.sh", "v2"},
			Backup: &runbook.DeployBackup{Path: "/b/backup-1.tar.gz"}}
		d.DeployStarting(t.Context(), res)
		res.Outcome, res.FailedStep, res.Error = outcome, "gate", "health gate: service is not healthy"
		d.Finished(t.Context(), res)
		bodies, _ := rc.got()
		if got := strings.Join(events(bodies), ","); got != DeployStarted+","+want {
			t.Errorf("%s: events %s", outcome, got)
		}
		if len(bodies) == 2 && (!strings.Contains(bodies[0], "./deploy.sh v2") || !strings.Contains(bodies[0], "/b/backup-1.tar.gz")) {
			t.Errorf("deploy_started %s", bodies[0])
		}
		if outcome != "ok" && len(bodies) == 2 && !strings.Contains(bodies[1], "service is not healthy") {
			t.Errorf("%s: no evidence in %s", outcome, bodies[1])
		}
		if len(warns) != 0 {
			t.Errorf("warnings %q", warns)
		}
	}
}

// A dry run and a deploy refused before it began send nothing.
func TestDeployNotifierSilent(t *testing.T) {
	rc := newReceiver(t)
	var warns []string
	d := DeployNotifier{runNotifier(rc.URL, nil, &warns)}
	for _, res := range []*runbook.DeployResult{{RunID: "d1", DryRun: true, Outcome: "planned"}, nil} {
		d.DeployStarting(t.Context(), res)
		d.Finished(t.Context(), res)
	}
	// refused before the command ran: Deploy never called DeployStarting
	d.Finished(t.Context(), &runbook.DeployResult{RunID: "d2", Outcome: "preflight_failed"})
	if bodies, _ := rc.got(); len(bodies) != 0 {
		t.Errorf("sent %q", bodies)
	}
}

// A status page hears a deploy that ended healthy, rolled back or not, as resolved.
func TestDeployStatusPage(t *testing.T) {
	for outcome, want := range map[string]string{"ok": "resolved", "rolled_back": "resolved", "rollback_failed": "investigating"} {
		b, err := Payload(StatusPage, FromDeploy(&runbook.DeployResult{RunID: "d1", Service: "svc", Outcome: outcome}))
		if err != nil || !strings.Contains(string(b), `"status":"`+want+`"`) {
			t.Errorf("%s: %s %v", outcome, b, err)
		}
	}
}
