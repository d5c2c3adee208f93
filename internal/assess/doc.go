// Package assess is the seed's rollback decision matrix as pure functions:
// given what was measured just now (service status, database and app-config
// rows, latency samples) and the series of samples `cfrollback monitor`
// kept, Evaluate says which conditions are met, with their numbers, and the
// severity (P0..P3), action and deadline that follow.
//
// Missing data is never a pass. A condition without enough samples, without
// a baseline, or whose window the series does not cover is Inconclusive,
// and the assessment says what is missing. Every threshold is a field of
// Thresholds so tests (and operators) can scale windows down.
//
// The package also owns the two small state files these judgements read:
// the baseline (<state_dir>/baseline.json, written durably) and the monitor
// sample store (<state_dir>/monitor.jsonl, bounded to a retention window).
package assess
