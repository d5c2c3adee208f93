package runbook

// A deploy and the emergency or rollback run a kill left without an outcome. The emergency
// that rolls a failed deploy back takes such a run up first (recoverInterrupted): killed
// after its swap, it COMPLETES that run (start, wait for health) and restores nothing, so a
// deploy over it would report a rollback that left the deploy's version in place. And the
// backup a deploy makes of a half-restored install is no version to go back to. So a deploy
// does not start while one is unresolved, and a rollback that took one up is not a rollback.

import (
	"context"
	"fmt"
)

// checkInterrupted is the deploy's first step: the journal must hold no emergency or
// rollback of this install dir that was interrupted (the runs 'cfrollback emergency' takes up).
func (d *deployRun) checkInterrupted(context.Context) (string, any, error) {
	it, err := findInterrupted(d.runID, d.warn, d.journalAside, d.cfg.Journal)
	if err != nil {
		return "", nil, &StepError{Step: "check_runs", Err: err,
			Hint: "run 'cfrollback journal verify' to see what is wrong with the journal; nothing was changed"}
	}
	if it == nil || it.intent.InstallDir != d.res.InstallDir {
		return "no interrupted emergency or rollback of " + d.res.InstallDir + " in the journal", nil, nil
	}
	where := "before it stopped the service"
	if it.stopped {
		where = "after it stopped the service"
	}
	by := ""
	if it.intent.User != "" {
		by = " by " + it.intent.User
	}
	return "", map[string]string{"interrupted_run": it.runID}, &StepError{Step: "check_runs",
		Err: fmt.Errorf("%s run %s%s was interrupted %s and has no outcome; a deploy now would back up a half-restored install, "+
			"and its rollback would complete that run instead of restoring the deploy's backup; the deploy command was not run",
			it.intent.Command, it.runID, by, where),
		Hint: "resolve that run first: 'cfrollback history' shows it, 'cfrollback emergency --dry-run' says what resuming it does, " +
			"'cfrollback emergency' completes or undoes it; then deploy again"}
}

// interruptedNext is what to run when an interrupted run blocks the deploy.
var interruptedNext = []string{
	"cfrollback history   # the interrupted run",
	"cfrollback emergency --dry-run   # what resuming it does",
	"cfrollback emergency   # resolve it, then deploy again",
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
