package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// TestJSONErrorsAreOneObject runs the CLI through Run: under --json each error is exactly one
// JSON object on stderr carrying the exit code Run returns, and stdout is empty or JSON.
func TestJSONErrorsAreOneObject(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CFROLLBACK_INSTALL_DIR", dir+"/opt/app")
	t.Setenv("CFROLLBACK_BACKUP_DIR", dir+"/backups")
	t.Setenv("CFROLLBACK_JOURNAL", dir+"/log/journal.jsonl")
	t.Setenv("CFROLLBACK_LOCK", dir+"/run/cfrollback.lock")
	t.Setenv("CFROLLBACK_LOG_DIR", dir+"/log")
	t.Setenv("CFROLLBACK_STATE_DIR", dir+"/state")
	t.Setenv("CFROLLBACK_SERVICE_MANAGER", "command")
	t.Setenv("CFROLLBACK_SERVICE_START_COMMAND", "true")
	t.Setenv("CFROLLBACK_SERVICE_STOP_COMMAND", "true")
	t.Setenv("CFROLLBACK_SERVICE_STATUS_COMMAND", "true") // active: no "already down" warning
	for _, tt := range []struct {
		args []string
		code int
		want string // in "error"
	}{
		{[]string{"emergency", "--bogus", "--json"}, ExitUsage, "unknown flag: --bogus"},
		{[]string{"--json", "emergency", "--bogus"}, ExitUsage, "unknown flag: --bogus"},
		{[]string{"--json", "emergncy"}, ExitUsage, `unknown command "emergncy"`},
		{[]string{"--json", "backup", "lst"}, ExitUsage, `unknown command "lst" for "cfrollback backup"`},
		{[]string{"--json", "backup", "mark", "good"}, ExitUsage, "accepts 2 arg(s), received 1"},
		{[]string{"--json", "history", "x"}, ExitUsage, `unknown command "x"`},
		{[]string{"--json", "health-check", "--quick", "--comprehensive"}, ExitUsage, "give one of"},
		{[]string{"--json", "health-check", "--timeout", "-1s"}, ExitUsage, "must not be negative"},
		{[]string{"--json", "emergency"}, ExitPreflight, "no"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run(context.Background(), &ui.IO{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, NoColor: true}, tt.args)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut.String())
			}
			stderrText := errOut.String()
			dec := json.NewDecoder(&errOut)
			var e struct {
				Error    string `json:"error"`
				ExitCode *int   `json:"exit_code"`
				Hint     string `json:"hint"`
			}
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("stderr is not JSON: %v\n%s", err, stderrText)
			}
			if e.ExitCode == nil || *e.ExitCode != code {
				t.Errorf("exit_code %v, want %d", e.ExitCode, code)
			}
			if !strings.Contains(e.Error, tt.want) {
				t.Errorf("error %q, want it to contain %q", e.Error, tt.want)
			}
			if e.Hint == "" {
				t.Errorf("no hint for %q", e.Error)
			}
			if _, err := dec.Token(); err != io.EOF {
				t.Errorf("more than one JSON value on stderr")
			}
			if out.Len() > 0 && !json.Valid(out.Bytes()) {
				t.Errorf("stdout is neither empty nor JSON:\n%s", out.String())
			}
		})
	}
}

