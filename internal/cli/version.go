package cli

import (
	"regexp"
	"runtime/debug"
	"sync"
	"time"
)

// The Makefile stamps Version, Commit and Date with -ldflags. A binary from plain `go build`
// or `go install` is not stamped, and would say "dev (commit unknown)" although the go command
// recorded the module version and the commit in it: fill in what the ldflags left at its
// default from that build info (`go version -m cfrollback` shows the same). A stamped binary
// (make build) skips it: reading the build info parses it, at every start of every command.
func init() {
	if Version != "dev" && Commit != "unknown" && Date != "unknown" {
		return
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		Version, Commit, Date = fromBuildInfo(bi, Version, Commit, Date)
	}
}

// pseudoVersion matches the end of a Go pseudo-version (v0.0.0-20260101120000-abcdef123456,
// what `go install ...@COMMIT` records): its UTC commit time and its 12-digit revision.
var pseudoVersion = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`[-.](\d{14})-([0-9a-f]{12})(\+incompatible)?(\+dirty)?$`)
})

// fromBuildInfo returns version, commit and date with each one still at its default ("dev",
// "unknown") replaced from bi: the main module's version (v0.3.0 from `go install
// ...@v0.3.0`; a pseudo-version from `go build` in a git checkout; "(devel)", shown as "dev",
// when the go command knew neither), vcs.revision (12 digits, +dirty when vcs.modified) and
// vcs.time. Values set with -ldflags always win.
func fromBuildInfo(bi *debug.BuildInfo, version, commit, date string) (string, string, string) {
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		vcs[s.Key] = s.Value
	}
	mainVersion := bi.Main.Version
	if version == "dev" && mainVersion != "" && mainVersion != "(devel)" {
		version = mainVersion
	}
	pseudo := pseudoVersion().FindStringSubmatch(mainVersion)
	if commit == "unknown" {
		switch rev := vcs["vcs.revision"]; {
		case rev != "":
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if vcs["vcs.modified"] == "true" {
				rev += "+dirty"
			}
			commit = rev
		case pseudo != nil:
			commit = pseudo[2] + pseudo[4]
		}
	}
	if date == "unknown" {
		if t := vcs["vcs.time"]; t != "" {
			date = t
		} else if pseudo != nil {
			if t, err := time.Parse("20060102150405", pseudo[1]); err == nil {
				date = t.UTC().Format(time.RFC3339)
			}
		}
	}
	return version, commit, date
}
