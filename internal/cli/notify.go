package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/notify"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// newRunNotifier tells notify.webhooks about a run: pass it as the runbook's
// Deps.Notifier (rollback_started) and call Finished once the result is
// printed. With no webhooks set it sends nothing.
func newRunNotifier(io *ui.IO, cfg settings.Config) *notify.RunNotifier {
	return notify.NewRun(cfg.Notify, io.ErrOut, "cfrollback/"+Version, warnPrinter(io))
}

// runDeps are the effects of a rollback-type run (runbook.Emergency, Undo, RollbackVersion,
// and deploy's rollback) from the cli, whichever command starts it: the service manager,
// progress on stderr, and the webhooks: the start (rollback_started, undo_started) before the
// stop, and the outcome (rollback_complete / rollback_failed, undo_*) at the outcome, through
// Deps.Outcome: once it is journaled, before the standby refresh that follows a rollback
// (seconds on a large install). The caller still calls n.Finished(ctx, res) once the run
// returned: it sends the outcome of a run that recorded none (refused, or interrupted after
// its stop) and is a no-op after the outcome was sent. A notification never changes the
// outcome or the exit code.
func runDeps(io *ui.IO, asJSON bool, cfg settings.Config, m service.Manager) (runbook.Deps, *runNotice) {
	n := &runNotice{RunNotifier: newRunNotifier(io, cfg)}
	return runbook.Deps{Service: m, Events: progressPrinter(io, asJSON), Notifier: n, Outcome: n.atOutcome}, n
}

// runNotice is a run's RunNotifier that sends the outcome once: at the outcome (Deps.Outcome),
// or at Finished when the run recorded none.
type runNotice struct {
	*notify.RunNotifier
	told bool
}

// atOutcome is the run's Deps.Outcome: it sends the outcome now.
func (n *runNotice) atOutcome(ctx context.Context, res *runbook.Result) {
	n.told = true
	n.RunNotifier.Finished(ctx, res)
}

// Finished sends the outcome unless it went out at the outcome.
func (n *runNotice) Finished(ctx context.Context, res *runbook.Result) {
	if !n.told {
		n.RunNotifier.Finished(ctx, res)
	}
}

// changeDeps are the effects of a change (runbook.RunChange) run from the cli: its
// progress and warnings on stderr, its start and end told to notify.webhooks.
func changeDeps(io *ui.IO, asJSON bool, cfg settings.Config) runbook.ChangeDeps {
	return runbook.ChangeDeps{Events: progressPrinter(io, asJSON), Notifier: newRunNotifier(io, cfg)}
}

type notifyOptions struct {
	IO       *ui.IO
	JSON     bool
	Config   settings.Config
	Event    string
	RunID    string
	Message  string
	DryRun   bool
	Notifier *notify.Notifier
}

