package runbook

// A deploy and the runs a kill left without an outcome (docs/DEPLOY.md, "An interrupted run
// blocks the deploy").
//
// An emergency or rollback: the emergency that rolls a failed deploy back takes such a run up
// first (recoverInterrupted): killed after its swap, it COMPLETES that run (start, wait for
// health) and restores nothing, so a deploy over it would report a rollback that left the
// deploy's version in place; and the backup a deploy makes of a half-restored install is no
// version to go back to.
//
// A deploy killed after its command began (in its gate, its watch, its rollback), or a
// rollback --to-version killed after its stop: the install is a version nothing verified, or
// half installed. A deploy over it would take its "fresh verified backup" of THAT and roll
// back to it. No emergency takes these up (an emergency restores a backup afresh, which is
// what resolves them), so the deploy looks for them itself.
//
// So a deploy does not start while one is unresolved, and a rollback that took one up is not
// a rollback. A deploy or version rollback killed before it changed anything (before the
// deploy command, before the stop) is closed as abandoned; one that a later emergency,
// rollback, version rollback or deploy of the same install dir resolved (it ended ok) is
// closed as superseded by that run.

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cfrollback/cfrollback/internal/journal"
)

// checkInterrupted is the deploy's first step: the journal must hold no emergency or
// rollback of this install dir that was interrupted (the runs 'cfrollback emergency' takes
// up), and no deploy or rollback --to-version that a kill left after it changed the install.
func (d *deployRun) checkInterrupted(context.Context) (string, any, error) {
	runs, unread, err := readRuns(d.warn, d.journalAside, d.cfg.Journal)
	checkUnread(d.warn, unread) // a deploy is not in a hurry: the whole journal is checked now
	if err != nil {
		return "", nil, &StepError{Step: "check_runs", Err: err,
			Hint: "run 'cfrollback journal verify' to see what is wrong with the journal; nothing was changed"}
	}
	if it := newestInterrupted(runs, d.runID); it != nil && it.intent.InstallDir == d.res.InstallDir {
		return "", map[string]string{"interrupted_run": it.runID}, d.interruptedEmergency(it)
	}
	var closes []outcomeClose
	for i := len(runs) - 1; i >= 0; i-- {
		run := runs[i]
		if run.ID == d.runID || !run.Unfinished() || (run.Command != DeployCommand && run.Command != VersionCommand) {
			continue
		}
		u := readUnfinished(run)
		if u.InstallDir != d.res.InstallDir {
			continue
		}
		switch by := resolvedBy(runs[i+1:], d.res.InstallDir); {
		case !u.changed:
			closes = append(closes, outcomeClose{run.ID, "abandoned by " + d.runID,
				fmt.Sprintf("%s run %s was killed in its %s step, before it changed anything; closing it", u.what(), run.ID, u.lastStep)})
		case by != "":
			closes = append(closes, outcomeClose{run.ID, "superseded by " + by + " (noted by " + d.runID + ")",
				fmt.Sprintf("%s run %s was killed in its %s step; run %s ended ok after it, so it is resolved; closing it", u.what(), run.ID, u.lastStep, by)})
		default:
			next, err := u.blocks(run.ID)
			d.blockedNext = next
			return "", map[string]string{"interrupted_run": run.ID}, err
		}
	}
	detail := "no unresolved interrupted run of " + d.res.InstallDir + " in the journal"
	for _, c := range closes {
		d.warn("%s", c.why)
		if d.opt.DryRun {
			detail += "; would close " + c.runID + " as " + c.outcome
			continue
		}
		d.closeRun(c.runID, outcomeData{Outcome: c.outcome})
		detail += "; closed " + c.runID + " as " + c.outcome
	}
	return detail, nil, nil
}

// interruptedEmergency is the error of an emergency or rollback left interrupted.
func (d *deployRun) interruptedEmergency(it *interrupted) error {
	where := "before it stopped the service"
	if it.stopped {
		where = "after it stopped the service"
	}
	return &StepError{Step: "check_runs",
		Err: fmt.Errorf("%s run %s%s was interrupted %s and has no outcome; a deploy now would back up a half-restored install, "+
			"and its rollback would complete that run instead of restoring the deploy's backup; the deploy command was not run",
			it.intent.Command, it.runID, byUser(it.intent.User), where),
		Hint: "resolve that run first: 'cfrollback history' shows it, 'cfrollback emergency --dry-run' says what resuming it does, " +
			"'cfrollback emergency' completes or undoes it; then deploy again"}
}

// interruptedNext is what to run when an interrupted emergency or rollback blocks the deploy.
var interruptedNext = []string{
	"cfrollback history   # the interrupted run",
	"cfrollback emergency --dry-run   # what resuming it does",
	"cfrollback emergency   # resolve it, then deploy again",
}

// outcomeClose is an unfinished run the deploy closes, and the warning that says why.
type outcomeClose struct{ runID, outcome, why string }

