package ui

import (
	"encoding/json"
	"fmt"
)

// Warnf prints a warning on stderr: "warning: ..." for a person, and under --json one line
// {"warning": "..."}, so that stderr stays a stream of JSON documents a script can read
// (jq reads them one after another; a failed run's error object comes last).
func (s *IO) Warnf(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if s.JSON {
		b, err := json.Marshal(map[string]string{"warning": msg})
		if err == nil {
			fmt.Fprintf(s.ErrOut, "%s\n", b)
			return
		}
	}
	fmt.Fprintf(s.ErrOut, "%s %s\n", s.ErrPalette().Yellow("warning:"), msg)
}