func newNotifyCmd(f *Factory) *cobra.Command {
	opts := &notifyOptions{IO: f.IO}
	var test bool
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Tell the configured webhooks (generic, Slack, status page) about a rollback",
		Long: `Send an event to every webhook in notify.webhooks: generic (cfrollback's JSON),
slack ({"text": ...}) or statuspage (an incident). The webhooks are sent to in
parallel. Each attempt is bounded by notify.timeout; no answer, 408, 429 and
5xx are retried up to notify.retries times with exponential backoff (500ms
doubling, at most 10s, with jitter), and a 429's or 503's Retry-After is
waited for up to 30s (longer: given up). Other 4xx are not retried. One
notification never takes more than 2 minutes; Ctrl-C ends it at once. URLs are
logged as scheme://host only: paths and queries often hold tokens.

emergency, rollback, assess --act, guard, deploy's rollback and undo notify
by themselves when notify.webhooks is set (rollback_started before the stop,
then rollback_complete / rollback_failed at the outcome, before the standby
refresh; or undo_started, undo_complete / undo_failed); every other change (config set/restore/reset, agents
import/reset, backup mark/prune, baseline record, database restore/repair)
sends change_started, then change_complete / change_failed, with its command.
A failed notification never fails the run. --test sends a test event to each webhook
and reports (the seed's 'test webhooks'); --dry-run prints what each webhook
would get and sends nothing.` +
			exitStatusHelp("0  every webhook accepted the event (with --dry-run: every payload renders)", "1  some webhook did not (each is named)", "2  bad usage, no webhooks configured"),
		Example: `  cfrollback notify --event rollback_complete
  cfrollback notify --event rollback_complete --run 20250104T140000Z-1a2b --message "restored by on-call"
  cfrollback notify --event rollback_failed --dry-run
  cfrollback notify --test --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			if len(cfg.Notify.Webhooks) == 0 {
				return usageErrorf("no webhooks: set notify.webhooks (name, url, kind generic|slack|statuspage)")
			}
			if test {
				opts.Event = notify.Test
			}
			if opts.Event == "" {
				return usageErrorf("give --event (rollback_complete, rollback_failed, ...) or --test")
			}
			opts.JSON, opts.Config, opts.Notifier = f.JSON, cfg, notify.New(cfg.Notify, f.IO.ErrOut, "cfrollback/"+Version)
			return runNotify(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Event, "event", "", "event name: rollback_started, rollback_complete, rollback_failed, undo_started, undo_complete, undo_failed, change_started, change_complete, change_failed")
	cmd.Flags().StringVar(&opts.RunID, "run", "", "describe this run (default: the last emergency, rollback or undo)")
	cmd.Flags().StringVar(&opts.Message, "message", "", "the message (default: a summary of the run)")
	cmd.Flags().BoolVar(&test, "test", false, "send a test event to every webhook and report")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the payload each webhook would get (URLs redacted); send nothing")
	return cmd
}

func runNotify(ctx context.Context, opts *notifyOptions) error {
	var ev notify.Event
	if opts.Event == notify.Test {
		ev = notify.TestEvent(opts.Config.Service.Unit, opts.Message)
	} else if run, err := rollbackRun(opts.Config.Journal, opts.RunID); err == nil {
		ev = notify.ByHand(opts.Event, opts.Config.Service.Unit, opts.Message, &run)
	} else if opts.RunID != "" {
		return usageError{err}
	} else {
		ev = notify.ByHand(opts.Event, opts.Config.Service.Unit, opts.Message, nil)
	}
	opts.Notifier.DryRun = opts.DryRun
	res := opts.Notifier.Send(ctx, opts.Config.Notify.Webhooks, ev)
	failed := 0
	for _, d := range res {
		if !d.OK {
			failed++
		}
	}
	if opts.JSON {
		out := map[string]any{"event": ev, "ok": failed == 0, "deliveries": res}
		if opts.DryRun {
			out["dry_run"] = true
		}
		if err := ui.JSON(opts.IO.Out, out); err != nil {
			return err
		}
	} else {
		printDeliveries(opts.IO, res)
	}
	if failed > 0 {
		return exitError{ExitFailed}
	}
	return nil
}

func printDeliveries(io *ui.IO, res []notify.Delivery) {
	p := io.OutPalette()
	for _, d := range res {
		switch {
		case d.DryRun && d.OK:
			var body bytes.Buffer
			if json.Indent(&body, d.Payload, "  ", "  ") != nil {
				body.Write(d.Payload)
			}
			fmt.Fprintf(io.Out, "%s  %s (%s, %s): POST, sends nothing\n  %s\n", p.Faint("DRY RUN"), d.Name, d.Kind, d.URL, strings.TrimSpace(body.String()))
		case d.OK:
			fmt.Fprintf(io.Out, "%s  %s (%s, %s): HTTP %d after %d attempt(s)\n", p.Green("OK  "), d.Name, d.Kind, d.URL, d.Status, d.Attempts)
		default:
			fmt.Fprintf(io.Out, "%s  %s (%s, %s): %s after %d attempt(s)\n", p.Red("FAIL"), d.Name, d.Kind, d.URL, d.Error, d.Attempts)
		}
	}
}
