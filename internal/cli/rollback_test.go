package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// On a terminal, rollback asks; anything but y/yes leaves everything as it was.
func TestRollbackPromptDeclined(t *testing.T) {
	dir := t.TempDir()
	cfg := settings.Defaults()
	cfg.InstallDir = filepath.Join(dir, "opt", "app")
	cfg.Backup.Dir = filepath.Join(dir, "backups")
	cfg.Backup.State = filepath.Join(dir, "state.json")
	for _, d := range []string{cfg.InstallDir, cfg.Backup.Dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(cfg.Backup.Dir, "backup-20250101-000000.tar.gz"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, answer := range []string{"n\n", "\n", "maybe\n", ""} {
		var out, errOut bytes.Buffer
		called := false
		err := runRollback(context.Background(), &rollbackOptions{
			IO: &ui.IO{In: strings.NewReader(answer), Out: &out, ErrOut: &errOut}, Config: cfg, To: "latest",
			InTTY: func() bool { return true },
			NewService: func(context.Context, settings.Config) (service.Manager, error) {
				called = true
				return nil, nil
			},
		})
		if code := exitCode(err); code != ExitFailed || called {
			t.Fatalf("answer %q: exit %d (err %v), service built %v", answer, code, err, called)
		}
		if !strings.Contains(errOut.String(), "proceed? [y/N]") || !strings.Contains(errOut.String(), "nothing was changed") {
			t.Fatalf("answer %q: stderr %q", answer, errOut.String())
		}
	}
}
