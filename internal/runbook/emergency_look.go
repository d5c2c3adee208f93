package runbook

import (
	"context"

	"github.com/cfrollback/cfrollback/internal/service"
)

// pendingLook is a read of the service's state running in the background: the emergency
// begins it before its first journal record, and preflight waits for it where it used to
// read the state, so the user sees the same decisions in the same order.
type pendingLook struct {
	done   chan struct{}
	cancel context.CancelFunc
	seen   service.Seen
	err    error
}

func startLook(ctx context.Context, m service.Manager) *pendingLook {
	if m == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &pendingLook{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		p.seen, p.err = service.Look(ctx, m)
	}()
	return p
}

// wait returns the read's result; with no read pending (p nil) it reads the state now. The
// read runs under the run's context, so an interrupt ends it as it ended the read in place.
func (p *pendingLook) wait(ctx context.Context, m service.Manager) (service.Seen, error) {
	if p == nil {
		return service.Look(ctx, m)
	}
	<-p.done
	return p.seen, p.err
}

// abandon stops a read nobody will use and waits until it has ended (a status command is
// a process of this run: it is not left behind).
func (p *pendingLook) abandon() {
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
}
