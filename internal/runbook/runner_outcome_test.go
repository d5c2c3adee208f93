package runbook

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
)

// TestEmergencyOutcomeHeardBeforeStandbyRefresh: Deps.Outcome hears the outcome once it is
// journaled, with the run lock let go, before the standby refresh after it begins (the
// webhooks learn the service is back without waiting for the refresh); the refresh follows.
func TestEmergencyOutcomeHeardBeforeStandbyRefresh(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken"})
	calls := 0
	var seen []string
	outcome := func(ctx context.Context, res *Result) {
		calls++
		recs, err := journal.ReadAll(e.cfg.Journal)
		if err != nil {
			t.Error(err)
		}
		for _, rec := range recs {
			seen = append(seen, rec.Event+":"+rec.Step)
		}
		if res.Outcome != "ok" || (res.Standby != nil && res.Standby.Refresh != nil) {
			t.Errorf("at the outcome: outcome %q, standby %+v", res.Outcome, res.Standby)
		}
		// the lock is free: a record that needs it goes in at once
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := AppendLocked(lctx, e.cfg, "cfrollback verify", "probe", journal.EventVerify, map[string]string{"ok": "yes"}); err != nil {
			t.Errorf("the run lock is still held at the outcome: %v", err)
		}
	}
	res, err := Emergency(context.Background(), Options{Config: e.cfg}, Deps{Service: e.m, Outcome: outcome})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("emergency: %v %+v", err, res)
	}
	got := strings.Join(seen, ",")
	if calls != 1 || !strings.Contains(got, journal.EventOutcome+":") || strings.Contains(got, "standby") {
		t.Fatalf("Outcome called %d times; the journal then: %s", calls, got)
	}
	if res.Standby == nil || res.Standby.Refresh == nil || res.Standby.Refresh.Outcome != "ok" {
		t.Fatalf("the refresh after the outcome: %+v", res.Standby)
	}
}

// TestRefusedRunDoesNotCallOutcome: a run refused at its lock records no outcome and does
// not call Deps.Outcome (the caller sends its notification itself).
func TestRefusedRunDoesNotCallOutcome(t *testing.T) {
	e := lockedEnv(t)
	called := false
	_, err := Emergency(context.Background(), Options{Config: e.cfg}, Deps{Service: e.m, Outcome: func(context.Context, *Result) { called = true }})
	if !errors.Is(err, lock.ErrLocked) || called {
		t.Fatalf("err = %v (want ErrLocked); Outcome called: %v", err, called)
	}
}
