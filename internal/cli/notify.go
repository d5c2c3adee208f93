package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/config"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// notifyEvent is what every webhook hears about, as the generic payload.
type notifyEvent struct {
	Event      string    `json:"event"` // rollback_complete, rollback_failed, test
	Service    string    `json:"service"`
	Host       string    `json:"host"`
	RunID      string    `json:"run_id,omitempty"`
	Outcome    string    `json:"outcome,omitempty"`
	Backup     string    `json:"backup,omitempty"`
	FailedDir  string    `json:"failed_dir,omitempty"`
	DowntimeMS int64     `json:"downtime_ms,omitempty"`
	Message    string    `json:"message"`
	Time       time.Time `json:"time"`
}

// delivery is one webhook's result.
type delivery struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	URL      string `json:"url"` // redacted
	OK       bool   `json:"ok"`
	Attempts int    `json:"attempts"`
	Status   int    `json:"status,omitempty"`
	Error    string `json:"error,omitempty"`
}

// notifier sends events to webhooks: each request bounded by Timeout, at
// most 1+Retries attempts with exponential backoff, secrets never logged.
type notifier struct {
	Client  *http.Client
	Timeout time.Duration
	Retries int
	Backoff time.Duration // before the second attempt; doubles each time
	Log     io.Writer     // one line per failed attempt; URLs redacted
}

func newNotifier(cfg config.NotifyConfig, log io.Writer) notifier {
	return notifier{Client: &http.Client{}, Timeout: cfg.Timeout, Retries: cfg.Retries, Backoff: 500 * time.Millisecond, Log: log}
}

// send delivers ev to every hook, one after another; it never returns an
// error: the caller decides what a failed delivery means.
func (n notifier) send(ctx context.Context, hooks []config.Webhook, ev notifyEvent) []delivery {
	out := make([]delivery, 0, len(hooks))
	for _, h := range hooks {
		kind := h.Kind
		if kind == "" {
			kind = "generic"
		}
		d := delivery{Name: h.Name, Kind: kind, URL: appconfig.RedactWebhookURL(h.URL)}
		body, err := payload(kind, ev)
		if err != nil {
			d.Error = err.Error()
			out = append(out, d)
			continue
		}
		wait := n.Backoff
		for attempt := 0; attempt <= n.Retries; attempt++ {
			if attempt > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
				wait *= 2
			}
			if ctx.Err() != nil {
				d.Error = "cancelled: " + ctx.Err().Error()
				break
			}
			d.Attempts++
			status, retry, err := n.post(ctx, h.URL, body)
			d.Status = status
			if err == nil {
				d.OK, d.Error = true, ""
				break
			}
			d.Error = strings.ReplaceAll(err.Error(), h.URL, d.URL)
			if n.Log != nil {
				fmt.Fprintf(n.Log, "notify %s (%s): attempt %d of %d failed: %s\n", h.Name, d.URL, d.Attempts, n.Retries+1, d.Error)
			}
			if !retry {
				break
			}
		}
		out = append(out, d)
	}
	return out
}

// post sends one request; retry says whether another attempt may help
// (no answer, 5xx, 429) or not (any other 4xx).
func (n notifier) post(ctx context.Context, rawURL string, body []byte) (status int, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cfrollback/"+Version)
	resp, err := n.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, true, fmt.Errorf("no answer within %s", n.Timeout)
		}
		return 0, true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return resp.StatusCode, true, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, false, fmt.Errorf("HTTP %d (not retried)", resp.StatusCode)
}

// payload renders ev for a kind of webhook.
func payload(kind string, ev notifyEvent) ([]byte, error) {
	switch kind {
	case "generic":
		return json.Marshal(ev)
	case "slack":
		return json.Marshal(map[string]string{"text": ev.Message})
	case "statuspage":
		status := "resolved"
		if ev.Event != "rollback_complete" {
			status = "investigating"
		}
		return json.Marshal(map[string]any{"incident": map[string]string{
			"name": ev.Service + ": " + strings.ReplaceAll(ev.Event, "_", " "), "status": status, "body": ev.Message}})
	}
	return nil, fmt.Errorf("unknown webhook kind %q", kind)
}

// eventFromRun describes a finished run for the webhooks.
func eventFromRun(res *runbook.Result) notifyEvent {
	host, _ := os.Hostname()
	ev := notifyEvent{Event: "rollback_complete", Service: res.Service, Host: host, RunID: res.RunID, Outcome: res.Outcome,
		FailedDir: res.FailedDir, DowntimeMS: res.DowntimeMS, Time: time.Now().UTC()}
	if res.Backup != nil {
		ev.Backup = res.Backup.Path
	}
	if res.Outcome == "ok" {
		ev.Message = fmt.Sprintf("%s on %s rolled back and healthy (run %s, downtime %s)", res.Service, host, res.RunID,
			ui.Duration(time.Duration(res.DowntimeMS)*time.Millisecond))
	} else {
		ev.Event = "rollback_failed"
		ev.Message = fmt.Sprintf("%s on %s: rollback %s (run %s): %s; see 'cfrollback history'", res.Service, host, res.Outcome, res.RunID, res.Error)
	}
	return ev
}

