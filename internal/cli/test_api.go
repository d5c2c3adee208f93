package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
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
	// Resolver and RootCAs are nil in production; tests set them.
	Resolver appconfig.Resolver
	RootCAs  *x509.CertPool
}

func newTestAPICmd(f *Factory) *cobra.Command {
	opts := &apiConnOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "api-connection",
		Short: "DNS, TCP, TLS and HTTP checks of the app's API base URL, each timed",
		Long: `Check the way from this host to the API the app calls (claude.baseUrl in the app
config, or --url), one stage at a time, each with its time and verdict: DNS
lookup, TCP connect, TLS handshake with certificate verification (https), and
one GET over that connection. A failing stage names what to check and skips the
rest. No credential is sent or printed: userinfo and query are stripped, so
401/403/404 from the API count as reachable.` +
			exitStatusHelp("0  every stage passed", "1  a stage failed", "2  no URL (no app config and no --url)"),
		Example: `  cfrollback test api-connection --verbose
  cfrollback test api-connection --url https://api.anthropic.com/v1 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.URL == "" {
				cfg, err := f.loadConfig()
				if err != nil {
					return err
				}
				path := appConfigPath(cfg)
				u, err := baseURLFrom(path)
				if err != nil {
					return err
				}
				opts.URL = u
			}
			opts.JSON = f.JSON
			return runAPIConnection(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.URL, "url", "", "URL to test (default claude.baseUrl of the app config)")
	cmd.Flags().BoolVarP(&opts.Verbose, "verbose", "v", false, "print addresses, certificate and response details")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Second, "time allowed for each stage")
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

func runAPIConnection(ctx context.Context, opts *apiConnOptions) error {
	if !opts.JSON {
		fmt.Fprintf(opts.IO.ErrOut, "testing %s\n", appconfig.CleanURL(opts.URL))
	}
	res := appconfig.TestConnection(ctx, appconfig.ConnOptions{URL: opts.URL, Timeout: opts.Timeout,
		Resolver: opts.Resolver, RootCAs: opts.RootCAs})
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
		if res.OK {
			fmt.Fprintf(opts.IO.Out, "%s %s is reachable\n", p.Green("OK:"), res.URL)
		} else {
			fmt.Fprintf(opts.IO.Out, "%s %s is not reachable from this host\n", p.Red("FAIL:"), res.URL)
		}
	}
	if !res.OK {
		return exitError{ExitFailed}
	}
	return nil
}
