package runbook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/journal"
)

// manifest writes the sidecar manifest of archive with the fields the
// failing-version rules read (no digest: the archive is not checked against it).
func manifest(t *testing.T, archive, appVersion string, created time.Time) {
	t.Helper()
	a, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(a)
	b, err := json.Marshal(backup.Manifest{Version: backup.ManifestVersion, Archive: filepath.Base(archive), AppVersion: appVersion, Created: created,
		ArchiveSHA256: hex.EncodeToString(sum[:]), ArchiveSize: int64(len(a))})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backup.ManifestPath(archive), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// deployNpm writes an npm host install of claude-flow@version: the version is in
// node_modules/claude-flow/package.json, the install's own package.json has none.
func (e *env) deployNpm(version, app string) {
	write(e.t, e.cfg.InstallDir, map[string]string{
		"package.json":                          `{"name":"host","private":true,"dependencies":{"claude-flow":"^2.0.0"}}`,
		"node_modules/claude-flow/package.json": `{"name":"claude-flow","version":"` + version + `"}`,
		"app.txt":                               app,
	})
}

// scheduledBackupOfFailingVersion is issue 12's host: a backup of 1.9.0, a
// newer scheduled one of 2.0.0, and 2.0.0 deployed (and failing) since.
func (e *env) scheduledBackupOfFailingVersion() (old, failing string) {
	old = e.backup("20250101-000000", map[string]string{"app.txt": "v1.9"})
	manifest(e.t, old, "1.9.0", time.Date(2025, 1, 1, 0, 0, 0, 0, time.Local))
	failing = e.backup("20250102-000000", map[string]string{"app.txt": "v2 scheduled"})
	manifest(e.t, failing, "2.0.0", time.Date(2025, 1, 2, 0, 0, 0, 0, time.Local))
	e.deployNpm("2.0.0", "v2 broken")
	return old, failing
}

// runCollect runs the emergency and collects its warnings.
func (e *env) runCollect(opt Options) (*Result, []string, error) {
	opt.Config = e.cfg
	var warned []string
	res, err := Emergency(context.Background(), opt, Deps{Service: e.m, Events: func(ev Event) {
		if ev.Kind == "warn" {
			warned = append(warned, ev.Message)
		}
	}})
	return res, warned, err
}

// skippedIn returns the reasons the journal gives for skipping path.
func skippedIn(t *testing.T, journalPath, path string) []string {
	t.Helper()
	recs, err := journal.ReadAll(journalPath)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, rec := range recs {
		var d struct{ Backup, Reason string }
		if rec.Event == "backup_skipped" && json.Unmarshal(rec.Data, &d) == nil && d.Backup == path {
			reasons = append(reasons, d.Reason)
		}
	}
	return reasons
}

func TestEmergencySkipsNewestBackupOfFailingVersion(t *testing.T) {
	e := newEnv(t)
	old, newest := e.scheduledBackupOfFailingVersion()

	plan, _, err := e.runCollect(Options{DryRun: true})
	if err != nil || plan.Backup == nil || plan.Backup.Path != old || len(plan.Skipped) != 1 {
		t.Fatalf("dry run: err %v, plan %+v", err, plan)
	}
	res, warned, err := e.runCollect(Options{})
	if err != nil {
		t.Fatalf("emergency: %v", err)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1.9" {
		t.Fatalf("app.txt = %q, want the older backup's v1.9", got)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Path != newest ||
		!strings.Contains(res.Skipped[0].Reason, "holds app version 2.0.0, the version that is failing now") ||
		!strings.Contains(res.Skipped[0].Reason, "--backup backup-20250102-000000.tar.gz") {
		t.Fatalf("skipped %+v", res.Skipped)
	}
	if !strings.Contains(strings.Join(warned, "\n"), "SKIPPING backup backup-20250102-000000.tar.gz: holds app version 2.0.0") {
		t.Fatalf("the skip was not said: %v", warned)
	}
	if reasons := skippedIn(t, e.cfg.Journal, newest); len(reasons) != 1 || reasons[0] != res.Skipped[0].Reason {
		t.Fatalf("journaled skips of %s: %v", newest, reasons)
	}
}

func TestEmergencySkipsBackupsTakenAfterTheDeploy(t *testing.T) {
	e := newEnv(t)
	old := e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	// no manifest: the name's stamp says when it was taken
	later := e.backup(time.Now().Add(time.Hour).Format("20060102-150405"), map[string]string{"app.txt": "after deploy"})
	// a manifest's created time wins over the name; its version differs from the running one
	byManifest := e.backup("20250103-000000", map[string]string{"app.txt": "after deploy too"})
	manifest(t, byManifest, "1.9.0", time.Now().Add(30*time.Minute))
	write(t, e.cfg.InstallDir, map[string]string{"package.json": `{"name":"claude-flow","version":"2.0.0"}`, "app.txt": "v2 broken"})

	res, _, err := e.runCollect(Options{})
	if err != nil {
		t.Fatalf("emergency: %v", err)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1" {
		t.Fatalf("app.txt = %q, want v1", got)
	}
	if len(res.Skipped) != 2 || res.Skipped[0].Path != later || res.Skipped[1].Path != byManifest {
		t.Fatalf("skipped %+v, want %s and %s", res.Skipped, later, byManifest)
	}
	for _, s := range res.Skipped {
		if !strings.Contains(s.Reason, "after the failing install was deployed") || !strings.Contains(s.Reason, "package.json") {
			t.Errorf("reason %q", s.Reason)
		}
		if len(skippedIn(t, e.cfg.Journal, s.Path)) != 1 {
			t.Errorf("skip of %s not journaled", s.Path)
		}
	}
	if res.Backup == nil || res.Backup.Path != old {
		t.Fatalf("restored %+v", res.Backup)
	}
}

// Without a package.json the deploy time is unknown: a backup newer than
// anything on disk is not passed over for its time.
func TestEmergencyWithoutDeployTimeSkipsNothingForTime(t *testing.T) {
	e := newEnv(t)
	e.backup("20250101-000000", map[string]string{"app.txt": "v1"})
	e.backup(time.Now().Add(time.Hour).Format("20060102-150405"), map[string]string{"app.txt": "newest"})
	write(t, e.cfg.InstallDir, map[string]string{"app.txt": "v2 broken"})
	res, _, err := e.runCollect(Options{})
	if err != nil || len(res.Skipped) != 0 || read(t, filepath.Join(e.cfg.InstallDir, "app.txt")) != "newest" {
		t.Fatalf("err %v, skipped %+v", err, res.Skipped)
	}
}

func TestEmergencyNamedBackupOfFailingVersionIsUsedWithWarning(t *testing.T) {
	e := newEnv(t)
	_, same := e.scheduledBackupOfFailingVersion()

	res, warned, err := e.runCollect(Options{BackupPath: filepath.Base(same)})
	if err != nil {
		t.Fatalf("emergency --backup: %v", err)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v2 scheduled" {
		t.Fatalf("app.txt = %q, want the named backup's", got)
	}
	if len(res.Skipped) != 0 {
		t.Fatalf("skipped %+v", res.Skipped)
	}
	if !strings.Contains(strings.Join(warned, "\n"),
		"backup backup-20250102-000000.tar.gz holds app version 2.0.0, the version that is failing now; using it because it was asked for by name") {
		t.Fatalf("no warning about the failing version: %v", warned)
	}
}

func TestEmergencyOnlyBackupsOfFailingVersionChangesNothing(t *testing.T) {
	e := newEnv(t)
	for _, stamp := range []string{"20250101-000000", "20250102-000000"} {
		p := e.backup(stamp, map[string]string{"app.txt": "v2 " + stamp})
		manifest(t, p, "2.0.0", time.Time{})
	}
	e.deployNpm("2.0.0", "v2 broken")
	before := snapshot(t, filepath.Dir(e.cfg.InstallDir))
	for _, dry := range []bool{true, false} {
		res, _, err := e.runCollect(Options{DryRun: dry})
		if !errors.Is(err, ErrPreflight) || errors.Is(err, ErrAfterStop) {
			t.Fatalf("dry=%v: err = %v, want ErrPreflight", dry, err)
		}
		for _, want := range []string{"holds the version that is failing now", "nothing was changed, the service was not stopped", "pass --backup FILE"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("dry=%v: error %q does not say %q", dry, err, want)
			}
		}
		if len(res.Skipped) != 2 || len(e.m.calls) != 0 || !e.m.active {
			t.Fatalf("dry=%v: skipped %+v, service calls %v", dry, res.Skipped, e.m.calls)
		}
		if after := snapshot(t, filepath.Dir(e.cfg.InstallDir)); after != before {
			t.Fatalf("dry=%v: install parent changed:\n%s\n%s", dry, before, after)
		}
	}
}

// npm packs every file with a 1985 mtime, and tar, cp -a and rsync -a keep
// it: a deploy read from the mtime would be 40 years early and pass every
// backup over. The ctime says when the file arrived.
func TestEmergencyDeployTimeIsTheCtimeNotAnOldMtime(t *testing.T) {
	e := newEnv(t)
	old := e.backup("20250101-000000", map[string]string{"app.txt": "v1.9"})
	manifest(t, old, "1.9.0", time.Date(2025, 1, 1, 0, 0, 0, 0, time.Local))
	e.deployNpm("2.0.0", "v2 broken")
	npmEpoch := time.Date(1985, 10, 26, 8, 15, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(e.cfg.InstallDir, "node_modules/claude-flow/package.json"), npmEpoch, npmEpoch); err != nil {
		t.Fatal(err)
	}
	res, _, err := e.runCollect(Options{})
	if err != nil || len(res.Skipped) != 0 || read(t, filepath.Join(e.cfg.InstallDir, "app.txt")) != "v1.9" {
		t.Fatalf("err %v, skipped %+v", err, res.Skipped)
	}
}
