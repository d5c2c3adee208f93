package cli

// The end of every run summary, shared by emergency, rollback, undo and the standby commands.

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// printedAsJSON is the start every run's result printer shares (reportRun, reportVersion,
// printDeploy): a nil result prints nothing, and under --json the result is printed on
// stdout. done says that the caller is done and returns ret: err, which still decides the
// exit code, or the error of printing the JSON.
func printedAsJSON[T any](streams *ui.IO, asJSON bool, res *T, err error) (done bool, ret error) {
	if res == nil {
		return true, err
	}
	if !asJSON {
		return false, nil
	}
	if perr := ui.JSON(streams.Out, res); perr != nil {
		return true, perr
	}
	return true, err
}

// printStandbyUse says whether preflight took the warm standby or extracted, and why.
func printStandbyUse(w io.Writer, p ui.Palette, u *runbook.StandbyUse, dryRun bool) {
	switch {
	case u == nil:
		return
	case u.Used && dryRun:
		fmt.Fprintf(w, "  standby:      would be used (seal checked by %s: %d entries in %d ms; no extraction)\n", u.Proof, u.Entries, u.CheckMS)
	case u.Used:
		fmt.Fprintf(w, "  standby:      used (seal checked by %s: %d entries in %d ms; no extraction)\n", u.Proof, u.Entries, u.CheckMS)
	case dryRun:
		fmt.Fprintf(w, "  standby:      %s %s; the backup would be extracted\n", p.Yellow("would not be used:"), u.Reason)
	default:
		fmt.Fprintf(w, "  standby:      %s %s; extracted the backup instead\n", p.Yellow("not used:"), u.Reason)
	}
	if r := u.Refresh; r != nil {
		if r.Error != "" {
			fmt.Fprintf(w, "  standby now:  %s %s\n", p.Yellow("not refreshed:"), r.Error)
		} else {
			fmt.Fprintf(w, "  standby now:  %s (%s)\n", r.Detail, r.Outcome)
		}
	}
}

// runTail is the end of every run summary: timings, plan, health, where the
// records are, what to do next.
type runTail struct {
	DowntimeMS, DurationMS int64
	Plan                   []string
	Health                 []health.Result
	Journal, HumanLog      string
	Next                   []string
}

func printRunTail(w io.Writer, p ui.Palette, t runTail) {
	if t.DowntimeMS > 0 {
		fmt.Fprintf(w, "  downtime:     %s (service stopped -> healthy)\n", ui.Duration(time.Duration(t.DowntimeMS)*time.Millisecond))
	}
	fmt.Fprintf(w, "  total:        %s\n", ui.Duration(time.Duration(t.DurationMS)*time.Millisecond))
	if len(t.Plan) > 0 {
		fmt.Fprintln(w, "\nplan:")
		for i, s := range t.Plan {
			fmt.Fprintf(w, "  %d. %s\n", i+1, s)
		}
	}
	for _, h := range t.Health {
		mark := p.Green("PASS")
		if !h.OK {
			mark = p.Red("FAIL")
		}
		fmt.Fprintf(w, "  health %s %s: %s\n", mark, h.Check, h.Detail)
	}
	if t.Journal != "" {
		fmt.Fprintf(w, "  journal:      %s\n", t.Journal)
	}
	if t.HumanLog != "" {
		fmt.Fprintf(w, "  log:          %s\n", t.HumanLog)
	}
	if len(t.Next) > 0 {
		fmt.Fprintln(w, "\nnext:")
		for _, n := range t.Next {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
}

// runHeadline is the first line of a run summary for a person.
func runHeadline(p ui.Palette, outcome, ok, unhealthy, failed string) string {
	switch outcome {
	case "ok":
		return p.Green(ok)
	case "planned":
		return p.Bold("DRY RUN: nothing was changed")
	case "unhealthy":
		return p.Red(unhealthy)
	case "failed":
		return p.Red(failed)
	case "preflight_failed":
		return p.Red("ROLLBACK NOT STARTED: preflight failed, nothing was changed")
	case "preflight_would_fail":
		return p.Red("DRY RUN: preflight would fail, nothing was changed")
	case "interrupted":
		return p.Red("INTERRUPTED after the service was stopped: run it again to resume")
	}
	return strings.ToUpper(outcome)
}
