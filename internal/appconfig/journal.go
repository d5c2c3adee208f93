package appconfig

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/lock"
)

// Journaled runs one change the way every cfrollback run is done: it takes
// the lock at lockPath (a *lock.HeldError when another run holds it),
// journals an intent, runs change and journals its outcome, and returns the
// run id. Neither intent nor what change returns may hold a secret value:
// they are journaled as they are (errors and the command line are
// redacted here).
func Journaled(lockPath, journalPath, command string, intent map[string]any, change func() (map[string]any, error)) (string, error) {
	now := time.Now()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	runID := now.Format(TimestampLayout) + "-" + hex.EncodeToString(b)
	host, _ := os.Hostname()
	lk, err := lock.Acquire(lockPath, lock.Holder{Command: "cfrollback " + command, RunID: runID, Host: host})
	if err != nil {
		return runID, err
	}
	defer func() { _ = lk.Release() }()
	j, err := journal.Open(journalPath)
	if err != nil {
		return runID, fmt.Errorf("open journal %s: %w; nothing was changed ('cfrollback journal verify' says what is wrong)", journalPath, err)
	}
	defer j.Close() //nolint:errcheck // every Append is fsynced; Close only releases the descriptor
	data := map[string]any{"command": command, "user": Who(), "host": host, "args": RedactArgs(os.Args[1:])}
	for k, v := range intent {
		data[k] = v
	}
	if _, err := j.Append(runID, journal.EventIntent, "", data); err != nil {
		return runID, fmt.Errorf("journal: %w; nothing was changed", err)
	}
	out, cerr := change()
	if out == nil {
		out = map[string]any{}
	}
	out["outcome"] = "done"
	if cerr != nil {
		out["outcome"], out["error"] = "failed", RedactString(cerr.Error())
	}
	if _, err := j.Append(runID, journal.EventOutcome, "", out); err != nil && cerr == nil {
		return runID, fmt.Errorf("the change is done but its outcome was not journaled: %w", err)
	}
	return runID, cerr
}

// RedactArgs hides the VALUE of `config set SECRET-KEY VALUE` and URL
// credentials in a command line.
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