// unfinishedRun is what the journal says about a deploy or rollback --to-version without an
// outcome.
type unfinishedRun struct {
	Command    string   `json:"command"`
	User       string   `json:"user"`
	InstallDir string   `json:"install_dir"`
	ToVersion  string   `json:"to_version"`
	Deploy     []string `json:"deploy_command"`
	lastStep   string
	// changed: it began the step from which the install may differ (a deploy's command, a
	// version rollback's stop).
	changed bool
	backup  string // a deploy's backup, from its backup step
}

func readUnfinished(run journal.Run) unfinishedRun {
	var u unfinishedRun
	from := "deploy"
	if run.Command == VersionCommand {
		from = "stop"
	}
	u.lastStep = "intent"
	if n := len(run.Steps); n > 0 {
		u.lastStep = run.Steps[n-1].Name
	}
	for _, rec := range run.Records {
		switch {
		case rec.Event == journal.EventIntent:
			_ = json.Unmarshal(rec.Data, &u)
		case rec.Event == journal.EventStepStart && rec.Step == from:
			u.changed = true
		case rec.Event == journal.EventStepDone && rec.Step == "backup":
			var p struct {
				Data DeployBackup `json:"data"`
			}
			if json.Unmarshal(rec.Data, &p) == nil {
				u.backup = p.Data.Path
			}
		}
	}
	return u
}

func (u unfinishedRun) what() string {
	if u.Command == VersionCommand {
		return "rollback --to-version " + u.ToVersion
	}
	return "deploy"
}

// blocks is the error of a deploy over u, and what to run next.
func (u unfinishedRun) blocks(runID string) ([]string, error) {
	if u.Command == VersionCommand {
		v := shellQuote(u.ToVersion)
		return []string{
				"cfrollback history   # the interrupted run " + runID,
				"cfrollback rollback --to-version " + v + " --dry-run   # what taking over does",
				"cfrollback rollback --to-version " + v + " --yes   # finish it, then deploy again",
			}, &StepError{Step: "check_runs",
				Err: fmt.Errorf("rollback --to-version %s run %s%s was interrupted in its %s step, after it stopped the service, and has no outcome: "+
					"claude-flow may be half installed, and a deploy now would back that up as the version to roll back to; the deploy command was not run",
					u.ToVersion, runID, byUser(u.User), u.lastStep),
				Hint: "finish that run first: 'cfrollback rollback --to-version " + v + " --yes' takes over from it ('--dry-run' first), " +
					"or put a backup back with 'cfrollback emergency'; then deploy again"}
	}
	emergency := "cfrollback emergency"
	what := "the newest backup"
	if u.backup != "" {
		emergency += " --backup " + shellQuote(u.backup)
		what = "the backup that deploy was to roll back to"
	}
	return []string{
			"cfrollback history   # the interrupted deploy " + runID,
			emergency + " --dry-run   # what the rollback does",
			emergency + "   # back to the version before it, then deploy again",
		}, &StepError{Step: "check_runs",
			Err: fmt.Errorf("deploy run %s%s was interrupted in its %s step, after its command (%s) began, and has no outcome: "+
				"the version it installed never passed its gate and watch, and a deploy now would take its backup of that version as the one to roll back to; "+
				"the deploy command was not run", runID, byUser(u.User), u.lastStep, shellJoin(u.Deploy)),
			Hint: "put the version from before it back: '" + emergency + "' restores " + what + " ('--dry-run' first, 'cfrollback history' shows the run); " +
				"then deploy again"}
}

// resolvedBy is the id of the first run in later that ended ok on installDir (it put a
// backup or a version in place and waited for health), or "".
func resolvedBy(later []journal.Run, installDir string) string {
	for _, run := range later {
		ok := run.Outcome == "ok"
		switch run.Command {
		case "emergency", "rollback", VersionCommand:
		case DeployCommand:
			ok = ok || run.Outcome == "rolled_back"
		default:
			continue
		}
		if ok && readUnfinished(run).InstallDir == installDir {
			return run.ID
		}
	}
	return ""
}

func byUser(user string) string {
	if user == "" {
		return ""
	}
	return " by " + user
}

// tookUpOtherRun is the error of a rollback whose emergency completed an interrupted run
// instead of restoring the deploy's backup; nil when it restored the backup.
func (d *deployRun) tookUpOtherRun(res *Result) error {
	if res == nil || res.Recovered == nil || res.Recovered.Action != "completed" {
		return nil
	}
	return fmt.Errorf("the emergency (run %s) completed the interrupted run %s instead of restoring %s; the deploy's version may still be installed: "+
		"run 'cfrollback emergency --backup %s'", res.RunID, res.Recovered.RunID, d.dres.Backup.Path, shellQuote(d.dres.Backup.Path))
}

// nextAfterCheck is what to run when check_runs refused.
func (d *deployRun) nextAfterCheck() []string {
	if d.blockedNext != nil {
		return d.blockedNext
	}
	return interruptedNext
}
