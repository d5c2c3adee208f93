package cli

import (
	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/notify"
)

// newTestWebhooksCmd is the seed's "test webhooks": the same as
// 'cfrollback notify --test', under the test group where people look for it.
func newTestWebhooksCmd(f *Factory) *cobra.Command {
	opts := &notifyOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "Send a test event to every webhook in notify.webhooks and report",
		Long: `Send a test event to each webhook (generic, slack, statuspage) with the same
timeout, retries and backoff a real notification uses, and report each result.
The same as 'cfrollback notify --test'.` +
			exitStatusHelp("0  every webhook accepted the event", "1  some webhook did not (each is named)", "2  no webhooks configured"),
		Example: `  cfrollback test webhooks
  cfrollback test webhooks --dry-run   # the payloads, nothing sent
  cfrollback test webhooks --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			if len(cfg.Notify.Webhooks) == 0 {
				return usageErrorf("no webhooks: set notify.webhooks (name, url, kind generic|slack|statuspage)")
			}
			opts.Event = notify.Test
			opts.JSON, opts.Config, opts.Notifier = f.JSON, cfg, notify.New(cfg.Notify, f.IO.ErrOut, "cfrollback/"+Version)
			return runNotify(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the payload each webhook would get (URLs redacted); send nothing")
	return cmd
}
