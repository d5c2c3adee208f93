package service

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// systemctlBackend drives the unit through the systemctl CLI. It is only used when the system
// bus cannot be reached; its errors say so.
type systemctlBackend struct {
	unit   string
	run    runner
	busErr error // why the bus was not used
}

func (b *systemctlBackend) close() {}

func (b *systemctlBackend) props(ctx context.Context) (unitState, error) {
	// Key=value output: with --value systemctl prints values in its own order, not ours.
	out, err := b.run.Run(ctx, nil, "systemctl", "show", "--property=LoadState",
		"--property=ActiveState", "--property=SubState", "--property=Result",
		"--property=MainPID", "--property=NRestarts", "--", b.unit)
	if err != nil {
		return unitState{}, b.wrap("systemctl show", withOutput(err, out))
	}
	u, err := parseSystemctlShow(out)
	if err != nil {
		return unitState{}, b.wrap("systemctl show", err)
	}
	return u, nil
}

func (b *systemctlBackend) stopJob(ctx context.Context) error     { return b.ctl(ctx, "stop") }
func (b *systemctlBackend) startJob(ctx context.Context) error    { return b.ctl(ctx, "start") }
func (b *systemctlBackend) resetFailed(ctx context.Context) error { return b.ctl(ctx, "reset-failed") }

// ctl runs a systemctl verb; stop and start block until the job finishes.
func (b *systemctlBackend) ctl(ctx context.Context, verb string) error {
	out, err := b.run.Run(ctx, nil, "systemctl", "--no-ask-password", verb, "--", b.unit)
	if err != nil {
		return b.wrap("systemctl "+verb, withOutput(err, out))
	}
	return nil
}

func (b *systemctlBackend) wrap(what string, err error) error {
	return fmt.Errorf("%s (used because the system bus is unreachable: %v): %w", what, b.busErr, err) //nolint:errorlint // the bus error explains the fallback; only err is the cause
}

// parseSystemctlShow reads `systemctl show --property=...` output (KEY=VALUE lines).
func parseSystemctlShow(out []byte) (unitState, error) {
	var u unitState
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		var err error
		switch key {
		case "LoadState":
			u.LoadState = value
		case "ActiveState":
			u.ActiveState = value
		case "SubState":
			u.SubState = value
		case "Result":
			u.Result = value
		case "MainPID":
			u.MainPID, err = showInt(value)
		case "NRestarts":
			u.NRestarts, err = showInt(value)
		}
		if err != nil {
			return unitState{}, fmt.Errorf("systemctl show: %s=%q is not a number", key, value)
		}
	}
	if err := sc.Err(); err != nil {
		return unitState{}, fmt.Errorf("systemctl show: %w", err)
	}
	if u.LoadState == "" || u.ActiveState == "" {
		return unitState{}, fmt.Errorf("systemctl show printed no LoadState/ActiveState: %q", outputTail(out))
	}
	return u, nil
}

// showInt parses a numeric property; systemctl prints "" or "[not set]" for absent ones.
func showInt(v string) (int, error) {
	if v == "" || v == "[not set]" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	return int(n), err
}
