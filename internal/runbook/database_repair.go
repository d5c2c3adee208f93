package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/sqlitedb"
)

// DBCheckOptions are one database check's choices; with Repair it is the repair
// procedure (check -> repair -> optionally restore).
type DBCheckOptions struct {
	Config    settings.Config
	Databases []settings.DatabaseRef
	// All: every configured database was asked for; a missing file is reported, not an error.
	All    bool
	Quick  bool
	Tables bool
	// Repair repairs a corrupt database (--repair-if-needed).
	Repair bool
	// RestoreIfUnrepairable restores the newest good backup when a repair is not clean.
	RestoreIfUnrepairable bool
	DryRun                bool
	Args                  []string
}

// DBCheckResult is what a check (and repair) found and did; --json prints it.
type DBCheckResult struct {
	RunID  string `json:"run_id,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
	// Outcome of a repair run: ok, not_repaired, planned, failed, preflight_failed; ""
	// when nothing needed a repair (no run was journaled).
	Outcome   string        `json:"outcome,omitempty"`
	OK        bool          `json:"ok"`
	Databases []DBCheckItem `json:"databases"`
	Steps     []StepResult  `json:"steps,omitempty"`
	Plan      []string      `json:"plan,omitempty"`
	Recovered *Recovery     `json:"recovered,omitempty"`
	Journal   string        `json:"journal,omitempty"`
}

// DBCheckItem is one database's check, and its repair.
type DBCheckItem struct {
	Name    string `json:"name"`
	Status  string `json:"status"` // ok, corrupt, missing, repaired, restored
	Missing bool   `json:"missing,omitempty"`
	sqlitedb.CheckResult
	Repair *DBRepair `json:"repair,omitempty"`
}

// DBRepair is what the repair did about one corrupt database.
type DBRepair struct {
	// Action: repaired (a clean repair replaced the database), restored (the salvage was
	// not clean and the newest good backup was put back), not_repaired (the database was
	// left as it was), planned (dry run).
	Action string `json:"action"`
	sqlitedb.RepairResult
	Offer   *DBRestoreOffer         `json:"newest_good_backup,omitempty"`
	Restore *sqlitedb.RestoreResult `json:"restore,omitempty"`
	Error   string                  `json:"error,omitempty"`
}

// DBRestoreOffer is the newest good backup and what restoring it would lose.
type DBRestoreOffer struct {
	Path string    `json:"path"`
	Time time.Time `json:"time"`
	// LastWrite is the database's (or its -wal's) modification time: writes between Time
	// and LastWrite exist only in the damaged database.
	LastWrite time.Time      `json:"last_write"`
	Tables    []DBTableDelta `json:"tables"`
	Command   string         `json:"command"`
	Skipped   []DBSkipped    `json:"skipped_backups,omitempty"`
}

// DBTableDelta compares row counts (not rows: an update to an existing row is not seen).
type DBTableDelta struct {
	Name       string `json:"name"`
	BackupRows int64  `json:"backup_rows"`
	// CurrentRows is the damaged database's count by the repair's estimate; -1 unknown.
	CurrentRows int64  `json:"current_rows"`
	EstimatedBy string `json:"estimated_by"`
	// RowsNewer is CurrentRows-BackupRows when positive: rows the restore would lose.
	RowsNewer int64 `json:"rows_newer"`
}

// dbRepairData is the repair step's journal payload (the tables are in --json).
type dbRepairData struct {
	Method       string `json:"method"`
	Clean        bool   `json:"clean"`
	Replaced     bool   `json:"replaced"`
	CorruptCopy  string `json:"corrupt_copy,omitempty"`
	SalvagedFile string `json:"salvaged_file,omitempty"`
	RowsSalvaged int64  `json:"rows_salvaged"`
	RowsLost     int64  `json:"rows_lost"`
}

// CheckDatabases checks each database, read-only. With Repair and a corrupt database it
// is a journaled procedure: lock, intent, recovery of an interrupted database run, a
// repair step per corrupt database and, when that is not clean and
// RestoreIfUnrepairable, a restore step; outcome. Nothing corrupt: no lock, no journal.
func CheckDatabases(ctx context.Context, opt DBCheckOptions, deps DBDeps) (*DBCheckResult, error) {
	res := &DBCheckResult{OK: true, DryRun: opt.DryRun && opt.Repair}
	var corrupt []int
	for _, db := range opt.Databases {
		path := opt.Config.DatabasePath(db)
		item := DBCheckItem{Name: db.Name}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if !opt.All {
				return res, fmt.Errorf("database %s: %s does not exist; check install_dir and databases ('cfrollback settings')", db.Name, path)
			}
			item.Status, item.Missing, item.Path = "missing", true, path
			res.Databases = append(res.Databases, item)
			continue
		}
		r, err := sqlitedb.Check(ctx, path, sqlitedb.CheckOptions{
			Quick: opt.Quick, Tables: opt.Tables, ForeignKeys: true, BusyTimeout: opt.Config.Database.BusyTimeout,
		})
		if c := Interruption(ctx); c != nil {
			return res, &StepError{Step: "check " + db.Name, Err: fmt.Errorf("%w during the check of %s", c, db.Name), Hint: "nothing was changed"}
		}
		if err != nil {
			return res, fmt.Errorf("database %s: %w", db.Name, err)
		}
		item.CheckResult, item.Status = r, "ok"
		if !r.OK {
			item.Status = "corrupt"
			if len(r.Problems) > 0 {
				corrupt = append(corrupt, len(res.Databases))
			}
		}
		res.Databases = append(res.Databases, item)
	}
	if opt.Repair && len(corrupt) > 0 {
		if err := repairDatabases(ctx, opt, deps, res, corrupt); err != nil {
			return res, err
		}
	}
	for _, item := range res.Databases {
		if item.Status == "corrupt" {
			res.OK = false
		}
	}
	return res, nil
}

func repairDatabases(ctx context.Context, opt DBCheckOptions, deps DBDeps, res *DBCheckResult, corrupt []int) error {
	d := newDBRunner(opt.Config, DBRepairCommand, opt.DryRun, opt.Args, "", deps)
	release, err := d.begin()
	if err != nil {
		if c := Interruption(ctx); c != nil {
			err = d.interruptedDB(c, "lock", "")
		}
		res.Outcome = outcomeOf(ctx, err, opt.DryRun)
		return err
	}
	defer release()
	res.RunID, res.Journal = d.runID, d.res.Journal
	changed := false
	err = func() error {
		var names []string
		for _, i := range corrupt {
			names = append(names, res.Databases[i].Name)
		}
		if err := d.intent(ctx, dbIntent{Databases: names}, "repair the corrupt database(s) "+strings.Join(names, ", ")); err != nil {
			return err
		}
		rec, err := d.recoverDB(ctx)
		res.Recovered = rec
		if err != nil {
			return err
		}
		for _, i := range corrupt {
			item := &res.Databases[i]
			db := opt.Databases[0]
			for _, c := range opt.Databases {
				if c.Name == item.Name {
					db = c
				}
			}
			rep, err := d.repairOne(ctx, opt, db, opt.Config.DatabasePath(db))
			if rep != nil {
				item.Repair = rep
				item.Status = repairStatus(rep)
				changed = changed || rep.Action == "repaired" || rep.Action == "restored"
			}
			if err != nil {
				return err
			}
		}
		return nil
	}()
	if c := Interruption(ctx); c != nil && err != nil && !changed {
		err = d.interruptedDB(c, stepOf(err), "")
	}
	if err != nil && changed && !errors.Is(err, ErrAfterStop) {
		var se *StepError
		hint := "a database was already repaired or restored (listed above; the originals are kept)"
		if errors.As(err, &se) && se.Hint != "" {
			hint = se.Hint + "; " + hint
		}
		err = &ChangedError{Step: stepOf(err), Err: err, Hint: hint}
	}
	res.Steps = d.steps
	res.Outcome = outcomeOf(ctx, err, opt.DryRun)
	if err == nil && !opt.DryRun {
		for _, item := range res.Databases {
			if item.Repair != nil && item.Repair.Action == "not_repaired" {
				res.Outcome = "not_repaired"
			}
		}
	}
	if opt.DryRun && err == nil {
		for _, s := range d.steps {
			res.Plan = append(res.Plan, s.Name+": "+s.Detail)
		}
	}
	return d.finish(ctx, dbOutcome{Outcome: res.Outcome, Kept: keptFiles(res)}, err)
}

// repairOne repairs a corrupt database and, when that is not clean, finds the newest
// good backup, says what restoring it would lose and, with RestoreIfUnrepairable,
// restores it.
func (d *dbRunner) repairOne(ctx context.Context, opt DBCheckOptions, db settings.DatabaseRef, path string) (*DBRepair, error) {
	busy := opt.Config.Database.BusyTimeout
	progress := func(s string) { d.info("%s: %s", db.Name, s) }
	var rep *DBRepair
	_, err := d.step(ctx, "repair "+db.Name, func(ctx context.Context) (string, any, error) {
		rr, err := d.fx.RepairDB(ctx, path, sqlitedb.RepairOptions{BusyTimeout: busy, Now: d.deps.Now, Progress: progress})
		if err != nil {
			return "", nil, fmt.Errorf("database %s: %w", db.Name, err)
		}
		rep = &DBRepair{RepairResult: rr, Action: "not_repaired"}
		data := dbRepairData{Method: rr.Method, Clean: rr.Clean, Replaced: rr.Replaced, CorruptCopy: rr.CorruptCopy,
			SalvagedFile: rr.SalvagedFile, RowsSalvaged: rr.RowsSalvaged, RowsLost: rr.RowsLost}
		switch {
		case d.opt.DryRun:
			rep.Action = "planned"
			return fmt.Sprintf("would repair %s: REINDEX of a copy when only indexes are damaged, else every table salvaged into a new file; a clean repair replaces it (the original kept as <name>-corrupt-<time>.db), any other leaves it as it is", path), nil, nil
		case rr.Replaced:
			rep.Action = "repaired"
			return fmt.Sprintf("repaired %s by %s: %d rows, none lost; the original is kept as %s", path, rr.Method, rr.RowsSalvaged, rr.CorruptCopy), data, nil
		}
		return fmt.Sprintf("not repaired: %d rows salvaged, %d lost; %s left as it was, the salvage kept as %s", rr.RowsSalvaged, rr.RowsLost, path, rr.SalvagedFile), data, nil
	})
	if err != nil {
		if errors.Is(err, sqlitedb.ErrInUse) {
			return rep, d.withHint(err, "nothing was changed; stop the service (or those processes) and run it again, or restore the newest good backup with 'cfrollback database restore --db "+db.Name+" --latest --stop-service'")
		}
		return rep, err
	}
	if rep.Action == "repaired" {
		return rep, nil
	}
	offer, err := restoreOffer(ctx, opt, db, path, rep.RepairResult)
	if err != nil {
		return rep, err
	}
	rep.Offer = offer
	if offer == nil || !opt.RestoreIfUnrepairable {
		return rep, nil
	}
	_, err = d.step(ctx, "restore "+db.Name, func(ctx context.Context) (string, any, error) {
		rr, err := d.fx.RestoreDB(ctx, offer.Path, path, sqlitedb.RestoreOptions{BusyTimeout: busy, Now: d.deps.Now, Progress: progress})
		if err != nil {
			return "", nil, err
		}
		if d.opt.DryRun {
			return fmt.Sprintf("if the repair is not clean: would restore %s from the newest good backup %s (the damaged file kept)", path, offer.Path), nil, nil
		}
		rep.Restore, rep.Action = &rr, "restored"
		kept := ""
		if rr.Failed != nil {
			kept = "; the damaged database is kept as " + rr.Failed.Path
		}
		return fmt.Sprintf("restored %s from %s%s", path, offer.Path, kept), rr, nil
	})
	switch {
	case err == nil:
		return rep, nil
	case errors.Is(err, ErrJournal) || Interruption(ctx) != nil:
		return rep, err
	case errors.Is(err, sqlitedb.ErrInUse):
		return rep, d.withHint(err, "the database was not replaced; stop the service and run it again")
	}
	rep.Error = err.Error()
	return rep, nil
}

func restoreOffer(ctx context.Context, opt DBCheckOptions, db settings.DatabaseRef, path string, rr sqlitedb.RepairResult) (*DBRestoreOffer, error) {
	var skipped []DBSkipped
	c, chk, ok, err := sqlitedb.NewestGood(ctx, DBCandidates(opt.Config, db.Name), opt.Config.Database.BusyTimeout, func(c sqlitedb.Candidate, reason string) {
		skipped = append(skipped, DBSkipped{Name: db.Name, Path: c.Path, Reason: reason})
	})
	if err != nil || !ok {
		return nil, err
	}
	o := &DBRestoreOffer{Path: c.Path, Time: c.Time, Skipped: skipped,
		Command: fmt.Sprintf("cfrollback database check --db %s --repair-if-needed --restore-if-unrepairable", db.Name)}
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
		td := DBTableDelta{Name: bt.Name, BackupRows: bt.Rows, CurrentRows: -1, EstimatedBy: sqlitedb.EstUnknown}
		if t, ok := current[bt.Name]; ok && t.Expected >= 0 {
			td.CurrentRows, td.EstimatedBy = t.Expected, t.Estimate
			td.RowsNewer = max(t.Expected-bt.Rows, 0)
		}
		o.Tables = append(o.Tables, td)
	}
	return o, nil
}

// repairStatus is the STATUS of a database after its repair.
func repairStatus(r *DBRepair) string {
	switch r.Action {
	case "repaired", "restored":
		return r.Action
	}
	return "corrupt"
}

func keptFiles(res *DBCheckResult) []string {
	var kept []string
	for _, item := range res.Databases {
		r := item.Repair
		switch {
		case r == nil:
		case r.CorruptCopy != "":
			kept = append(kept, r.CorruptCopy)
		case r.Restore != nil && r.Restore.Failed != nil:
			kept = append(kept, r.Restore.Failed.Path)
		}
		if r != nil && r.SalvagedFile != "" {
			kept = append(kept, r.SalvagedFile)
		}
	}
	return kept
}
