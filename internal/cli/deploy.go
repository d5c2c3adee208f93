package cli

import (
	"context"
	"errors"
	goio "io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/notify"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// deploy's own exit codes (docs/EXIT_CODES.md).
const (
	ExitDeployRolledBack     = 20
	ExitDeployRollbackFailed = 21
	ExitDeployNotRolledBack  = 22
)

type deployOptions struct {
	IO      *ui.IO
	JSON    bool
	Config  settings.Config
	Command []string
	DryRun  bool
	Args    []string
	// NewService builds the service manager; tests replace it.
	NewService func(ctx context.Context, cfg settings.Config) (service.Manager, error)
	// PrintError prints an error as root does (JSON on stderr under --json), for the exit
	// codes 20-22 that deploy returns after printing its result.
	PrintError func(err error, code int)
}

func newDeployCmd(f *Factory) *cobra.Command {
	opts := &deployOptions{IO: f.IO, NewService: newServiceManager}
	cmd := &cobra.Command{
		Use:   "deploy [flags] -- CMD [ARGS...]",
		Short: "Run a deploy command under a health gate; roll back by itself if it fails",
		Long: `helm's --atomic for a plain host and any deploy script:

  1. lock (held to the end, the rollback included) and journal the intent;
     refuse while the journal holds an interrupted emergency or rollback, or
     a deploy or rollback --to-version killed after it changed the install
  2. a backup of the running install younger than deploy.backup_max_age that
     verifies, or a new one (made and verified now); a baseline if there is none
  3. run CMD (no shell: give 'sh -c "..."' for one), its output passed through
     (to stderr under --json); its process group is killed on Ctrl-C and after
     deploy.command_timeout. A non-zero exit fails the deploy.
  4. the health gate: deploy.gate_passes consecutive passes of the emergency's
     probes (service active, health.url 2xx) within deploy.gate_timeout
  5. the watch: deploy.watch long, a sample every deploy.watch_interval, the
     decision matrix judged after each with stricter thresholds than assess's
     (deploy.response_factor, error_rate, network_rate, restarts); a severity
     in deploy.fail_on (P0, P1, P2) fails the deploy
  6. a failure in 3-5 is rolled back by the emergency procedure to the backup
     of step 2, and the evidence printed and journaled ('cfrollback history')

A failed CMD is always rolled back, even when the service still looks healthy:
it may have changed files before it failed. Ctrl-C during 3-5 stops CMD and the
deploy and does NOT roll back: the command to do it is printed. --dry-run prints
the plan through the same code and runs nothing. Settings: docs/DEPLOY.md.` +
			exitStatusHelp(
				"0  deployed: the gate and the watch passed (also --dry-run)",
				"2  bad usage (no --, no CMD) or invalid settings",
				"3  nothing changed, CMD not run: no backup could be made or verified, or an",
				"   interrupted emergency, deploy or rollback --to-version is unresolved (the",
				"   error names the run and the command that resolves it)",
				"6  another cfrollback run holds the lock",
				"20 the deploy failed and was rolled back; the old version is healthy",
				"21 the deploy failed and the rollback failed too (see its outcome)",
				"22 interrupted after CMD began: not rolled back"),
		Example: `  cfrollback deploy -- ./deploy.sh v2.1.0
  cfrollback deploy --dry-run -- npm install --prefix /opt/claude-flow claude-flow@2.0.1
  cfrollback deploy --json -- sh -c 'git pull && systemctl restart claude-flow'
  CFROLLBACK_DEPLOY_WATCH=0 cfrollback deploy -- ./deploy.sh   # gate only`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch dash := cmd.ArgsLenAtDash(); {
			case dash < 0:
				return usageErrorf("give the deploy command after --: cfrollback deploy -- CMD [ARGS...]")
			case dash > 0:
				return usageErrorf("%q comes before --: give flags before it and the deploy command after it", args[0])
			case len(args) == 0 || strings.TrimSpace(args[0]) == "":
				return usageErrorf("no deploy command after --: cfrollback deploy -- CMD [ARGS...]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			opts.Config, opts.JSON, opts.Command, opts.Args = cfg, f.JSON, args, os.Args[1:]
			opts.PrintError = func(err error, code int) { printError(f, err, code, "") }
			return runDeploy(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan (which backup, the gate, the watch) and run nothing")
	return cmd
}

func runDeploy(ctx context.Context, opts *deployOptions) error {
	cfg := opts.Config
	m, err := opts.NewService(ctx, cfg)
	if err != nil {
		return err
	}
	emDeps, emNotifier := runDeps(opts.IO, opts.JSON, cfg, m)
	dn := notify.NewDeploy(cfg.Notify, opts.IO.ErrOut, "cfrollback/"+Version, warnPrinter(opts.IO))
	dd := runbook.DeployDeps{
		Deps: emDeps, Stdout: opts.IO.Out, Stderr: opts.IO.ErrOut, Notifier: dn,
		Snapshotter: sqliteSnapshotter{busy: cfg.Database.BusyTimeout}, DBChecker: sqliteChecker{busy: cfg.Database.BusyTimeout},
		RecordBaseline: func(ctx context.Context) error { return deployBaseline(ctx, opts.IO, cfg, m) },
		Data: func(ctx context.Context) []health.Check {
			return append([]health.Check{health.CheckAppConfig(cfg.InstallDir)}, healthDatabases{cfg: cfg}.CheckDatabases(ctx)...)
		},
	}
	if opts.JSON {
		dd.Stdout = opts.IO.ErrOut // stdout is the result's
	}
	if !opts.DryRun {
		sm, _ := newSampler(ctx, &monitorOptions{IO: opts.IO, Config: cfg, Service: m, Now: time.Now,
			CPUSample: min(200*time.Millisecond, cfg.Deploy.WatchInterval/2)})
		dd.Sampler = sm
	}
	res, err := runbook.Deploy(ctx, runbook.DeployOptions{Config: cfg, Command: opts.Command, DryRun: opts.DryRun, Args: opts.Args,
		KillAt: os.Getenv("CFROLLBACK_TEST_KILL_AT")}, dd)
	err = deployExit(printDeploy(opts.IO, opts.JSON, res, err), opts.PrintError)
	if res != nil && res.Rollback != nil {
		emNotifier.Finished(ctx, res.Rollback)
	}
	dn.Finished(ctx, res) // after the result is printed; never changes the exit code
	return err
}

// deployBaseline is 'baseline record' with its defaults; what it recorded is not printed
// (the deploy's baseline step says so), its warnings are.
func deployBaseline(ctx context.Context, io *ui.IO, cfg settings.Config, m service.Manager) error {
	quiet := *io
	quiet.Out = goio.Discard
	return runBaselineRecord(ctx, &baselineOptions{IO: &quiet, JSON: true, Config: cfg, Service: m, Samples: 20,
		Interval: 100 * time.Millisecond, Now: time.Now})
}

// deployExit maps the deploy's outcomes to its exit codes, printing the error with its hint;
// other errors keep theirs.
func deployExit(err error, printErr func(error, int)) error {
	for _, o := range []struct {
		sentinel error
		code     int
		hint     string
	}{
		{runbook.ErrDeployRollbackFailed, ExitDeployRollbackFailed, "the service may be down: 'cfrollback health-check --critical-only'; the rollback's own result above says what failed and what to run"},
		{runbook.ErrDeployRolledBack, ExitDeployRolledBack, "the old version runs again; the evidence is above, in 'cfrollback history' and the journal"},
		{runbook.ErrDeployNotRolledBack, ExitDeployNotRolledBack, "the new version may be half deployed; the 'next:' lines above name the backup to roll back to"},
	} {
		if errors.Is(err, o.sentinel) {
			if printErr != nil {
				printErr(withHint(err, o.hint), o.code)
			}
			return exitError{o.code}
		}
	}
	var se *runbook.StepError
	if errors.Is(err, runbook.ErrPreflight) && (!errors.As(err, &se) || se.Hint == "") {
		return withHint(err, "nothing was changed and the deploy command was not run; 'cfrollback deploy --dry-run -- CMD' shows the plan")
	}
	return err
}
