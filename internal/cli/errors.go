package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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

// printError prints err on stderr: "cfrollback: ..." and a hint line for a person, one JSON
// object ({"error", "exit_code", "hint"}) under --json so that stdout stays empty or JSON.
// usage, when not empty, is the command's usage, printed after a flag error in text mode.
func printError(f *Factory, err error, code int, usage string) {
	hint := hintFor(err)
	if f.JSON {
		out := map[string]any{"error": err.Error(), "exit_code": code}
		if hint != "" {
			out["hint"] = hint
		}
		var he *lock.HeldError
		if errors.As(err, &he) && he.Holder != nil {
			out["lock_holder"] = he.Holder
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

// checkFlags runs before every command: what cobra would otherwise report later as a plain
// error (a required flag, a flag group) or not at all (a negative duration) is a flag error.
func checkFlags(cmd *cobra.Command) error {
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return flagError{err}
	}
	if err := cmd.ValidateFlagGroups(); err != nil {
		return flagError{err}
	}
	return negativeDurationFlag(cmd)
}

// negativeDurationFlag refuses a negative duration given to any flag (--timeout -5s would
// otherwise mean "no limit" to a context and "already expired" to another).
func negativeDurationFlag(cmd *cobra.Command) error {
	var err error
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if fl.Value.Type() != "duration" || err != nil {
			return
		}
		if d, perr := ui.ParseDuration(fl.Value.String()); perr == nil && d < 0 {
			err = flagError{fmt.Errorf("--%s %s: must not be negative (0 means its default)", fl.Name, fl.Value)}
		}
	})
	return err
}

// strictUsage makes every usage mistake in the tree under c an error with exit 2: an
// unknown command, at the top or under a group (cobra would print the group's help and
// exit 0), and a missing or extra argument (cobra's own errors are plain, exit 1).
func strictUsage(c *cobra.Command) {
	if !c.HasParent() {
		strictHelp(c)
	}
	switch {
	case c.HasSubCommands() && !c.Runnable():
		// A group alone shows its help, as before (under --json, where help is no answer, it
		// is an error); a group with words after it is an error.
		c.Args = unknownSubcommand
		c.RunE = func(cmd *cobra.Command, _ []string) error {
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				return withHint(usageErrorf("%s needs a command", cmd.CommandPath()), commandsHint(cmd))
			}
			return cmd.Help()
		}
	case c.HasSubCommands() && c.Args == nil:
		c.Args = unknownSubcommand
	case c.Args != nil: // a command of its own, also a group that runs and takes arguments
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			if err == nil || errors.As(err, new(usageError)) {
				return err
			}
			if !strings.Contains(err.Error(), cmd.CommandPath()) {
				err = fmt.Errorf("%s: %w", cmd.CommandPath(), err)
			}
			return withHint(usageError{err},
				fmt.Sprintf("usage: %s; '%s --help' says more", cmd.UseLine(), cmd.CommandPath()))
		}
	}
	for _, sub := range c.Commands() {
		strictUsage(sub)
	}
}

func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	hint := commandsHint(cmd)
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, set only where it prints suggestions
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		hint = fmt.Sprintf("did you mean %q? %s", strings.Join(s, `" or "`), hint)
	}
	return withHint(usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath()), hint)
}

// commandsHint lists the commands of a group.
func commandsHint(cmd *cobra.Command) string {
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return fmt.Sprintf("%s commands: %s; '%s --help' says more", cmd.CommandPath(), strings.Join(names, ", "), cmd.CommandPath())
}

// strictHelp makes 'cfrollback help TOPIC' with an unknown topic a usage error too (cobra
// prints "Unknown help topic" and exits 0, or with Args set on the root, the root's help).
func strictHelp(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	for _, h := range root.Commands() {
		if h.Name() != "help" {
			continue
		}
		h.Run = nil
		h.RunE = func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			switch {
			case err != nil:
				return usageError{err}
			case len(rest) > 0 && cmd.HasSubCommands():
				return unknownSubcommand(cmd, rest)
			case len(rest) > 0:
				return withHint(usageErrorf("unknown help topic %q: %s has no commands", strings.Join(args, " "), cmd.CommandPath()),
					fmt.Sprintf("'%s --help'", cmd.CommandPath()))
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		}
	}
}
