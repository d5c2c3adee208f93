package cli

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestAliasFlags(t *testing.T) {
	for _, args := range [][]string{{"--files", "a/*.log"}, {"--files=a/*.log"}, {"--log-files", "a/*.log"}} {
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		var files string
		var yes bool
		fs.StringVar(&files, "log-files", "", "glob")
		fs.BoolVar(&yes, "yes", false, "do it")
		aliasFlags(fs, map[string]string{"files": "log-files", "confirm": "yes"})
		if err := fs.Parse(append(args, "--confirm")); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if files != "a/*.log" || !fs.Changed("log-files") || !fs.Changed("files") || !yes {
			t.Errorf("%q: files %q yes %v changed %v", args, files, yes, fs.Changed("log-files"))
		}
		usage := fs.FlagUsages()
		if strings.Contains(usage, "--files") || strings.Contains(usage, "--confirm") || !strings.Contains(usage, "--log-files") {
			t.Errorf("help shows an old name:\n%s", usage)
		}
	}

	// A normalization the set already had is kept, and a flag defined after the call is
	// reached by its alias too.
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	aliasFlags(fs, map[string]string{"api-url": "url"})
	url := fs.String("url", "", "")
	other := fs.String("max-errors", "", "")
	if err := fs.Parse([]string{"--api_url", "http://x", "--max_errors", "3"}); err != nil {
		t.Fatal(err)
	}
	if *url != "http://x" || *other != "3" {
		t.Errorf("url %q max-errors %q", *url, *other)
	}
	if err := fs.Parse([]string{"--nope", "1"}); err == nil {
		t.Error("an unknown flag parsed")
	}
}
