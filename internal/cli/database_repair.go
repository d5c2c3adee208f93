package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// printRepair tells a person what a repair did, what it lost and what to do next.
func printRepair(w io.Writer, p ui.Palette, name string, r *runbook.DBRepair) error {
	switch r.Action {
	case "repaired":
		fmt.Fprintf(w, "%s: %s by %s (%s): %d rows, none lost; the damaged original is kept as %s\n",
			name, p.Green("REPAIRED"), r.Method, methodWhy(r.Method), r.RowsSalvaged, r.CorruptCopy)
	case "planned":
		fmt.Fprintf(w, "%s: %s: a repair would be tried (dry run: nothing was changed)\n", name, p.Yellow("WOULD REPAIR"))
	case "restored":
		fmt.Fprintf(w, "%s: %s from %s (the salvage was not clean); the damaged database is kept as %s\n",
			name, p.Yellow("RESTORED"), r.Restore.Backup, failedPath(r.Restore))
	default:
		lost := fmt.Sprintf("%d rows lost", r.RowsLost)
		if r.LostUnknown {
			lost = fmt.Sprintf("at least %d rows lost (some tables could not be counted)", r.RowsLost)
		}
		fmt.Fprintf(w, "%s: %s: %d rows salvaged, %s; the database was NOT changed\n", name, p.Red("NOT REPAIRED"), r.RowsSalvaged, lost)
	}
	if len(r.Tables) > 0 && r.Action != "repaired" {
		tb := ui.NewTable("  TABLE", "SALVAGED", "LOST", "ORIGINAL ROWS BY", "HOW")
		for _, t := range r.Tables {
			lost := fmt.Sprint(t.Lost)
			if t.Lost < 0 {
				lost = "unknown"
			}
			tb.Row("  "+t.Name, fmt.Sprint(t.Salvaged), lost, t.Estimate, t.Method)
		}
		if err := tb.Render(w); err != nil {
			return err
		}
	}
	for _, u := range r.Unrecovered {
		fmt.Fprintf(w, "  not recreated: %s\n", u)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  restore failed: %s\n", r.Error)
	}
	if r.Action != "not_repaired" && r.Action != "planned" {
		return nil
	}
	if r.SalvagedFile != "" {
		fmt.Fprintf(w, "  salvaged copy (passes integrity_check): %s\n  to use it: cfrollback database restore --db %s --file %s --stop-service\n", r.SalvagedFile, name, r.SalvagedFile)
	}
	o := r.Offer
	if o == nil {
		fmt.Fprintf(w, "  no good backup of %s was found (database.backup_dir, <install>/backups)\n", name)
		return nil
	}
	for _, s := range o.Skipped {
		fmt.Fprintf(w, "  %s %s: %s\n", p.Yellow("SKIPPING"), s.Path, s.Reason)
	}
	fmt.Fprintf(w, "  newest good backup: %s, from %s (%s)\n", o.Path, o.Time.Local().Format(time.DateTime), ui.Ago(o.Time, time.Now()))
	if !o.LastWrite.IsZero() && o.LastWrite.After(o.Time) {
		fmt.Fprintf(w, "  restoring it loses every write after %s: the database was last written %s (%s later)\n",
			o.Time.Local().Format(time.DateTime), o.LastWrite.Local().Format(time.DateTime), ui.Duration(o.LastWrite.Sub(o.Time).Round(time.Second)))
	}
	for _, t := range o.Tables {
		cur := "unknown"
		if t.CurrentRows >= 0 {
			cur = fmt.Sprintf("%d (%s)", t.CurrentRows, t.EstimatedBy)
		}
		fmt.Fprintf(w, "    %s: backup %d rows, damaged database %s: %d newer rows lost\n", t.Name, t.BackupRows, cur, t.RowsNewer)
	}
	fmt.Fprintf(w, "  to restore it: %s\n", o.Command)
	return nil
}

func methodWhy(m string) string {
	switch m {
	case sqlitedb.RepairReindex:
		return "only indexes were damaged; REINDEX of a copy"
	case sqlitedb.RepairRebuild:
		return "only indexes were damaged; tables copied into a new file, indexes built fresh"
	}
	return "every table copied into a new file"
}

func failedPath(r *sqlitedb.RestoreResult) string {
	if r == nil || r.Failed == nil {
		return "(none)"
	}
	return r.Failed.Path
}
