package notify

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// The events of `cfrollback deploy` (docs/DEPLOY.md). The rollback it runs sends its own
// rollback_started and rollback_complete / rollback_failed as any emergency does.
const (
	// DeployStarted: the backup is ready and the deploy command runs now.
	DeployStarted = "deploy_started"
	// DeployComplete: the command, the health gate and the watch passed.
	DeployComplete = "deploy_complete"
	// DeployRolledBack: the deploy failed and was rolled back, healthy.
	DeployRolledBack = "deploy_rolled_back"
	// DeployRollbackFailed: the deploy failed and so did its rollback; Outcome says how
	// (rollback_failed, or not_rolled_back for an interrupted deploy).
	DeployRollbackFailed = "deploy_rollback_failed"
)

// DeployNotifier tells notify.webhooks about one deploy: deploy_started in the background
// (runbook.DeployNotifier), then its outcome from Finished.
type DeployNotifier struct{ *RunNotifier }

var _ runbook.DeployNotifier = DeployNotifier{}

// NewDeploy is the DeployNotifier for the settings; log gets the failed attempts.
func NewDeploy(cfg settings.NotifyConfig, log io.Writer, userAgent string, warn func(string)) DeployNotifier {
	return DeployNotifier{NewRun(cfg, log, userAgent, warn)}
}

// DeployStarting sends deploy_started in the background (a dry run sends nothing).
func (d DeployNotifier) DeployStarting(ctx context.Context, res *runbook.DeployResult) {
	if len(d.Hooks) == 0 || res == nil || res.DryRun || res.RunID == "" {
		return
	}
	ev := fromDeploy(res)
	ev.Event = DeployStarted
	ev.Message = fmt.Sprintf("%s on %s: deploy started (run %s): %s; rolls back to %s if it fails", res.Service, ev.Host, res.RunID,
		strings.Join(res.DeployCommand, " "), ev.Backup)
	d.startInBackground(ctx, ev)
}

// Finished sends the deploy's outcome (after deploy_started has gone, as RunNotifier does).
// A dry run, or a deploy refused before it began, sends nothing.
func (d DeployNotifier) Finished(ctx context.Context, res *runbook.DeployResult) {
	if res == nil || res.DryRun || res.RunID == "" || res.Outcome == "preflight_failed" {
		d.finish(ctx, nil)
		return
	}
	ev := FromDeploy(res)
	d.finish(ctx, &ev)
}

// FromDeploy describes a finished deploy.
func FromDeploy(res *runbook.DeployResult) Event {
	ev := fromDeploy(res)
	switch res.Outcome {
	case "ok":
		ev.Event = DeployComplete
		ev.Message = fmt.Sprintf("%s on %s: deploy complete and healthy (run %s)", res.Service, ev.Host, res.RunID)
	case "rolled_back":
		ev.Event = DeployRolledBack
		ev.Message = fmt.Sprintf("%s on %s: deploy failed at %s and was rolled back to %s, healthy (run %s): %s",
			res.Service, ev.Host, res.FailedStep, ev.Backup, res.RunID, res.Error)
	default:
		ev.Event = DeployRollbackFailed
		ev.Message = fmt.Sprintf("%s on %s: deploy %s at %s (run %s): %s; see 'cfrollback history'",
			res.Service, ev.Host, strings.ReplaceAll(res.Outcome, "_", " "), res.FailedStep, res.RunID, res.Error)
	}
	return ev
}

func fromDeploy(res *runbook.DeployResult) Event {
	ev := Event{Service: res.Service, Host: hostname(), RunID: res.RunID, Outcome: res.Outcome, Time: time.Now().UTC()}
	if res.Backup != nil {
		ev.Backup = res.Backup.Path
	}
	if rb := res.Rollback; rb != nil {
		ev.FailedDir, ev.DowntimeMS = rb.FailedDir, rb.DowntimeMS
	}
	return ev
}
