package journal

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	var nr NoRunError
	if _, _, err := FindRun(path, ""); !errors.As(err, &nr) || !strings.Contains(err.Error(), "no journal at") {
		t.Fatalf("no journal: %v", err)
	}
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ id, command string }{{"r1", "emergency"}, {"r2", "undo"}, {"r3", "database restore"}} {
		if _, err := j.Append(r.id, "intent", "", map[string]any{"command": r.command}); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Append(r.id, "outcome", "", map[string]any{"outcome": "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	run, check, err := FindRun(path, "")
	if err != nil || run.ID != "r2" || check.Warning != "" || check.Unverified {
		t.Errorf("the last rollback run: %s %+v %v (want r2: a database run is not a rollback)", run.ID, check, err)
	}
	if run, _, err := FindRun(path, "r3"); err != nil || run.ID != "r3" || run.Command != "database restore" {
		t.Errorf("by id: %s %s %v", run.ID, run.Command, err)
	}
	if _, _, err := FindRun(path, "r9"); !errors.As(err, &nr) || !strings.Contains(err.Error(), "run r9 is not in the journal") {
		t.Errorf("an unknown id: %v", err)
	}
}
