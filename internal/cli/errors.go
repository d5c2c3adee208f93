package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// usageError marks a usage problem (exit 2) whose message is already clear.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// hintedError carries the hint line printed under an error (and "hint" in JSON); the exit
// code is that of the error it wraps.
type hintedError struct {
	err  error
	hint string
}

func (e hintedError) Error() string { return e.err.Error() }
func (e hintedError) Unwrap() error { return e.err }

func withHint(err error, hint string) error { return hintedError{err: err, hint: hint} }

// exitError carries an exit code for a command that already printed its result.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// flagError is a bad flag or flag value (exit 2); in text mode the command's usage follows it.
type flagError struct{ err error }

func (e flagError) Error() string { return e.err.Error() }
func (e flagError) Unwrap() error { return e.err }

func isFlagError(err error) bool {
	var fe flagError
	return errors.As(err, &fe)
}

// sudoHint is said for any permission error met by a user who is not root.
const sudoHint = "permission denied: run it with sudo (cfrollback needs root to stop the service and write /opt, /var, /run)"

// isRoot is os.Geteuid() == 0; a variable so that tests can play an unprivileged user.
var isRoot = func() bool { return os.Geteuid() == 0 }

// exitCode is the one place errors become exit codes.
func exitCode(err error) int {
	var ue usageError
	var ee exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, lock.ErrLocked):
		return ExitLocked
	case errors.Is(err, runbook.ErrUnhealthy):
		return ExitUnhealthy
	case errors.Is(err, runbook.ErrAfterStop):
		return ExitAfterStop
	case errors.Is(err, runbook.ErrPreflight):
		return ExitPreflight
	case errors.Is(err, settings.ErrInvalid), errors.As(err, new(*settings.FileError)), errors.As(err, &ue), isFlagError(err):
		return ExitUsage
	}
	return ExitFailed
}

// errorResult is an error as JSON on stderr (--json).
type errorResult struct {
	Error      string       `json:"error"`
	ExitCode   int          `json:"exit_code"`
	Hint       string       `json:"hint,omitempty"`
	LockHolder *lock.Holder `json:"lock_holder,omitempty"`
}

// printError prints err on stderr: "cfrollback: ..." and a hint line for a person, one JSON
// object ({"error", "exit_code", "hint"}) under --json so that stdout stays empty or JSON.
// usage, when not empty, is the command's usage, printed after a flag error in text mode.
func printError(f *Factory, err error, code int, usage string) {
	hint := hintFor(err)
	if f.JSON {
		out := errorResult{Error: err.Error(), ExitCode: code, Hint: hint}
		var he *lock.HeldError
		if errors.As(err, &he) {
			out.LockHolder = he.Holder
		}
		_ = ui.JSON(f.IO.ErrOut, out)
		return
	}
	p := f.IO.ErrPalette()
	fmt.Fprintf(f.IO.ErrOut, "%s %s\n", p.Red("cfrollback:"), err)
	if hint != "" {
		fmt.Fprintf(f.IO.ErrOut, "%s %s\n", p.Yellow("hint:"), hint)
	}
	if usage != "" {
		fmt.Fprintf(f.IO.ErrOut, "\n%s", usage)
	}
}

func hintFor(err error) string {
	var he hintedError
	if errors.As(err, &he) && he.hint != "" {
		return he.hint
	}
	// Before any other hint: a lock path or a service manager is not what is wrong here. The
	// lock lives where only root writes (a lock file owned by root is refused to another
	// user, which is no EACCES), so any refused lock of a user who is not root means sudo.
	var se *runbook.StepError
	if !isRoot() && (errors.Is(err, fs.ErrPermission) || errors.As(err, &se) && se.Step == "lock") {
		return sudoHint
	}
	if errors.As(err, &se) && se.Hint != "" {
		return se.Hint
	}
	switch {
	case errors.Is(err, lock.ErrLocked):
		return "wait for that run to finish ('cfrollback history' shows it); a lock left by a killed run frees itself"
	case errors.Is(err, runbook.ErrUnhealthy):
		return "the failed install is kept; 'cfrollback undo RUN_ID' puts it back, 'cfrollback emergency --backup FILE' tries another backup"
	case errors.Is(err, runbook.ErrAfterStop):
		return "run 'cfrollback emergency' again: it reads the journal and completes or undoes this run"
	case errors.Is(err, runbook.ErrPreflight):
		return "nothing was changed and the service was not stopped; 'cfrollback emergency --dry-run' shows the plan"
	case errors.Is(err, settings.ErrInvalid):
		return "fix the setting named above; 'cfrollback settings' shows every value and where it came from"
	}
	return ""
}

// wantsJSON reports whether args ask for --json; Run needs it for an error met before the
// flags were parsed (an unknown command, a bad flag before --json).
func wantsJSON(args []string) bool {
	on := false
	for _, a := range args {
		switch {
		case a == "--":
			return on
		case a == "--json", a == "--jq", strings.HasPrefix(a, "--jq="):
			on = true
		case strings.HasPrefix(a, "--json="):
			v, err := strconv.ParseBool(strings.TrimPrefix(a, "--json="))
			on = err == nil && v
		}
	}
	return on
}
