package journal

import (
	"encoding/json"
	"time"
)

// Step statuses in StepRecord.
const (
	StepStarted = "start"
	StepDone    = "done"
	StepFailed  = "failed"
)

// Run summarizes the records of one run id.
type Run struct {
	ID      string
	Command string    // intent data "command"
	User    string    // intent data "user"
	Host    string    // intent data "host"
	Started time.Time // time of the intent, else of the run's first record
	Ended   time.Time // time of the outcome; zero if there is none
	Outcome string    // outcome data "outcome"; "" while unfinished
	Error   string    // outcome data "error"
	// Backup is outcome data "backup" if set, else intent data "backup".
	Backup     string
	DowntimeMS int64 // outcome data "downtime_ms"
	// Recovered is set when a "recovered" record carries this run's id: a
	// later run finished or undid it.
	Recovered bool
	Steps     []StepRecord
	Records   []Record
}

// StepRecord is one attempt at a step: its step_start and the step_done or
// step_failed that followed. A step started again after it finished is a
// new StepRecord.
type StepRecord struct {
	Name       string
	Status     string // StepStarted (never finished), StepDone or StepFailed
	Started    time.Time
	Ended      time.Time
	DurationMS int64  // data "duration_ms" if present, else Ended-Started
	Error      string // step_failed data "error"
}

// Unfinished reports whether the run recorded its intent but neither an
// outcome nor a recovery: it was interrupted.
func (r Run) Unfinished() bool {
	intent := false
	for _, rec := range r.Records {
		switch rec.Event {
		case EventOutcome, EventRecovered:
			return false
		case EventIntent:
			intent = true
		}
	}
	return intent
}

// Runs groups records by run id, in order of each id's first record, and
// summarizes each run. Data fields of the wrong type are ignored.
func Runs(recs []Record) []Run {
	index := map[string]int{}
	var runs []Run
	for _, rec := range recs {
		i, ok := index[rec.RunID]
		if !ok {
			i = len(runs)
			index[rec.RunID] = i
			runs = append(runs, Run{ID: rec.RunID, Started: rec.Time})
		}
		runs[i].add(rec)
	}
	return runs
}

func (r *Run) add(rec Record) {
	r.Records = append(r.Records, rec)
	d := decodeData(rec.Data)
	switch rec.Event {
	case EventIntent:
		r.Started = rec.Time
		setString(&r.Command, d, "command")
		setString(&r.User, d, "user")
		setString(&r.Host, d, "host")
		if r.Backup == "" {
			setString(&r.Backup, d, "backup")
		}
	case EventOutcome:
		r.Ended = rec.Time
		setString(&r.Outcome, d, "outcome")
		setString(&r.Error, d, "error")
		setString(&r.Backup, d, "backup")
		if v, ok := d["downtime_ms"]; ok {
			_ = json.Unmarshal(v, &r.DowntimeMS)
		}
	case EventRecovered:
		r.Recovered = true
	case EventGuard:
		// a guard session has no intent: its decisions name it (an emergency guard started
		// keeps its own intent's command, written after or before this record)
		if r.Command == "" {
			r.Command = "guard"
		}
	case "step_start":
		r.Steps = append(r.Steps, StepRecord{Name: rec.Step, Status: StepStarted, Started: rec.Time})
	case "step_done", "step_failed":
		s := r.openStep(rec.Step)
		if rec.Event == "step_done" {
			s.Status = StepDone
		} else {
			s.Status = StepFailed
			setString(&s.Error, d, "error")
		}
		s.Ended = rec.Time
		if v, ok := d["duration_ms"]; ok && json.Unmarshal(v, &s.DurationMS) == nil {
			break
		}
		if !s.Started.IsZero() {
			s.DurationMS = rec.Time.Sub(s.Started).Milliseconds()
		}
	}
}

// openStep returns the latest unfinished attempt at step, or a new one for
// an end without a start.
func (r *Run) openStep(name string) *StepRecord {
	for i := len(r.Steps) - 1; i >= 0; i-- {
		if r.Steps[i].Name == name {
			if r.Steps[i].Status == StepStarted {
				return &r.Steps[i]
			}
			break
		}
	}
	r.Steps = append(r.Steps, StepRecord{Name: name})
	return &r.Steps[len(r.Steps)-1]
}

func decodeData(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &m)
	}
	return m
}

func setString(dst *string, d map[string]json.RawMessage, key string) {
	var s string
	if v, ok := d[key]; ok && json.Unmarshal(v, &s) == nil && s != "" {
		*dst = s
	}
}

// LastUnfinished returns the most recent unfinished run of command ("" for
// any command), in the order Runs returns them.
func LastUnfinished(runs []Run, command string) (Run, bool) {
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Unfinished() && (command == "" || runs[i].Command == command) {
			return runs[i], true
		}
	}
	return Run{}, false
}
