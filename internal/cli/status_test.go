package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// statusFakeService is a service.Manager whose Status is a function field.
type statusFakeService struct {
	status func(ctx context.Context) (service.Status, error)
}

var _ service.Manager = (*statusFakeService)(nil)

func (s *statusFakeService) Name() string { return "fake.service" }
func (s *statusFakeService) Kind() string { return service.KindSystemd }
func (s *statusFakeService) Status(ctx context.Context) (service.Status, error) {
	return s.status(ctx)
}
func (s *statusFakeService) Stop(context.Context) error  { return nil }
func (s *statusFakeService) Start(context.Context) error { return nil }

func TestRunStatusService(t *testing.T) {
	now := time.Date(2025, 1, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		status   func(ctx context.Context) (service.Status, error)
		newErr   error
		wantCode int
		wantText []string
		want     func(r statusResult) bool
	}{
		{
			name: "active",
			status: func(context.Context) (service.Status, error) {
				return service.Status{Exists: true, Active: true, State: "active", SubState: "running", MainPID: 42, Restarts: 2}, nil
			},
			wantText: []string{"fake.service, active (active/running), pid 42, 2 restarts", "newest good backup: 20250102-000000, ", "(1d12h ago)", "last run: none in the journal"},
			want: func(r statusResult) bool {
				return r.Service != nil && r.Service.Active && r.Service.MainPID == 42 && r.Backups == 2 &&
					r.NewestGoodBackup != nil && r.NewestGoodBackup.ID == "20250102-000000" && r.NewestGoodBackup.AgeSeconds == 36*3600 &&
					len(r.Problems) == 0 && len(r.Disks) == 1
			},
		},
		{
			name:     "not found is gathered, not a problem",
			status:   func(context.Context) (service.Status, error) { return service.Status{}, service.ErrNotFound },
			wantText: []string{"fake.service, not found"},
			want: func(r statusResult) bool {
				return r.Service != nil && !r.Service.Active && r.Service.State == "not found" && len(r.Problems) == 0
			},
		},
		{
			name: "a manager that hangs is given up on",
			status: func(ctx context.Context) (service.Status, error) {
				<-ctx.Done()
				return service.Status{}, fmt.Errorf("ask systemd: %w", ctx.Err())
			},
			wantCode: ExitFailed,
			wantText: []string{"service: unknown (see problems)", "problem:", "deadline exceeded", "newest good backup: 20250102-000000"},
			want: func(r statusResult) bool {
				return r.Service == nil && len(r.Problems) == 1 && strings.Contains(r.Problems[0], "service fake.service") &&
					r.NewestGoodBackup != nil
			},
		},
		{
			name:     "no manager",
			newErr:   fmt.Errorf("no systemd"),
			wantCode: ExitFailed,
			want: func(r statusResult) bool {
				return r.Service == nil && len(r.Problems) == 1 && strings.Contains(r.Problems[0], "no systemd")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := settings.Defaults()
			cfg.InstallDir, cfg.Backup.Dir, cfg.StateDir = filepath.Join(dir, "app"), filepath.Join(dir, "backups"), filepath.Join(dir, "state")
			cfg.Journal, cfg.Backup.State = filepath.Join(dir, "log", "journal.jsonl"), filepath.Join(dir, "state", "backups.json")
			cfg.Lock = filepath.Join(dir, "run", "cfrollback.lock")
			for _, p := range []string{cfg.InstallDir, cfg.Backup.Dir} {
				if err := os.MkdirAll(p, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range []string{"backup-20250101-000000.tar.gz", "backup-20250102-000000.tar.gz"} {
				if err := os.WriteFile(filepath.Join(cfg.Backup.Dir, n), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, asJSON := range []bool{false, true} {
				var out, errOut bytes.Buffer
				opts := &statusOptions{IO: &ui.IO{Out: &out, ErrOut: &errOut}, Config: cfg, JSON: asJSON, Now: func() time.Time { return now },
					ServiceTimeout: 100 * time.Millisecond,
					NewService: func(context.Context, settings.Config) (service.Manager, error) {
						if tc.newErr != nil {
							return nil, tc.newErr
						}
						return &statusFakeService{status: tc.status}, nil
					}}
				start := time.Now()
				err := runStatus(context.Background(), opts)
				if took := time.Since(start); took > 3*time.Second {
					t.Fatalf("took %s: the service query is not bounded", took)
				}
				if code := exitCode(err); code != tc.wantCode {
					t.Fatalf("json %v: exit %d (%v), want %d\n%s", asJSON, code, err, tc.wantCode, out.String())
				}
				if !asJSON {
					text := strings.Join(strings.Fields(out.String()), " ") // the columns' padding aside
					for _, w := range tc.wantText {
						if !strings.Contains(text, w) {
							t.Fatalf("text lacks %q:\n%s", w, out.String())
						}
					}
					continue
				}
				var r statusResult
				if err := json.Unmarshal(out.Bytes(), &r); err != nil {
					t.Fatalf("%v\n%s", err, out.String())
				}
				if !tc.want(r) {
					t.Fatalf("result:\n%s", out.String())
				}
			}
			// read-only: no state file, no journal, no lock were created
			for _, p := range []string{cfg.Backup.State, cfg.Journal, cfg.Lock, cfg.StateDir} {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("status created %s", p)
				}
			}
		})
	}
}

// A backup marked bad is not the newest good one.
func TestRunStatusSkipsBadBackup(t *testing.T) {
	dir := t.TempDir()
	cfg := settings.Defaults()
	cfg.InstallDir, cfg.Backup.Dir, cfg.StateDir = filepath.Join(dir, "app"), filepath.Join(dir, "backups"), filepath.Join(dir, "state")
	cfg.Journal, cfg.Backup.State = filepath.Join(dir, "journal.jsonl"), filepath.Join(dir, "state", "backups.json")
	for _, p := range []string{cfg.InstallDir, cfg.Backup.Dir} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"backup-20250101-000000.tar.gz", "backup-20250102-000000.tar.gz"} {
		if err := os.WriteFile(filepath.Join(cfg.Backup.Dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := backupStore(cfg).Update(context.Background(), func(s *backup.State) error {
		s.SetMark("backup-20250102-000000.tar.gz", backup.Mark{Value: backup.MarkBad, By: "manual"})
		s.SetVerify("backup-20250101-000000.tar.gz", backup.VerifyRecord{OK: true})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	opts := &statusOptions{IO: &ui.IO{Out: &out, ErrOut: &bytes.Buffer{}}, Config: cfg, JSON: true, Now: time.Now, ServiceTimeout: time.Second,
		NewService: func(context.Context, settings.Config) (service.Manager, error) {
			return &statusFakeService{status: func(context.Context) (service.Status, error) { return service.Status{Exists: true}, nil }}, nil
		}}
	if err := runStatus(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	var r statusResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if b := r.NewestGoodBackup; b == nil || b.ID != "20250101-000000" || b.Verified != "ok" || b.Mark != "" {
		t.Fatalf("newest good backup:\n%s", out.String())
	}
}

// A part whose text has a second line (an error from a tool, a problem) stays on its own
// row: the parts after it are not shifted, and every row starts with its label.
func TestPrintStatusOneLinePerPart(t *testing.T) {
	now := time.Date(2025, 1, 3, 12, 0, 0, 0, time.UTC)
	res := statusResult{
		Service:    &statusService{Name: "claude-flow.service", State: "failed/failed"},
		InstallDir: "/srv/app", BackupDir: "/srv/backups", Backups: 1,
		NewestGoodBackup: &statusBackup{ID: "20250102-000000", Time: now.Add(-36 * time.Hour), Size: 3 << 20, Verified: "ok"},
		LastRun: &statusRun{RunID: "r1", Command: "emergency", Started: now.Add(-time.Hour), Outcome: "failed",
			Error: "start claude-flow.service: exit status 1\nFailed to connect to bus: Host is down", Verified: true},
		Disks:    []statusDisk{{For: []string{"install_dir", "backup.dir"}, Path: "/srv", TotalBytes: 10 << 30, AvailBytes: 5 << 30, AvailPct: 50}},
		Problems: []string{"monitor samples: line 3: bad JSON\nline 4: bad JSON"},
	}
	var out bytes.Buffer
	if err := printStatus(&ui.IO{Out: &out}, false, res, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	labels := []string{"service:", "app version:", "newest good backup:", "last run:", "last assessment:", "disk (install_dir, backup.dir):", "problem:"}
	if len(lines) != len(labels) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(labels), out.String())
	}
	for i, l := range labels {
		if !strings.HasPrefix(lines[i], l) {
			t.Errorf("line %d is %q, want it to start with %q", i+1, lines[i], l)
		}
	}
	for _, want := range []string{"exit status 1; Failed to connect to bus: Host is down", "bad JSON; line 4", "5.0 GiB free of 10.0 GiB (50%) on /srv", "3.0 MiB", "(1d12h ago)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("lacks %q:\n%s", want, out.String())
		}
	}
	// the values are one column: each starts where the longest label ends, plus two spaces
	col := len("disk (install_dir, backup.dir):") + 2
	for _, l := range lines {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("value not at column %d: %q", col, l)
		}
	}
}
