package cli

import (
	"errors"
	"fmt"

	"github.com/cfrollback/cfrollback/internal/ui"
)

// useJQ compiles --jq and puts its filter in front of stdout; --jq implies --json, as a
// filter needs JSON to work on. An expression that does not parse is a usage error before
// the command runs, so nothing has been done.
func useJQ(f *Factory) error {
	if f.JQ == "" {
		return nil
	}
	jw, err := ui.NewJQWriter(f.IO.Out, f.JQ)
	if err != nil {
		return flagError{err}
	}
	f.jq, f.JSON, f.IO.Out = jw, true, jw
	return nil
}

// jqFailed reports a --jq filter that failed on the command's result. The command ran: a
// command that failed on its own keeps its error and code (done is false, and the filter's
// error is printed first); one that succeeded exits 2, as the expression does not fit the
// result.
func jqFailed(f *Factory, cmdErr error) (code int, done bool) {
	if f.jq == nil || f.jq.Err() == nil {
		return 0, false
	}
	err := withHint(fmt.Errorf("%w (the command itself ran)", f.jq.Err()),
		"run it with --json alone to see the result the expression is applied to")
	if cmdErr != nil && !errors.Is(cmdErr, f.jq.Err()) {
		printError(f, err, ExitUsage, "")
		return 0, false
	}
	printError(f, err, ExitUsage, "")
	return ExitUsage, true
}
