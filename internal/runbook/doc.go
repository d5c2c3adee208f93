// Package runbook is the step engine behind emergency, rollback and undo: a
// procedure is an ordered list of named steps; every step is journaled before
// and after it runs, everything that can fail runs before the service is
// stopped, and an interrupted run is finished or undone by the next one.
//
// Dry-run is the same code path: writes go through an effects value that,
// in dry-run, verifies instead of extracting and records instead of acting.
package runbook
