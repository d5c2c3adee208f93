package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/ui"
)

type apiConnOptions struct {
	IO      *ui.IO
	JSON    bool
	URL     string
	Verbose bool
	Timeout time.Duration
	// APIKey is the key the app sends ("" for none, or with --no-key); KeySource
	// names where it came from. The key itself is never printed.
	APIKey    string
	KeySource string
	NoKey     bool
	// Resolver and RootCAs are nil in production; tests set them.
	Resolver appconfig.Resolver
	RootCAs  *x509.CertPool
}

func newTestAPICmd(f *Factory) *cobra.Command {
	opts := &apiConnOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "api-connection",
		Short: "DNS, TCP, TLS and HTTP checks of the app's API base URL and key, each timed",
		Long: `Check the way from this host to the API the app calls (claude.baseUrl in the app
config, or --url), one stage at a time, each with its time and verdict: DNS
lookup, TCP connect, TLS handshake with certificate verification (https), and
one GET over that connection. A failing stage names what to check and skips the
rest. Userinfo and query are stripped from the URL.

The API key is the one the app uses: ANTHROPIC_API_KEY in this command's
environment (the app lets it override the config), else claude.apiKey of the
app config. When one is set, the GET goes to URL/models with the key (x-api-key),
and a 401 or 403 FAILS: the API rejected the key. The key is never printed, and
never sent over plain http except to a loopback address. With no key (or
--no-key), 401/403/404 count as reachable, a pass: the service may get its key
from its own environment, which this command cannot see.` +
			exitStatusHelp("0  every stage passed (with a key: the API accepted it, or the answer did not say)",
				"1  a stage failed, or the API rejected the key (HTTP 401/403)",
				"2  no URL (no app config and no --url)"),
		Example: `  cfrollback test api-connection --verbose
  cfrollback test api-connection --url https://api.anthropic.com/v1 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil && opts.URL == "" {
				return err
			}
			path := ""
			if err == nil {
				path = appConfigPath(cfg)
			}
			if opts.URL == "" {
				u, err := baseURLFrom(path)
				if err != nil {
					return err
				}
				opts.URL = u
			}
			if !opts.NoKey {
				opts.APIKey, opts.KeySource = appconfig.APIKey(path, os.Getenv)
			}
			opts.JSON = f.JSON
			return runAPIConnection(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.URL, "url", "", "URL to test (default claude.baseUrl of the app config)")
	cmd.Flags().BoolVar(&opts.Verbose, "verbose", false, "print addresses, certificate and response details")
	durationVar(cmd.Flags(), &opts.Timeout, "timeout", 5*time.Second, "time allowed for each stage")
	cmd.Flags().BoolVar(&opts.NoKey, "no-key", false, "send no API key: test reachability only")
	return cmd
}

// baseURLFrom reads claude.baseUrl from the app config.
func baseURLFrom(path string) (string, error) {
	content, _, err := appconfig.ReadSource(path)
	if err != nil {
		return "", usageErrorf("no URL to test: cannot read the app config (%v); pass --url https://HOST/v1", err)
	}
	doc, err := appconfig.Parse(content)
	if err != nil {
		return "", fmt.Errorf("%s: %w; pass --url, or fix the file ('cfrollback config validate')", path, err)
	}
	raw, ok := doc.Get("claude.baseUrl")
	var u string
	if ok {
		_ = json.Unmarshal(raw, &u)
	}
	if u == "" {
		return "", usageErrorf("no URL to test: claude.baseUrl is not set in %s; pass --url https://HOST/v1", path)
	}
	return u, nil
}

// testConnection is appconfig.TestConnection, returning as soon as ctx ends: its http stage
// reads the raw connection under the per-stage deadline only, which a Ctrl-C must not have
// to wait out. The abandoned check ends with the process.
func testConnection(ctx context.Context, opt appconfig.ConnOptions) (appconfig.ConnResult, error) {
	done := make(chan appconfig.ConnResult, 1)
	go func() { done <- appconfig.TestConnection(ctx, opt) }()
	select {
	case res := <-done:
		return res, nil
	case <-ctx.Done():
		return appconfig.ConnResult{URL: appconfig.CleanURL(opt.URL)}, context.Cause(ctx)
	}
}

func runAPIConnection(ctx context.Context, opts *apiConnOptions) error {
	if !opts.JSON {
		fmt.Fprintf(opts.IO.ErrOut, "testing %s\n", appconfig.CleanURL(opts.URL))
	}
	res, err := testConnection(ctx, appconfig.ConnOptions{URL: opts.URL, Timeout: opts.Timeout,
		APIKey: opts.APIKey, KeySource: opts.KeySource, Resolver: opts.Resolver, RootCAs: opts.RootCAs})
	if err != nil {
		return fmt.Errorf("test %s: %w", appconfig.CleanURL(opts.URL), err)
	}
	if opts.JSON {
		if !opts.Verbose {
			for i := range res.Stages {
				res.Stages[i].Verbose = nil
			}
		}
		if err := ui.JSON(opts.IO.Out, res); err != nil {
			return err
		}
	} else {
		p := opts.IO.OutPalette()
		for _, s := range res.Stages {
			verdict := map[string]string{"ok": p.Green("PASS"), "fail": p.Red("FAIL"), "skipped": p.Faint("SKIP")}[s.Status]
			fmt.Fprintf(opts.IO.Out, "%-4s  %-4s  %9s  %s\n", verdict, s.Name, fmt.Sprintf("%.1fms", s.DurationMS), s.Detail)
			if opts.Verbose {
				for _, v := range s.Verbose {
					fmt.Fprintf(opts.IO.Out, "                       %s\n", v)
				}
			}
		}
		switch {
		case res.KeyCheck == "rejected":
			fmt.Fprintf(opts.IO.Out, "%s %s is reachable but rejected the API key from %s\n", p.Red("FAIL:"), res.URL, opts.KeySource)
		case res.OK && res.KeyCheck == "accepted":
			fmt.Fprintf(opts.IO.Out, "%s %s is reachable and accepted the API key from %s\n", p.Green("OK:"), res.URL, opts.KeySource)
		case res.OK:
			fmt.Fprintf(opts.IO.Out, "%s %s is reachable\n", p.Green("OK:"), res.URL)
		default:
			fmt.Fprintf(opts.IO.Out, "%s %s is not reachable from this host\n", p.Red("FAIL:"), res.URL)
		}
	}
	if !res.OK {
		return exitError{ExitFailed}
	}
	return nil
}