// notifyAfterRun is called once an emergency has finished: it tells the
// configured webhooks and never changes the run's outcome or exit code.
func notifyAfterRun(ctx context.Context, io *ui.IO, cfg config.Config, res *runbook.Result) {
	if len(cfg.Notify.Webhooks) == 0 || res == nil || res.DryRun || res.RunID == "" {
		return
	}
	n := newNotifier(cfg.Notify, io.ErrOut)
	// An interrupted run still deserves its message, within a bound.
	budget := time.Duration(cfg.Notify.Retries+1)*(cfg.Notify.Timeout+n.Backoff<<cfg.Notify.Retries) + time.Second
	if runbook.Interruption(ctx) != nil {
		// The operator stopped the run and expects it to end within a second: one
		// quick attempt per hook.
		n.Retries, budget = 0, 500*time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	for _, d := range n.send(ctx, cfg.Notify.Webhooks, eventFromRun(res)) {
		if !d.OK {
			fmt.Fprintf(io.ErrOut, "%s notification %s (%s) not delivered after %d attempts: %s; the rollback itself is unaffected\n",
				io.ErrPalette().Yellow("warning:"), d.Name, d.URL, d.Attempts, d.Error)
		}
	}
}

type notifyOptions struct {
	IO       *ui.IO
	JSON     bool
	Config   config.Config
	Event    string
	RunID    string
	Message  string
	Notifier notifier
}

func newNotifyCmd(f *Factory) *cobra.Command {
	opts := &notifyOptions{IO: f.IO}
	var test bool
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Tell the configured webhooks (generic, Slack, status page) about a rollback",
		Long: `Send an event to every webhook in notify.webhooks: generic (cfrollback's JSON),
slack ({"text": ...}) or statuspage (an incident). Each request is bounded by
notify.timeout and retried notify.retries times with exponential backoff on no
answer, 5xx or 429. URLs are logged as scheme://host only: paths and queries
often hold tokens.

'cfrollback emergency' notifies by itself when notify.webhooks is set; a failed
notification never fails the rollback. --test sends a test event to each webhook
and reports (the seed's 'test webhooks').` +
			exitStatusHelp("0  every webhook accepted the event", "1  some webhook did not (each is named)", "2  bad usage, no webhooks configured"),
		Example: `  cfrollback notify --event rollback_complete
  cfrollback notify --event rollback_complete --run 20250104T140000Z-1a2b --message "restored by on-call"
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
				opts.Event = "test"
			}
			if opts.Event == "" {
				return usageErrorf("give --event (rollback_complete, rollback_failed) or --test")
			}
			opts.JSON, opts.Config, opts.Notifier = f.JSON, cfg, newNotifier(cfg.Notify, f.IO.ErrOut)
			return runNotify(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Event, "event", "", "event name: rollback_complete, rollback_failed")
	cmd.Flags().StringVar(&opts.RunID, "run", "", "describe this run (default: the last emergency, rollback or undo)")
	cmd.Flags().StringVar(&opts.Message, "message", "", "the message (default: a summary of the run)")
	cmd.Flags().BoolVar(&test, "test", false, "send a test event to every webhook and report")
	return cmd
}

func runNotify(ctx context.Context, opts *notifyOptions) error {
	host, _ := os.Hostname()
	ev := notifyEvent{Event: opts.Event, Service: opts.Config.Service.Unit, Host: host, Time: time.Now().UTC(), Message: opts.Message}
	if opts.Event == "test" {
		ev.Message = orBlank(ev.Message, fmt.Sprintf("cfrollback test notification from %s", host))
	} else if run, err := rollbackRun(opts.Config.Journal, opts.RunID); err == nil {
		ev.RunID, ev.Outcome, ev.Backup, ev.DowntimeMS = run.ID, run.Outcome, run.Backup, run.DowntimeMS
		ev.Message = orBlank(ev.Message, fmt.Sprintf("%s on %s: run %s %s (downtime %s)", ev.Service, host, run.ID,
			orBlank(run.Outcome, "unfinished"), ui.Duration(time.Duration(run.DowntimeMS)*time.Millisecond)))
	} else if opts.RunID != "" {
		return usageError{err}
	} else {
		ev.Message = orBlank(ev.Message, fmt.Sprintf("%s on %s: %s", ev.Service, host, strings.ReplaceAll(opts.Event, "_", " ")))
	}
	res := opts.Notifier.send(ctx, opts.Config.Notify.Webhooks, ev)
	failed := 0
	for _, d := range res {
		if !d.OK {
			failed++
		}
	}
	if opts.JSON {
		if err := ui.JSON(opts.IO.Out, map[string]any{"event": ev, "ok": failed == 0, "deliveries": res}); err != nil {
			return err
		}
	} else {
		p := opts.IO.OutPalette()
		for _, d := range res {
			if d.OK {
				fmt.Fprintf(opts.IO.Out, "%s  %s (%s, %s): HTTP %d after %d attempt(s)\n", p.Green("OK  "), d.Name, d.Kind, d.URL, d.Status, d.Attempts)
			} else {
				fmt.Fprintf(opts.IO.Out, "%s  %s (%s, %s): %s after %d attempt(s)\n", p.Red("FAIL"), d.Name, d.Kind, d.URL, d.Error, d.Attempts)
			}
		}
	}
	if failed > 0 {
		return exitError{ExitFailed}
	}
	return nil
}
