package runbook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/backup"
)

// backupOfVersion is e.backup with the sidecar manifest backup create writes: the app
// version the backup holds and the archive's digest.
func (e *env) backupOfVersion(stamp, version string, files map[string]string) string {
	p := e.backup(stamp, files)
	b, err := os.ReadFile(p)
	if err != nil {
		e.t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	created, err := time.ParseInLocation("20060102-150405", stamp, time.Local)
	if err != nil {
		e.t.Fatal(err)
	}
	m := backup.Manifest{Version: 1, Archive: filepath.Base(p), ArchiveSHA256: hex.EncodeToString(sum[:]), ArchiveSize: int64(len(b)),
		Created: created, AppVersion: version, AppVersionSource: "package.json"}
	mb, err := json.Marshal(m)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(backup.ManifestPath(p), mb, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// The standard flow: a backup of the healthy install (which holds the version running),
// then a deploy that breaks, then the emergency. The refresh after backup create keeps
// that backup warm, though an emergency at that moment would pass it over (it holds the
// version running): the next emergency comes after the next deploy, and takes it. The
// refresh after that healthy rollback keeps the restored backup warm again.
func TestStandbyKeptWarmForTheNextDeploy(t *testing.T) {
	e := newEnv(t)
	v1 := map[string]string{"package.json": `{"name":"app","version":"1.0.0"}`, "app.txt": "v1\n"}
	write(t, e.cfg.InstallDir, v1)
	p := e.backupOfVersion(time.Now().Add(-time.Hour).Format("20060102-150405"), "1.0.0", v1)

	res, err := StandbyRefresh(context.Background(), Options{Config: e.cfg, StandbyBackup: p}, Deps{Service: e.m})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("the refresh after backup create: %v %+v, want the new backup kept warm", err, res)
	}
	if st := CheckStandby(context.Background(), e.cfg); !st.Valid || st.WouldUse || !st.ForNextDeploy || st.Problem != "" {
		t.Fatalf("standby status after backup create: %+v, want valid and ready for the next deploy (an emergency now would pass it over)", st)
	}
	// 'cfrollback standby refresh' on the healthy install finds nothing an emergency would
	// restore now (the backup holds the version running) and leaves the standby as it is.
	if plain, err := e.refresh(); err != nil || plain.Outcome != "none" {
		t.Fatalf("a plain refresh of the healthy install: %v %+v, want outcome none", err, plain)
	}
	if st := StandbyInfo(e.cfg); !st.Sealed || st.Backup != p {
		t.Fatalf("a plain refresh that found nothing dropped the standby: %+v", st)
	}

	write(t, e.cfg.InstallDir, map[string]string{"package.json": `{"name":"app","version":"2.0.0"}`, "app.txt": "v2 broken\n"})
	r, err := e.run(false)
	if err != nil {
		t.Fatalf("emergency: %v", err)
	}
	if r.Standby == nil || !r.Standby.Used {
		t.Fatalf("the emergency after the deploy extracted: standby %+v", r.Standby)
	}
	if got := read(t, filepath.Join(e.cfg.InstallDir, "app.txt")); got != "v1\n" {
		t.Fatalf("app.txt = %q after the rollback", got)
	}
	if r.Standby.Refresh == nil || r.Standby.Refresh.Outcome != "ok" {
		t.Fatalf("the refresh after the healthy rollback: %+v, want the restored backup kept warm", r.Standby.Refresh)
	}
	if st := StandbyInfo(e.cfg); !st.Sealed || st.Backup != p {
		t.Fatalf("standby after the rollback holds %+v, want %s", st, p)
	}
}
