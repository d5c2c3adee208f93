package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// printDeploy prints a deploy's result: JSON on stdout, or for a person what happened, the
// evidence of a failure (the step, the probes or the matrix row) and the rollback. The error
// still decides the exit code.
func printDeploy(io *ui.IO, asJSON bool, res *runbook.DeployResult, err error) error {
	if done, ret := printedAsJSON(io, asJSON, res, err); done {
		return ret
	}
	p := io.OutPalette()
	w := io.Out
	head := map[string]string{
		"ok":                   p.Green("DEPLOYED: the gate and the watch passed"),
		"planned":              p.Bold("DRY RUN: nothing was run or changed"),
		"rolled_back":          p.Red("DEPLOY FAILED AND ROLLED BACK: the old version is healthy"),
		"rollback_failed":      p.Red("DEPLOY FAILED AND THE ROLLBACK FAILED TOO"),
		"not_rolled_back":      p.Red("DEPLOY INTERRUPTED: NOT ROLLED BACK"),
		"preflight_failed":     p.Red("DEPLOY NOT STARTED: nothing was changed, the command was not run"),
		"preflight_would_fail": p.Red("DRY RUN: the deploy would not start"),
	}[res.Outcome]
	if head == "" {
		head = strings.ToUpper(res.Outcome)
	}
	fmt.Fprintf(w, "\n%s  (run %s)\n", head, res.RunID)
	fmt.Fprintf(w, "  command:      %s\n  service:      %s\n", strings.Join(res.DeployCommand, " "), res.Service)
	if b := res.Backup; b != nil {
		fmt.Fprintf(w, "  backup:       %s\n", b.Path)
	}
	if res.FailedStep != "" {
		fmt.Fprintf(w, "  failed at:    %s\n", res.FailedStep)
	}
	if res.ExitCode != nil && *res.ExitCode != 0 {
		fmt.Fprintf(w, "  exit code:    %d\n", *res.ExitCode)
	}
	if res.Error != "" {
		fmt.Fprintf(w, "  error:        %s\n", res.Error)
	}
	if res.FailedStep == "gate" {
		for _, h := range res.Gate {
			mark := p.Green("PASS")
			if !h.OK {
				mark = p.Red("FAIL")
			}
			fmt.Fprintf(w, "  gate %s %s: %s\n", mark, h.Check, h.Detail)
		}
	}
	if wr := res.Watch; wr != nil {
		fmt.Fprintf(w, "  watch:        %d samples over %s: severity %s\n", wr.Samples, ui.Duration(time.Duration(wr.DurationMS)*time.Millisecond), wr.Assessment.Severity)
		for _, c := range wr.Assessment.Conditions {
			if c.Status == assess.Met {
				fmt.Fprintf(w, "    %s %s (%s): %s\n", p.Red("MET"), c.ID, c.Severity, c.Evidence)
			}
		}
	}
	if rb := res.Rollback; rb != nil {
		fmt.Fprintf(w, "  rollback:     run %s %s", rb.RunID, rb.Outcome)
		if rb.DowntimeMS > 0 {
			fmt.Fprintf(w, " (downtime %s)", ui.Duration(time.Duration(rb.DowntimeMS)*time.Millisecond))
		}
		fmt.Fprintln(w)
		if rb.FailedDir != "" && rb.Outcome != "preflight_failed" {
			fmt.Fprintf(w, "  failed state: %s\n", rb.FailedDir)
		}
	}
	printRunTail(w, p, runTail{DurationMS: res.DurationMS, Plan: res.Plan, Journal: res.Journal, HumanLog: res.HumanLog, Next: res.Next})
	return err
}
