package cli

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/cfrollback/cfrollback/internal/ui"
)

// durationValue is a duration flag that takes days and weeks too (7d, 2w, 1d12h) and shows
// its default as it would be typed ("7d", not "168h0m0s"). Its Type is "duration", so
// negativeDurationFlag judges it like any other.
type durationValue struct{ p *time.Duration }

func (v durationValue) Set(s string) error {
	d, err := ui.ParseDuration(s)
	if err != nil {
		return err
	}
	*v.p = d
	return nil
}

func (v durationValue) String() string { return ui.FormatDuration(*v.p) }
func (v durationValue) Type() string   { return "duration" }

// durationVar defines a duration flag with days: the one way every command takes one.
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var(durationValue{p}, name, usage)
}
