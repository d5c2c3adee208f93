package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cfrollback/cfrollback/internal/config"
	"github.com/cfrollback/cfrollback/internal/lock"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// Exit codes: a contract with runbooks (docs/EXIT_CODES.md).
const (
	ExitOK        = 0
	ExitFailed    = 1
	ExitUsage     = 2
	ExitPreflight = 3
	ExitAfterStop = 4
	ExitUnhealthy = 5
	ExitLocked    = 6
)

// Version information, set with -ldflags at build time.
var (
	Version = "dev"
	Commit  = "unknown"
	Date    = "unknown"
)

// Factory carries what every command needs.
type Factory struct {
	IO       *ui.IO
	Settings *settingsLoader
	// JSON is the global --json flag.
	JSON bool
}

// errUsage marks a usage problem (exit 2) whose message is already clear.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// errSilent carries an exit code for a command that already printed its result.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// negativeDurationFlag refuses a negative duration given to any flag (--timeout -5s would
// otherwise mean "no limit" to a context and "already expired" to another).
func negativeDurationFlag(cmd *cobra.Command) error {
	var err error
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if fl.Value.Type() != "duration" || err != nil {
			return
		}
		if d, perr := time.ParseDuration(fl.Value.String()); perr == nil && d < 0 {
			err = flagError{fmt.Errorf("--%s %s: must not be negative (0 means its default)", fl.Name, fl.Value)}
		}
	})
	return err
}

// Main runs cfrollback with os.Args and returns the exit code.
//
// SIGINT and SIGTERM cancel the run's context with a *runbook.Interrupt as its cause: every
// read and wait ends, external commands are killed with their process group, the lock is
// released, and the error says the run was interrupted. A second signal is not caught: it
// ends the process at once, as a kill would (a run killed after the stop is resumed by the
// next one).
func Main() int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-sigs:
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			cancel(&runbook.Interrupt{Signal: sig})
		case <-ctx.Done():
		}
	}()
	return Run(ctx, ui.System(), os.Args[1:])
}

// Run runs the command tree with args on the given streams.
func Run(ctx context.Context, io *ui.IO, args []string) int {
	f := &Factory{IO: io, Settings: newSettingsLoader()}
	root := newRootCmd(f)
	root.SetArgs(args)
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK // monitor and logs --follow end this way when interrupted
	}
	cause := runbook.Interruption(ctx)
	var ee exitError
	if errors.As(err, &ee) {
		if cause != nil {
			// The command printed what it had; say why it is incomplete.
			printError(f, fmt.Errorf("%w before it finished: the result above is incomplete", cause), ee.code)
		}
		return ee.code
	}
	if cause != nil && !errors.Is(err, runbook.ErrInterrupted) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	code := exitCode(err)
	if isFlagError(err) {
		fmt.Fprintf(io.ErrOut, "cfrollback: %v\n\n%s", err, cmd.UsageString())
		return ExitUsage
	}
	printError(f, err, code)
	return code
}

// exitCode is the one place errors become exit codes.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, lock.ErrLocked):
		return ExitLocked
	case errors.Is(err, runbook.ErrUnhealthy):
		return ExitUnhealthy
	case errors.Is(err, runbook.ErrAfterStop):
		return ExitAfterStop
	case errors.Is(err, runbook.ErrPreflight):
		return ExitPreflight
	case errors.Is(err, config.ErrInvalid), errors.As(err, &ue), isFlagError(err):
		return ExitUsage
	}
	return ExitFailed
}

func isFlagError(err error) bool {
	var fe flagError
	return errors.As(err, &fe)
}

type flagError struct{ err error }

func (e flagError) Error() string { return e.err.Error() }
func (e flagError) Unwrap() error { return e.err }

func printError(f *Factory, err error, code int) {
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
}

func hintFor(err error) string {
	var se *runbook.StepError
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
	case errors.Is(err, config.ErrInvalid):
		return "fix the setting named above; 'cfrollback settings' shows every value and where it came from"
	}
	return ""
}

func newRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "cfrollback",
		Short: "Roll a host-installed service back to a known-good backup, safely",
		Long: `cfrollback takes a host-installed service (Claude Flow by default: systemd unit
claude-flow or pm2 app claude-flow-assistant, installed in /opt/claude-flow) from
"a deploy just broke" back to "known-good and healthy" in seconds, without losing data.

It checks the backup before taking the service down, swaps directories atomically,
keeps the failed install, and journals every step.`,
		Example: `  cfrollback emergency              # the P0 rollback: newest good backup, now
  cfrollback emergency --dry-run    # the plan, nothing touched
  cfrollback health-check --critical-only
  cfrollback history
  cfrollback drill                  # practice on a throwaway sandbox`,
		Version:           fmt.Sprintf("%s (commit %s, built %s)", Version, Commit, Date),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return flagError{err} })
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return negativeDurationFlag(cmd) }
	pf := root.PersistentFlags()
	pf.StringVar(&f.Settings.file, "config", "", "settings file (default /etc/cfrollback/config.yaml if present)")
	pf.BoolVar(&f.JSON, "json", false, "print the result as JSON on stdout (errors as JSON on stderr)")
	f.Settings.bindFlags(pf)
	root.SetVersionTemplate("cfrollback {{.Version}}\n")
	root.AddCommand(
		newEmergencyCmd(f),
		newUndoCmd(f),
		newHealthCheckCmd(f),
		newHistoryCmd(f),
		newJournalCmd(f),
		newSettingsCmd(f),
		newDrillCmd(f),
		newDrillAppCmd(),
		newVersionCmd(f),
		newBackupCmd(f), newRollbackCmd(f),
		newDatabaseCmd(f), newMemoryCmd(f),
		newTestCmd(f), newLogsCmd(f),
		newVerifyCmd(f), newBaselineCmd(f), newAssessCmd(f), newMonitorCmd(f), newReportCmd(f), newNotifyCmd(f), newQuickrefCmd(f),
		newConfigCmd(f), newAgentsCmd(f),
		newStatusCmd(f), newCompletionCmd(f),
	)
	return root
}

func exitStatusHelp(lines ...string) string {
	return "\n\nEXIT STATUS\n  " + strings.Join(lines, "\n  ")
}
