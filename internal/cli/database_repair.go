package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/cfrollback/cfrollback/internal/config"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// dbRepair is what `database check --repair-if-needed` did about one corrupt database.
type dbRepair struct {
	// Action: repaired (a clean repair replaced the database), restored (the salvage was
	// not clean and --restore-if-unrepairable put back the newest good backup),
	// not_repaired (the database was left as it was).
	Action string `json:"action"`
	sqlitedb.RepairResult
	Offer   *dbRestoreOffer         `json:"newest_good_backup,omitempty"`
	Restore *sqlitedb.RestoreResult `json:"restore,omitempty"`
	Error   string                  `json:"error,omitempty"`
}

// dbRestoreOffer is the newest good backup and what restoring it would lose.
type dbRestoreOffer struct {
	Path string    `json:"path"`
	Time time.Time `json:"time"`
	// LastWrite is the database's (or its -wal's) modification time: writes between Time
	// and LastWrite exist only in the damaged database.
	LastWrite time.Time      `json:"last_write"`
	Tables    []dbTableDelta `json:"tables"`
	Command   string         `json:"command"`
	Skipped   []dbSkipped    `json:"skipped_backups,omitempty"`
}

// dbTableDelta compares row counts (not rows: an update to an existing row is not seen).
type dbTableDelta struct {
	Name       string `json:"name"`
	BackupRows int64  `json:"backup_rows"`
	// CurrentRows is the damaged database's count by the repair's estimate; -1 unknown.
	CurrentRows int64  `json:"current_rows"`
	EstimatedBy string `json:"estimated_by"`
	// RowsNewer is CurrentRows-BackupRows when positive: rows the restore would lose.
	RowsNewer int64 `json:"rows_newer"`
}

// repairDatabase runs sqlitedb.Repair on a corrupt database and, if the result is not
// clean, finds the newest good backup, says what restoring it would lose and, with
// --restore-if-unrepairable, restores it.
func repairDatabase(ctx context.Context, opts *databaseCheckOptions, d config.DatabaseRef, path string) (*dbRepair, error) {
	busy := opts.Config.Database.BusyTimeout
	say := func(format string, a ...any) {
		if !opts.JSON {
			fmt.Fprintf(opts.IO.ErrOut, "==> %s: "+format+"\n", append([]any{d.Name}, a...)...)
		}
	}
	rr, err := sqlitedb.Repair(ctx, path, sqlitedb.RepairOptions{BusyTimeout: busy, Progress: func(s string) { say("%s", s) }})
	if err != nil {
		if errors.Is(err, sqlitedb.ErrInUse) {
			return nil, &runbook.StepError{Step: "preflight", Err: fmt.Errorf("database %s: %w", d.Name, err),
				Hint: "nothing was changed; stop the service (or those processes) and run it again, or restore the newest good backup with 'cfrollback database restore --db " + d.Name + " --latest --stop-service'"}
		}
		return nil, fmt.Errorf("database %s: %w", d.Name, err)
	}
	rep := &dbRepair{RepairResult: rr, Action: "not_repaired"}
	if rr.Replaced {
		rep.Action = "repaired"
		return rep, nil
	}
	offer, err := restoreOffer(ctx, opts, d, path, rr)
	if err != nil {
		return nil, err
	}
	rep.Offer = offer
	if offer == nil || !opts.RestoreIfUnrepairable {
		return rep, nil
	}
	say("restoring the newest good backup %s", offer.Path)
	res, err := sqlitedb.Restore(ctx, offer.Path, path, sqlitedb.RestoreOptions{BusyTimeout: busy, Progress: func(s string) { say("%s", s) }})
	if err != nil {
		rep.Error = err.Error()
		if errors.Is(err, sqlitedb.ErrInUse) {
			return nil, &runbook.StepError{Step: "preflight", Err: err, Hint: "the database was not replaced; stop the service and run it again"}
		}
		return rep, nil
	}
	rep.Restore = &res
	rep.Action = "restored"
	return rep, nil
}

func restoreOffer(ctx context.Context, opts *databaseCheckOptions, d config.DatabaseRef, path string, rr sqlitedb.RepairResult) (*dbRestoreOffer, error) {
	var skipped []dbSkipped
	c, chk, ok, err := sqlitedb.NewestGood(ctx, dbCandidates(opts.Config, d.Name), opts.Config.Database.BusyTimeout, func(c sqlitedb.Candidate, reason string) {
		skipped = append(skipped, dbSkipped{Name: d.Name, Path: c.Path, Reason: reason})
	})
	if err != nil || !ok {
		return nil, err
	}
	o := &dbRestoreOffer{Path: c.Path, Time: c.Time, Skipped: skipped,
		Command: fmt.Sprintf("cfrollback database check --db %s --repair-if-needed --restore-if-unrepairable", d.Name)}
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil && fi.ModTime().After(o.LastWrite) {
			o.LastWrite = fi.ModTime()
		}
	}
	current := map[string]sqlitedb.TableSalvage{}
	for _, t := range rr.Tables {
		current[t.Name] = t
	}
	for _, bt := range chk.Tables {
		td := dbTableDelta{Name: bt.Name, BackupRows: bt.Rows, CurrentRows: -1, EstimatedBy: sqlitedb.EstUnknown}
		if t, ok := current[bt.Name]; ok && t.Expected >= 0 {
			td.CurrentRows, td.EstimatedBy = t.Expected, t.Estimate
			td.RowsNewer = max(t.Expected-bt.Rows, 0)
		}
		o.Tables = append(o.Tables, td)
	}
	return o, nil
}

// printRepair tells a person what a repair did, what it lost and what to do next.
func printRepair(w io.Writer, p ui.Palette, name string, r *dbRepair) {
	switch r.Action {
	case "repaired":
		fmt.Fprintf(w, "%s: %s by %s (%s): %d rows, none lost; the damaged original is kept as %s\n",
			name, p.Green("REPAIRED"), r.Method, methodWhy(r.Method), r.RowsSalvaged, r.CorruptCopy)
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
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TABLE\tSALVAGED\tLOST\tORIGINAL ROWS BY\tHOW")
		for _, t := range r.Tables {
			lost := fmt.Sprint(t.Lost)
			if t.Lost < 0 {
				lost = "unknown"
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", t.Name, t.Salvaged, lost, t.Estimate, t.Method)
		}
		tw.Flush()
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
	if r.Action != "not_repaired" {
		return
	}
	if r.SalvagedFile != "" {
		fmt.Fprintf(w, "  salvaged copy (passes integrity_check): %s\n  to use it: cfrollback database restore --db %s --file %s --stop-service\n", r.SalvagedFile, name, r.SalvagedFile)
	}
	o := r.Offer
	if o == nil {
		fmt.Fprintf(w, "  no good backup of %s was found (database.backup_dir, <install>/backups)\n", name)
		return
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

// repairStatus is the STATUS column after a repair.
func repairStatus(r *dbRepair) string {
	switch r.Action {
	case "repaired":
		return "repaired"
	case "restored":
		return "restored"
	}
	return "corrupt"
}
