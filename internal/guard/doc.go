// Package guard is `cfrollback guard`: a long-running watcher that samples
// the service as `monitor` does (assess.Sampler), judges the decision matrix
// (assess.Evaluate) against the recorded baseline on every evaluation and,
// when its Policy says so, runs the emergency rollback by itself.
//
// The package has three layers, each usable alone (a deploy gate can reuse
// the first two):
//
//   - Judge (policy.go) is pure: given an evaluation's severity, the time and
//     what guard remembers (Memory) and whether it is paused, it decides:
//     clear, watching, acted, would_have_acted, limit_reached, cooldown or
//     grace. It holds the consecutive-evaluation streak; Memory holds the
//     rest (actions in the window, the evidence cutoff, the last trigger).
//   - The state files (state.go) in state_dir, written with fsutil's durable
//     trusted write: guard-state.json (Memory and the last decision, written
//     by the running guard only) and guard-pause.json (written by `guard
//     pause` / `guard resume`, read by the guard on every evaluation).
//   - Run (guard.go) is the loop: lock, sample, evaluate, decide, act,
//     journal, notify. Every effect is a function in Deps.
//
// Acting twice on the same evidence is prevented by Memory.Cutoff: a sample
// taken at or before it is never evidence again. Guard moves it to the
// newest sample before it starts a rollback (written durably first, so a
// guard killed during the rollback and restarted does not act on those
// samples again) and to the rollback's end plus Policy.Grace afterwards.
package guard
