package service

import (
	"context"
	"time"
)

// Fresh is how long after the manager's answer a status the caller has seen may stand in for
// the manager's own check before its stop or start command (see Informed). It widens the
// check-then-act window the contract always had (the state can change while the status
// command, a 'pm2 jlist' or a D-Bus read runs, 5 ms to a second, and before the command
// follows) by at most a second, which is what a warm emergency takes, under load, from its
// preflight's status to its stop and from its stop's confirmation to its start. A cold run
// (seconds of extraction) always checks again.
const Fresh = time.Second

// Seen is a status read through a Manager, and when the manager answered.
type Seen struct {
	Status Status
	At     time.Time
}

// Look reads m's status and stamps it with the time the manager answered.
func Look(ctx context.Context, m Manager) (Seen, error) {
	st, err := m.Status(ctx)
	return Seen{Status: st, At: time.Now()}, err
}

// says reports whether s is fresh (answered less than Fresh ago), was read through the manager of
// this kind and name, and says the service exists and is active (or not).
func (s Seen) says(kind, name string, active bool) bool {
	age := time.Since(s.At)
	return !s.At.IsZero() && age >= 0 && age < Fresh &&
		s.Status.Manager == kind && s.Status.Name == name && s.Status.Exists && s.Status.Active == active
}

// Informed is a Manager that can act on what its caller saw moments ago, sparing the status
// read before its stop or start command (a /bin/sh, a node process or a D-Bus round trip on
// the emergency's critical path). The promises of Stop and Start are unchanged: the stop
// command never runs on a service seen down, the start command never on one seen up.
//
//   - StopInformed is Stop. When seen is fresh and says the service is up, it is taken for the
//     check before the stop command. It returns the status that confirmed the service down.
//   - StartInformed is Start. When seen is fresh and says the service is down, it is taken for
//     the check before the start command. The caller passes only a Seen after which nothing it
//     did could have started the service (the emergency: its own stop's confirmation, with
//     only file steps between).
//
// Every manager of this package is Informed.
type Informed interface {
	Manager
	StopInformed(ctx context.Context, seen Seen) (Seen, error)
	StartInformed(ctx context.Context, seen Seen) error
}

// StopInformed stops the service as m.Stop does, through m's StopInformed when m is Informed.
// The Seen returned is zero when m does not say what confirmed the stop.
func StopInformed(ctx context.Context, m Manager, seen Seen) (Seen, error) {
	if im, ok := m.(Informed); ok {
		return im.StopInformed(ctx, seen)
	}
	return Seen{}, m.Stop(ctx)
}

// StartInformed starts the service as m.Start does, through m's StartInformed when m is
// Informed.
func StartInformed(ctx context.Context, m Manager, seen Seen) error {
	if im, ok := m.(Informed); ok {
		return im.StartInformed(ctx, seen)
	}
	return m.Start(ctx)
}
