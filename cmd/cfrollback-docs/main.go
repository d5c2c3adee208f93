// Command cfrollback-docs writes cfrollback's man pages (one per command,
// from the cobra tree) and its bash, zsh and fish completions, for packaging:
//
//	cfrollback-docs OUTDIR   ->  OUTDIR/man1/*.1, OUTDIR/completions/{cfrollback.bash,_cfrollback,cfrollback.fish}
//
// The pages are dated SOURCE_DATE_EPOCH (reproducible-builds.org) or, without it, the time of
// the commit checked out, so the same commit always gives the same pages.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/cli"
	"github.com/cfrollback/cfrollback/internal/cli/manpage"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: cfrollback-docs OUTDIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "cfrollback-docs:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	man := filepath.Join(out, "man1")
	comp := filepath.Join(out, "completions")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	date, err := pageDate()
	if err != nil {
		return err
	}
	if err := manpage.Write(man, date); err != nil {
		return err
	}
	root := cli.RootCommand()
	files := map[string]func(string) error{
		"cfrollback.bash": func(p string) error { return root.GenBashCompletionFileV2(p, true) },
		"_cfrollback":     root.GenZshCompletionFile,
		"cfrollback.fish": func(p string) error { return root.GenFishCompletionFile(p, true) },
	}
	for name, gen := range files {
		if err := gen(filepath.Join(comp, name)); err != nil {
			return fmt.Errorf("completion %s: %w", name, err)
		}
	}
	return nil
}

// pageDate is SOURCE_DATE_EPOCH, else the commit time (git), else the build's commit time.
func pageDate() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", s)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	if out, err := exec.Command("git", "log", "-1", "--format=%ct").Output(); err == nil {
		if sec, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil {
			return time.Unix(sec, 0).UTC(), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, cli.Date); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("no date for the pages: set SOURCE_DATE_EPOCH (seconds since 1970), or run it in the git checkout")
}
