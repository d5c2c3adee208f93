package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// fleetHost is one inventory host on this machine: its own sandbox and
// settings file, a shell-command service, and a good or only-bad backup.
type fleetHost struct {
	name string
	s    *sandbox
	conf string
}

func newFleetHost(t *testing.T, name string, broken bool) fleetHost {
	s := newSandbox(t)
	s.goodBackupBrokenInstall()
	if broken {
		bk := filepath.Join(s.Backups, "backup-20250104-140000.tar.gz")
		b, err := os.ReadFile(bk)
		mustDo(t, err)
		mustDo(t, os.WriteFile(bk, b[:len(b)/2], 0o600))
	}
	run := filepath.Join(s.Dir, "running")
	logf := filepath.Join(s.Dir, "service.log")
	mustDo(t, os.WriteFile(run, nil, 0o644))
	conf := filepath.Join(s.Dir, "config.yaml")
	yaml := fmt.Sprintf(`install_dir: %[1]s/opt/claude-flow
backup: {dir: %[1]s/backups, state: %[1]s/state/backups.json}
database: {backup_dir: %[1]s/dbbackups}
journal: %[1]s/log/journal.jsonl
lock: %[1]s/run/cfrollback.lock
log_dir: %[1]s/log
state_dir: %[1]s/state
service:
  manager: command
  start_command: "touch %[2]s; echo start >>%[3]s"
  stop_command: "rm -f %[2]s; echo stop >>%[3]s"
  status_command: "test -f %[2]s"
health: {url: "", interval: 20ms, consecutive: 1, wait_timeout: 5s}
`, s.Dir, run, logf)
	mustDo(t, os.WriteFile(conf, []byte(yaml), 0o644))
	return fleetHost{name: name, s: s, conf: conf}
}

func (h fleetHost) touched() bool {
	_, err := os.Stat(filepath.Join(h.s.Dir, "service.log"))
	return err == nil
}

func (h fleetHost) version(t *testing.T) string {
	return readFile(t, filepath.Join(h.s.Install, drillapp.VersionFile))
}

// runPlaybook runs deploy/ansible/PLAYBOOK with the real ansible-core against
// local-connection hosts, in the given order.
func runPlaybook(t *testing.T, playbook string, hosts []fleetHost) (string, error) {
	t.Helper()
	testenv.RequireTool(t, "ansible-playbook")
	dir := t.TempDir()
	var inv strings.Builder
	inv.WriteString("[claude_flow]\n")
	for _, h := range hosts {
		fmt.Fprintf(&inv, "%s ansible_connection=local cfrollback_config=%s\n", h.name, h.conf)
	}
	fmt.Fprintf(&inv, "\n[claude_flow:vars]\nansible_python_interpreter=/usr/bin/python3\ncfrollback_bin=%s\n", binary(t))
	invPath := filepath.Join(dir, "inventory.ini")
	mustDo(t, os.WriteFile(invPath, []byte(inv.String()), 0o644))
	cmd := exec.Command("ansible-playbook", "-i", invPath, filepath.Join(testenv.RepoRoot(t), "deploy", "ansible", playbook))
	cmd.Env = append(os.Environ(), "ANSIBLE_HOME="+filepath.Join(dir, "ansible-home"), "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_HOST_KEY_CHECKING=0", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAnsibleRollbackCanaryFails: the canary host cannot roll back (only a
// truncated backup); the rollout stops there and no other host is touched.
func TestAnsibleRollbackCanaryFails(t *testing.T) {
	hosts := []fleetHost{newFleetHost(t, "canary", true), newFleetHost(t, "web2", false), newFleetHost(t, "web3", false)}
	out, err := runPlaybook(t, "rollback.yml", hosts)
	if err == nil {
		t.Fatalf("playbook succeeded with a failed canary:\n%s", out)
	}
	if !strings.Contains(out, "cfrollback emergency exited 3") {
		t.Fatalf("the failure does not carry cfrollback's message:\n%s", out)
	}
	for _, h := range hosts[1:] {
		if h.touched() || h.version(t) != "2.0.0-phase2" {
			t.Fatalf("%s was touched after the canary failed:\n%s", h.name, out)
		}
	}
	if hosts[0].touched() {
		t.Fatalf("the canary's service was stopped although preflight failed")
	}
}

// TestAnsibleRollbackFleet: three healthy-to-roll-back hosts, canary then the
// rest; every host is rolled back and the summary names each outcome.
func TestAnsibleRollbackFleet(t *testing.T) {
	hosts := []fleetHost{newFleetHost(t, "web1", false), newFleetHost(t, "web2", false), newFleetHost(t, "web3", false)}
	out, err := runPlaybook(t, "rollback.yml", hosts)
	if err != nil {
		t.Fatalf("playbook: %v\n%s", err, out)
	}
	for _, h := range hosts {
		if h.version(t) != "1.0.0" {
			t.Fatalf("%s holds %s after the rollout:\n%s", h.name, h.version(t), out)
		}
		if !strings.Contains(out, h.name+"  ok  backup-20250104-140000.tar.gz") {
			t.Fatalf("summary lacks %s:\n%s", h.name, out)
		}
	}
}

// TestAnsibleRollbackLateFailure: the canary and the 25 % batch succeed, the
// last host fails: the playbook fails (max_fail_percentage 0) and names it,
// the hosts already rolled back stay rolled back.
func TestAnsibleRollbackLateFailure(t *testing.T) {
	hosts := []fleetHost{newFleetHost(t, "web1", false), newFleetHost(t, "web2", false), newFleetHost(t, "bad3", true)}
	out, err := runPlaybook(t, "rollback.yml", hosts)
	if err == nil {
		t.Fatalf("playbook succeeded with a failed host:\n%s", out)
	}
	if hosts[0].version(t) != "1.0.0" || hosts[1].version(t) != "1.0.0" {
		t.Fatalf("earlier batches not rolled back:\n%s", out)
	}
	if !strings.Contains(out, "bad3") || hosts[2].touched() {
		t.Fatalf("bad3 not reported or its service touched:\n%s", out)
	}
}

// TestAnsibleAssess: assess.yml runs on every host (a P0 host does not stop
// the others) and lists the most severe first.
func TestAnsibleAssess(t *testing.T) {
	hosts := []fleetHost{newFleetHost(t, "calm1", false), newFleetHost(t, "down2", false), newFleetHost(t, "calm3", false)}
	mustDo(t, os.Remove(filepath.Join(hosts[1].s.Dir, "running"))) // its service is down: P0
	out, _ := runPlaybook(t, "assess.yml", hosts)
	i := strings.Index(out, "down2  P0")
	if i < 0 {
		t.Fatalf("no P0 row for down2:\n%s", out)
	}
	for _, h := range []string{"calm1", "calm3"} {
		j := strings.Index(out, h+"  ")
		if j < 0 || j < i {
			t.Fatalf("%s missing from the table or listed before the P0 host:\n%s", h, out)
		}
	}
}
