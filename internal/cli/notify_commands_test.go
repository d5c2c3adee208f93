package cli

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/cfrollback/cfrollback/internal/notify"
)

// webhookReceiver is a generic webhook on 127.0.0.1 that keeps the events it got.
type webhookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	events []notify.Event
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	t.Helper()
	rc := &webhookReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev notify.Event
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("webhook body %q: %v", b, err)
		}
		rc.mu.Lock()
		rc.events = append(rc.events, ev)
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.Close)
	return rc
}

// take returns the event names received since the last take, and the events.
func (rc *webhookReceiver) take() (string, []notify.Event) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	evs := rc.events
	rc.events = nil
	var names []string
	for _, ev := range evs {
		names = append(names, ev.Event)
	}
	return strings.Join(names, ","), evs
}

// notifySandbox is versionSandbox with a backup of a good install, a broken
// install in place, and notify.webhooks pointing at a local receiver; it
// returns the settings file to pass with --config.
func notifySandbox(t *testing.T) (w, settings string, rc *webhookReceiver) {
	t.Helper()
	w = versionSandbox(t)
	good := filepath.Join(w, "good")
	for _, d := range []string{good, filepath.Join(w, "backups")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(good, "app.txt"), []byte("v1 good\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-C", good, "-czf", filepath.Join(w, "backups", "backup-20250101-000000.tar.gz"), ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(w, "opt", "app", "app.txt"), []byte("v2 broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc = newWebhookReceiver(t)
	settings = filepath.Join(w, "settings.yaml")
	yaml := "notify:\n  timeout: 2s\n  retries: 1\n  webhooks:\n    - {name: ops, url: \"" + rc.URL + "/hooks/T0/s3cr3t\", kind: generic}\n"
	if err := os.WriteFile(settings, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return w, settings, rc
}

func appText(t *testing.T, w string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w, "opt", "app", "app.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

var runIDField = regexp.MustCompile(`"run_id": "([^"]+)"`)

// rollback --to and then undo each tell the webhook: rollback_started before
// the stop and rollback_complete after it; undo_started and undo_complete for
// the undo. A dry run tells nobody.
func TestRollbackAndUndoNotify(t *testing.T) {
	w, settings, rc := notifySandbox(t)
	if code, out, errOut := runCLI("--config", settings, "rollback", "--to", "latest", "--dry-run"); code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if got, _ := rc.take(); got != "" {
		t.Errorf("a dry run notified: %s", got)
	}
	code, out, errOut := runCLI("--config", settings, "--json", "rollback", "--to", "latest", "--yes")
	if code != 0 || appText(t, w) != "v1 good" {
		t.Fatalf("rollback: exit %d, app %q\n%s\n%s", code, appText(t, w), out, errOut)
	}
	got, evs := rc.take()
	if got != "rollback_started,rollback_complete" {
		t.Fatalf("rollback notified %q\n%s", got, errOut)
	}
	m := runIDField.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no run id in %s", out)
	}
	for _, ev := range evs {
		if ev.RunID != m[1] || !strings.HasSuffix(ev.Backup, "backup-20250101-000000.tar.gz") {
			t.Errorf("%+v", ev)
		}
	}
	if evs[1].Outcome != "ok" || !strings.Contains(evs[1].Message, "rolled back and healthy") {
		t.Errorf("%+v", evs[1])
	}

	code, out, errOut = runCLI("--config", settings, "undo", m[1])
	if code != 0 || appText(t, w) != "v2 broken" {
		t.Fatalf("undo: exit %d, app %q\n%s\n%s", code, appText(t, w), out, errOut)
	}
	got, evs = rc.take()
	if got != "undo_started,undo_complete" || evs[0].RunID != evs[1].RunID || evs[1].Outcome != "ok" ||
		!strings.Contains(evs[0].Message, "undo started") || !strings.Contains(evs[1].Message, "undo put the failed install back") {
		t.Errorf("undo notified %q %+v\n%s", got, evs, errOut)
	}
	if strings.Contains(errOut, "s3cr3t") {
		t.Errorf("the webhook's token was printed:\n%s", errOut)
	}
}

// assess --act on a P0 (the service is down) runs the emergency, and the
// webhook hears it start and end.
func TestAssessActNotifies(t *testing.T) {
	w, settings, rc := notifySandbox(t)
	if err := os.Remove(filepath.Join(w, "running")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("--config", settings, "assess", "--act", "--samples", "0")
	if code != 0 || appText(t, w) != "v1 good" {
		t.Fatalf("assess --act: exit %d, app %q\n%s\n%s", code, appText(t, w), out, errOut)
	}
	if got, evs := rc.take(); got != "rollback_started,rollback_complete" || evs[1].Outcome != "ok" {
		t.Errorf("assess --act notified %q %+v\n%s", got, evs, errOut)
	}
}

// emergency notifies start and end, and a rollback that fails its preflight
// says so as rollback_failed (with no start: the service was never stopped).
func TestEmergencyNotifies(t *testing.T) {
	w, settings, rc := notifySandbox(t)
	if code, out, errOut := runCLI("--config", settings, "emergency"); code != 0 {
		t.Fatalf("emergency: exit %d\n%s\n%s", code, out, errOut)
	}
	if got, _ := rc.take(); got != "rollback_started,rollback_complete" {
		t.Errorf("emergency notified %q", got)
	}
	if err := os.Remove(filepath.Join(w, "backups", "backup-20250101-000000.tar.gz")); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI("--config", settings, "emergency"); code != ExitPreflight {
		t.Fatalf("emergency without backups: exit %d\n%s", code, errOut)
	}
	if got, evs := rc.take(); got != "rollback_failed" || evs[0].Outcome != "preflight_failed" {
		t.Errorf("failed emergency notified %q %+v", got, evs)
	}
}

// notify --dry-run prints each webhook's payload with its URL redacted and
// sends nothing.
func TestNotifyDryRun(t *testing.T) {
	_, settings, rc := notifySandbox(t)
	code, out, errOut := runCLI("--config", settings, "notify", "--event", "rollback_failed", "--message", "by hand", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"DRY RUN  ops (generic, http://127.0.0.1:", "/…): POST, sends nothing", `"event": "rollback_failed"`, `"message": "by hand"`} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "s3cr3t") {
		t.Errorf("token printed:\n%s%s", out, errOut)
	}
	code, out, _ = runCLI("--config", settings, "--json", "notify", "--test", "--dry-run")
	var res struct {
		DryRun     bool `json:"dry_run"`
		OK         bool
		Deliveries []notify.Delivery
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || !res.DryRun || !res.OK || len(res.Deliveries) != 1 ||
		!regexp.MustCompile(`"event": ?"test"`).Match(res.Deliveries[0].Payload) {
		t.Errorf("json: exit %d %v %s", code, err, out)
	}
	if got, _ := rc.take(); got != "" {
		t.Errorf("a dry run sent %s", got)
	}
	// without --dry-run it is sent
	if code, out, errOut := runCLI("--config", settings, "notify", "--test"); code != 0 || !strings.Contains(out, "OK    ops (generic") {
		t.Errorf("test: exit %d\n%s\n%s", code, out, errOut)
	}
	if got, _ := rc.take(); got != "test" {
		t.Errorf("sent %q", got)
	}
}

// makeSQLite creates a database at path with table memory holding rows.
func makeSQLite(t *testing.T, path string, stmts ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// lastRun is the newest run in history --json.
func lastRun(t *testing.T, settings string) historyRow {
	t.Helper()
	code, out, errOut := runCLI("--config", settings, "--json", "history")
	var rows []historyRow
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) == 0 {
		t.Fatalf("history: exit %d %v\n%s\n%s", code, err, out, errOut)
	}
	return rows[0]
}

// Every state-changing command that is not a rollback runs as a procedure: it shows in
// history and in its incident report, and the webhook (a local receiver) hears it start
// and end (change_started, then change_complete, with its run id and command). A dry run
// tells nobody and journals nothing.
func TestChangesNotifyAndShowInHistory(t *testing.T) {
	w, settings, rc := notifySandbox(t)
	install := filepath.Join(w, "opt", "app")
	// an older copy of the backup, for prune to delete
	tarball, err := os.ReadFile(filepath.Join(w, "backups", "backup-20250101-000000.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w, "backups", "backup-20240101-000000.tar.gz"), tarball, 0o600); err != nil {
		t.Fatal(err)
	}
	// memory.db and a backup of it; hive.db with an index whose entries do not match its table
	schema := "CREATE TABLE memory(id INTEGER PRIMARY KEY, v TEXT)"
	makeSQLite(t, filepath.Join(install, ".swarm", "memory.db"), schema, "INSERT INTO memory(v) VALUES ('live')")
	memBackup := filepath.Join(w, "memory-backup.db")
	makeSQLite(t, memBackup, schema, "INSERT INTO memory(v) VALUES ('backup')")
	makeSQLite(t, filepath.Join(install, ".hive-mind", "hive.db"), "CREATE TABLE c(k TEXT, v TEXT, w TEXT)",
		"WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n WHERE x<200) INSERT INTO c SELECT 'k'||x, 'v'||x, 'w'||x FROM n",
		"CREATE INDEX c_v ON c(v)", "PRAGMA writable_schema=ON", "UPDATE sqlite_master SET sql='CREATE INDEX c_v ON c(w)' WHERE name='c_v'")
	bundle := filepath.Join(w, "agents-bundle.json")
	var checkpoint string

	for _, c := range []struct {
		command string
		args    func() []string
		after   func(out string)
	}{
		{"config set", func() []string { return []string{"--json", "config", "set", "claude.model", "m2"} }, func(out string) {
			var res struct{ Checkpoint string }
			if err := json.Unmarshal([]byte(out), &res); err != nil || res.Checkpoint == "" {
				t.Fatalf("config set: %v %s", err, out)
			}
			checkpoint = res.Checkpoint
		}},
		{"config restore", func() []string { return []string{"config", "restore", "--file", checkpoint} }, nil},
		{"config reset", func() []string { return []string{"config", "reset", "--defaults", "--yes"} }, nil},
		{"agents reset", func() []string { return []string{"agents", "reset", "--template", "executive-assistant"} }, func(string) {
			if code, out, errOut := runCLI("--config", settings, "agents", "export", "--output", bundle); code != 0 {
				t.Fatalf("agents export: exit %d\n%s\n%s", code, out, errOut)
			}
		}},
		{"agents import", func() []string { return []string{"agents", "import", "--file", bundle} }, nil},
		{"backup mark", func() []string { return []string{"backup", "mark", "bad", "20240101-000000", "--reason", "a test"} }, nil},
		{"backup prune", func() []string { return []string{"backup", "prune", "--keep", "1", "--max-age", "1d"} }, func(string) {
			if _, err := os.Stat(filepath.Join(w, "backups", "backup-20240101-000000.tar.gz")); !os.IsNotExist(err) {
				t.Errorf("prune left the old backup: %v", err)
			}
		}},
		{"baseline record", func() []string { return []string{"baseline", "record", "--samples", "1"} }, nil},
		{"database restore", func() []string { return []string{"database", "restore", "--db", "memory", "--file", memBackup} }, nil},
		{"database repair", func() []string { return []string{"database", "check", "--db", "hive", "--repair-if-needed"} }, nil},
	} {
		args := append([]string{"--config", settings}, c.args()...)
		code, out, errOut := runCLI(args...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", c.command, code, out, errOut)
		}
		if c.after != nil {
			c.after(out)
		}
		run := lastRun(t, settings)
		if run.Command != c.command || run.Outcome != "ok" {
			t.Errorf("%s: history's newest run is %+v", c.command, run)
		}
		got, evs := rc.take()
		if got != "change_started,change_complete" {
			t.Errorf("%s: webhooks %q\n%s", c.command, got, errOut)
			continue
		}
		for i, ev := range evs {
			if ev.RunID != run.RunID || ev.Command != c.command || ev.Outcome != []string{"", "ok"}[i] {
				t.Errorf("%s: event %d %+v, run %s", c.command, i, ev, run.RunID)
			}
		}
		code, out, errOut = runCLI("--config", settings, "report", run.RunID)
		method := regexp.MustCompile("(?m)^- \\*\\*Method\\*\\*: .*`cfrollback .*" + c.command + "`")
		if !method.MatchString(out) {
			t.Errorf("%s: report's method is not the command:\n%s", c.command, out)
		}
		for _, want := range []string{"**Change**: ", "**Outcome**: ok", "**Run**: " + run.RunID} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("%s: report (exit %d) lacks %q:\n%s\n%s", c.command, code, want, out, errOut)
			}
		}
	}

	// a dry run journals nothing and tells nobody
	before := lastRun(t, settings)
	if code, out, errOut := runCLI("--config", settings, "config", "set", "claude.model", "m3", "--dry-run"); code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if got, _ := rc.take(); got != "" || lastRun(t, settings).RunID != before.RunID {
		t.Errorf("a dry run notified %q or was journaled", got)
	}
}

// A journal that cannot be opened stops a change before it changes anything, and the
// person is told so and what to do (exit 1); nobody is notified of a run that never began.
func TestChangeJournalUnwritable(t *testing.T) {
	w, settings, rc := notifySandbox(t)
	if err := os.MkdirAll(filepath.Join(w, "log", "journal.jsonl"), 0o755); err != nil { // a dir where the journal goes
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(w, "opt", "app", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("--config", settings, "config", "set", "claude.model", "m2")
	if code != ExitFailed || !strings.Contains(errOut, "nothing was changed") || !strings.Contains(errOut, "hint: set journal: to a writable path") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	after, _ := os.ReadFile(filepath.Join(w, "opt", "app", "config.json"))
	if string(after) != string(before) {
		t.Errorf("the config was changed:\n%s", after)
	}
	if got, _ := rc.take(); got != "" {
		t.Errorf("notified %q", got)
	}
}

// rollback --to-version tells the webhook before the stop and at the end, and is in
// history and its report.
func TestRollbackToVersionNotifies(t *testing.T) {
	_, settings, rc := notifySandbox(t)
	if code, out, errOut := runCLI("--config", settings, "rollback", "--to-version", "1.0.73", "--dry-run"); code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if got, _ := rc.take(); got != "" {
		t.Errorf("a dry run notified %q", got)
	}
	if code, out, errOut := runCLI("--config", settings, "rollback", "--to-version", "1.0.73", "--yes"); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	run := lastRun(t, settings)
	got, evs := rc.take()
	if got != "rollback_started,rollback_complete" || evs[0].RunID != run.RunID || evs[1].RunID != run.RunID ||
		!strings.Contains(evs[0].Message, "another claude-flow version (rollback --to-version) started") || evs[1].Outcome != "ok" {
		t.Fatalf("notified %q %+v; run %+v", got, evs, run)
	}
	code, out, _ := runCLI("--config", settings, "report", run.RunID)
	if code != 0 || !strings.Contains(out, "**Run**: "+run.RunID) || !strings.Contains(out, "**Outcome**: ok") {
		t.Errorf("report: exit %d\n%s", code, out)
	}
}
