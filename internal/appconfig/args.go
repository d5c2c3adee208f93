package appconfig

import "strings"

// RedactArgs hides the VALUE of `config set SECRET-KEY VALUE` and URL
// credentials in a command line (a procedure journals its command line:
// runbook.RunChange).
func RedactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = RedactString(a)
		if i > 0 && IsSecretKey(args[i-1]) && !strings.HasPrefix(args[i-1], "-") {
			out[i] = Redacted
		}
	}
	return out
}