// TestPermissionErrorSaysSudo: a permission error met by a user who is not root says to run
// with sudo, before any other hint, and keeps the code of where it happened (3 at preflight).
func TestPermissionErrorSaysSudo(t *testing.T) {
	defer func(f func() bool) { isRoot = f }(isRoot)
	lockErr := &runbook.StepError{Step: "lock", Err: fmt.Errorf("open /run/cfrollback/cfrollback.lock: %w", fs.ErrPermission),
		Hint: "set lock: to another path"}

	isRoot = func() bool { return false }
	if got := hintFor(lockErr); got != sudoHint {
		t.Errorf("hint %q, want %q", got, sudoHint)
	}
	if got := exitCode(lockErr); got != ExitPreflight {
		t.Errorf("exit %d, want %d", got, ExitPreflight)
	}
	if got := hintFor(fmt.Errorf("read journal: %w", fs.ErrPermission)); got != sudoHint {
		t.Errorf("plain permission error: hint %q", got)
	}
	foreignLock := &runbook.StepError{Step: "lock", Err: errors.New("lock file /run/cfrollback/cfrollback.lock is owned by uid 0, not by this user (uid 1000)"),
		Hint: "set lock: to another path"}
	if got := hintFor(foreignLock); got != sudoHint {
		t.Errorf("root's lock file: hint %q, want %q", got, sudoHint)
	}
	if got := hintFor(&runbook.StepError{Step: "preflight", Err: errors.New("no usable backup"), Hint: "pick one"}); got != "pick one" {
		t.Errorf("another preflight failure: hint %q", got)
	}
	if got := hintFor(errors.New("exit status 1")); got != "" {
		t.Errorf("other errors: hint %q", got)
	}

	// root meeting a permission error (a read-only mount, an immutable file): sudo is no help
	isRoot = func() bool { return true }
	if got := hintFor(lockErr); got != "set lock: to another path" {
		t.Errorf("as root: hint %q", got)
	}
}

func TestWantsJSON(t *testing.T) {
	for args, want := range map[string]bool{
		"--json emergency":         true,
		"emergency --json":         true,
		"emergency --json=true":    true,
		"emergency --json=false":   false,
		"emergency --json=bogus":   false,
		"emergency -- --json":      false,
		"--json emergency -- rest": true,
		"emergency":                false,
	} {
		if got := wantsJSON(strings.Fields(args)); got != want {
			t.Errorf("wantsJSON(%q) = %v, want %v", args, got, want)
		}
	}
}

// TestStrictUsageTree: on a tree of its own, strictUsage makes an unknown subcommand and a
// wrong argument count usage errors, leaves a group alone to its help, and leaves a group
// that runs with arguments of its own able to take them.
func TestStrictUsageTree(t *testing.T) {
	build := func() (*cobra.Command, *[]string) {
		var got []string
		root := &cobra.Command{Use: "app", SilenceErrors: true, SilenceUsage: true}
		grp := &cobra.Command{Use: "grp"}
		grp.AddCommand(&cobra.Command{Use: "leaf ID", Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, a []string) error { got = a; return nil }})
		run := &cobra.Command{Use: "run [NAME...]", Args: cobra.ArbitraryArgs, RunE: func(_ *cobra.Command, a []string) error { got = a; return nil }}
		run.AddCommand(&cobra.Command{Use: "sub", RunE: func(*cobra.Command, []string) error { return nil }})
		root.AddCommand(grp, run)
		strictUsage(root)
		root.SetOut(io.Discard)
		return root, &got
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"grp", "lef"}, ExitUsage, `unknown command "lef" for "app grp"`},
		{[]string{"grp", "leaf"}, ExitUsage, "app grp leaf: accepts 1 arg(s), received 0"},
		{[]string{"grp", "leaf", "a", "b"}, ExitUsage, "received 2"},
		{[]string{"gp"}, ExitUsage, `unknown command "gp" for "app"`},
		{[]string{"grp"}, ExitOK, ""},
		{[]string{"grp", "leaf", "x"}, ExitOK, "x"},
		{[]string{"run", "a", "b"}, ExitOK, "a b"},
	} {
		root, got := build()
		root.SetArgs(tt.args)
		err := root.Execute()
		if code := exitCode(err); code != tt.code {
			t.Errorf("%q: exit %d (%v), want %d", tt.args, code, err, tt.code)
			continue
		}
		switch {
		case err != nil && !strings.Contains(err.Error(), tt.want):
			t.Errorf("%q: %v, want %q", tt.args, err, tt.want)
		case err == nil && strings.Join(*got, " ") != tt.want:
			t.Errorf("%q: ran with %q, want %q", tt.args, *got, tt.want)
		}
	}
}
