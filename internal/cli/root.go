package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/settings"
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
	Settings *settings.Loader
	// JSON is the global --json flag.
	JSON bool
	// JQ is the global --jq expression; jq is stdout's filter once it is compiled.
	JQ string
	jq *ui.JQWriter
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
	f := &Factory{IO: io, Settings: &settings.Loader{}}
	root := newRootCmd(f)
	root.SetArgs(args)
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	strictUsage(root)
	cmd, err := root.ExecuteContextC(ctx)
	if code, done := jqFailed(f, err); done {
		return code
	}
	if err == nil {
		return ExitOK // monitor and logs --follow end this way when interrupted
	}
	// An error met before --json was parsed (an unknown command, a bad flag) is JSON too.
	f.JSON = f.JSON || wantsJSON(args)
	cause := runbook.Interruption(ctx)
	var ee exitError
	if errors.As(err, &ee) {
		if cause != nil {
			// The command printed what it had; say why it is incomplete.
			printError(f, fmt.Errorf("%w before it finished: the result above is incomplete", cause), ee.code, "")
		}
		return ee.code
	}
	if cause != nil && !errors.Is(err, runbook.ErrInterrupted) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	code := exitCode(err)
	usage := ""
	switch {
	case isFlagError(err):
		usage = cmd.UsageString()
		if hintFor(err) == "" {
			err = withHint(err, fmt.Sprintf("'%s --help' lists its flags", cmd.CommandPath()))
		}
	case code == ExitUsage && hintFor(err) == "":
		err = withHint(err, fmt.Sprintf("'%s --help' says how to use it", cmd.CommandPath()))
	}
	printError(f, err, code, usage)
	return code
}

func newRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "cfrollback",
		Short: "Roll a host-installed service back to a known-good backup, safely",
		Long: `cfrollback takes a host-installed service (Claude Flow by default: systemd unit
claude-flow or pm2 app claude-flow-assistant, installed in /opt/claude-flow) from
"a deploy just broke" back to "known-good and healthy" in seconds, without losing data.

It checks the backup before taking the service down, swaps directories atomically,
keeps the failed install, and journals every step.

Settings: /etc/cfrollback/config.yaml, or --config FILE, or CFROLLBACK_CONFIG=FILE;
then CFROLLBACK_<KEY> environment variables (backup.dir -> CFROLLBACK_BACKUP_DIR);
then flags. 'cfrollback settings' shows each value and where it came from. NO_COLOR
turns colour off.`,
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
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkFlags(cmd); err != nil {
			return err
		}
		carryConfig(f, cmd.Root())
		err := useJQ(f)
		f.IO.JSON = f.JSON
		return err
	}
	pf := root.PersistentFlags()
	pf.StringVar(&f.Settings.File, "config", "", "settings file (default /etc/cfrollback/config.yaml if present)")
	pf.BoolVar(&f.JSON, "json", false, "print the result as JSON on stdout (errors as JSON on stderr)")
	pf.StringVar(&f.JQ, "jq", "", "filter the JSON result with a jq `expression` (implies --json; strings print as plain text)")
	bindSettingsFlags(f.Settings, pf)
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
		newBackupCmd(f), newRollbackCmd(f), newDeployCmd(f), newStandbyCmd(f),
		newDatabaseCmd(f), newMemoryCmd(f),
		newTestCmd(f), newLogsCmd(f),
		newVerifyCmd(f), newBaselineCmd(f), newAssessCmd(f), newMonitorCmd(f), newGuardCmd(f), newReportCmd(f), newNotifyCmd(f), newQuickrefCmd(f),
		newConfigCmd(f), newAgentsCmd(f),
		newStatusCmd(f), newCompletionCmd(f),
	)
	groupCommands(root)
	return root
}

func exitStatusHelp(lines ...string) string {
	return "\n\nEXIT STATUS\n  " + strings.Join(lines, "\n  ")
}

// SplitExitStatus takes the EXIT STATUS block (exitStatusHelp) out of a command's long help:
// the man pages (internal/cli/manpage) give it a section of its own.
func SplitExitStatus(long string) (rest, exit string) {
	i := strings.Index(long, "\n\nEXIT STATUS\n")
	if i < 0 {
		return long, ""
	}
	body := long[i+len("\n\nEXIT STATUS\n"):]
	rest = long[:i]
	if j := strings.Index(body, "\n\n"); j >= 0 {
		rest += body[j:]
		body = body[:j]
	}
	return rest, body
}
