package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/ui"
)

// printStatus renders status's result: one labelled line per part, problems last.
func printStatus(io *ui.IO, asJSON bool, res statusResult, now time.Time) error {
	if asJSON {
		return ui.JSON(io.Out, res)
	}
	p := io.OutPalette()
	tb := ui.NewTable()
	when := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") + " (" + ui.Ago(t, now) + ")" }
	switch s := res.Service; {
	case s == nil:
		tb.Row("service:", p.Yellow("unknown (see problems)"))
	case s.Active:
		line := p.Green("active") + " (" + s.State + ")"
		if s.MainPID > 0 {
			line += fmt.Sprintf(", pid %d", s.MainPID)
		}
		tb.Row("service:", fmt.Sprintf("%s, %s, %d restarts", s.Name, line, s.Restarts))
	default:
		tb.Row("service:", s.Name+", "+p.Red(s.State))
	}
	version := res.AppVersion
	if version == "" {
		version = "unknown"
	}
	tb.Row("app version:", fmt.Sprintf("%s (in %s)", version, res.InstallDir))
	switch b := res.NewestGoodBackup; {
	case b != nil:
		extra := []string{}
		if b.Mark != "" {
			extra = append(extra, "marked "+b.Mark)
		}
		if b.Verified != "" {
			extra = append(extra, "verify "+b.Verified)
		} else {
			extra = append(extra, "never verified")
		}
		tb.Row("newest good backup:", fmt.Sprintf("%s, %s, %s, %s (%d in %s)", b.ID, when(b.Time), ui.Bytes(b.Size), strings.Join(extra, ", "), res.Backups, res.BackupDir))
	case res.Backups > 0:
		tb.Row("newest good backup:", p.Red(fmt.Sprintf("none: all %d in %s are marked bad or failed verify", res.Backups, res.BackupDir)))
	default:
		tb.Row("newest good backup:", p.Red("none: no backups in "+res.BackupDir))
	}
	if line := standbyLine(res.Standby, now); line != "" {
		tb.Row("standby:", line)
	}
	if r := res.LastRun; r != nil {
		outcome := r.Outcome
		if !r.Verified {
			outcome += " (UNVERIFIED)"
		}
		line := fmt.Sprintf("%s %s, %s, %s", r.Command, r.RunID, when(r.Started), outcome)
		if r.Error != "" {
			line += ": " + r.Error
		}
		tb.Row("last run:", line)
	} else {
		tb.Row("last run:", "none in the journal")
	}
	if a := res.LastAssessment; a != nil {
		sev := a.Severity
		if !a.Verified {
			sev += " (UNVERIFIED)"
		}
		tb.Row("last assessment:", fmt.Sprintf("%s, %s, run %s", sev, when(a.Time), a.RunID))
	} else {
		tb.Row("last assessment:", "none journaled")
	}
	if res.MonitorSample != nil {
		tb.Row("monitor:", "last sample "+when(*res.MonitorSample))
	}
	for _, d := range res.Disks {
		tb.Row(fmt.Sprintf("disk (%s):", strings.Join(d.For, ", ")), fmt.Sprintf("%s free of %s (%.0f%%) on %s",
			ui.Bytes(d.AvailBytes), ui.Bytes(d.TotalBytes), d.AvailPct, d.Path))
	}
	if res.JournalWarning != "" {
		tb.Row(p.Yellow("warning:"), res.JournalWarning)
	}
	for _, pr := range res.Problems {
		tb.Row(p.Yellow("problem:"), pr)
	}
	return tb.Render(io.Out)
}
