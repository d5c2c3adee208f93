package integration

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// fleetHost is one inventory host on this machine: its own sandbox and
// settings file, a shell-command service, and a good or only-bad backup.
// Its service starts down (health-check fails, so rollback.yml acts on it);
// up() makes it healthy.
type fleetHost struct {
	name string
	s    *sandbox
	conf string
	// sshPort, when set, makes the host unreachable: ssh to a closed
	// loopback port (no sandbox, cfrollback never runs there).
	sshPort int
}

// newUnreachableHost is an inventory host Ansible cannot reach: ssh to a
// loopback port that was just closed, so the connection is refused at once.
func newUnreachableHost(t *testing.T, name string) fleetHost {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustDo(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	mustDo(t, ln.Close())
	return fleetHost{name: name, sshPort: port}
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

// up marks the host's service running: health-check passes.
func (h fleetHost) up(t *testing.T) {
	mustDo(t, os.WriteFile(filepath.Join(h.s.Dir, "running"), nil, 0o644))
}

// touched: the service was started or stopped (the start/stop commands log).
func (h fleetHost) touched() bool {
	_, err := os.Stat(filepath.Join(h.s.Dir, "service.log"))
	return err == nil
}

func (h fleetHost) serviceLog() string {
	b, _ := os.ReadFile(filepath.Join(h.s.Dir, "service.log"))
	return string(b)
}

func (h fleetHost) version(t *testing.T) string {
	return readFile(t, filepath.Join(h.s.Install, drillapp.VersionFile))
}

// runPlaybook runs deploy/ansible/PLAYBOOK with the real ansible-core against
// local-connection hosts, in the given order, with extra ansible-playbook
// arguments (--check, -e ...).
func runPlaybook(t *testing.T, playbook string, hosts []fleetHost, extra ...string) (string, error) {
	t.Helper()
	testenv.RequireTool(t, "ansible-playbook")
	dir := t.TempDir()
	var inv strings.Builder
	inv.WriteString("[claude_flow]\n")
	for _, h := range hosts {
		if h.sshPort != 0 {
			fmt.Fprintf(&inv, "%s ansible_connection=ssh ansible_host=127.0.0.1 ansible_port=%d ansible_user=nobody\n", h.name, h.sshPort)
			continue
		}
		fmt.Fprintf(&inv, "%s ansible_connection=local cfrollback_config=%s\n", h.name, h.conf)
	}
	fmt.Fprintf(&inv, "\n[claude_flow:vars]\nansible_python_interpreter=/usr/bin/python3\ncfrollback_bin=%s\n", binary(t))
	invPath := filepath.Join(dir, "inventory.ini")
	mustDo(t, os.WriteFile(invPath, []byte(inv.String()), 0o644))
	args := append([]string{"-i", invPath, filepath.Join(testenv.RepoRoot(t), "deploy", "ansible", playbook)}, extra...)
	cmd := exec.Command("ansible-playbook", args...)
	cmd.Env = append(os.Environ(), "ANSIBLE_HOME="+filepath.Join(dir, "ansible-home"), "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_HOST_KEY_CHECKING=0", "NO_COLOR=1",
		// bounded ssh to the unreachable hosts, without the user's ssh config
		"ANSIBLE_TIMEOUT=10", "ANSIBLE_SSH_ARGS=-F /dev/null -o BatchMode=yes -o ConnectTimeout=10")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustMatch fails unless out matches the regular expression re.
func mustMatch(t *testing.T, out, re, why string) {
	t.Helper()
	if !regexp.MustCompile(re).MatchString(out) {
		t.Fatalf("%s: no match for %q in:\n%s", why, re, out)
	}
}

// tableRow is the regexp of one fleet-table row: the cells in order, any
// padding between them.
func tableRow(cells ...string) string {
	q := make([]string, len(cells))
	for i, c := range cells {
		q[i] = regexp.QuoteMeta(c)
	}
	return `"` + strings.Join(q, ` +`) + `[ "]`
}

// recap is the regexp of a host's PLAY RECAP line with changed=N.
func recap(host string, changed int) string {
	return fmt.Sprintf(`(?m)^%s +: ok=\d+ +changed=%d `, regexp.QuoteMeta(host), changed)
}

const fleetBackup = "backup-20250104-140000.tar.gz"

// TestAnsibleRollbackCanaryFails: the canary host cannot roll back (only a
// truncated backup); the rollout stops there, no other host is touched, and
// the fleet table is still printed (the canary's outcome, the rest "not run").
func TestAnsibleRollbackCanaryFails(t *testing.T) {
	hosts := []fleetHost{newFleetHost(t, "canary", true), newFleetHost(t, "web2", false), newFleetHost(t, "web3", false)}
	out, err := runPlaybook(t, "rollback.yml", hosts)
	if err == nil {
		t.Fatalf("playbook succeeded with a failed canary:\n%s", out)
	}
	// cfrollback's error object comes after its {"warning": ...} lines on stderr
	if !strings.Contains(out, "cfrollback emergency exited 3: preflight: no usable backup") {
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
	mustMatch(t, out, `TASK \[Fleet table\]`, "no fleet table after the failed canary")
	mustMatch(t, out, tableRow("canary", "preflight_failed", "3"), "fleet table lacks the canary's outcome")
	mustMatch(t, out, tableRow("web2", "not run"), "fleet table lacks web2")
	mustMatch(t, out, tableRow("web3", "not run"), "fleet table lacks web3")
	mustMatch(t, out, `(?m)^canary +: .*failed=1 `, "the canary is not counted as failed")
}

// TestAnsibleRollbackUnreachableCanary: the canary cannot be reached. It
// counts as the canary's failure: the rollout stops there and no other host
// is touched; the fleet table still lists every host, the canary as
// UNREACHABLE with Ansible's message, and the playbook fails.
func TestAnsibleRollbackUnreachableCanary(t *testing.T) {
	hosts := []fleetHost{newUnreachableHost(t, "dead1"), newFleetHost(t, "web2", false), newFleetHost(t, "web3", false)}
	out, err := runPlaybook(t, "rollback.yml", hosts)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("playbook did not fail with an unreachable canary (%v):\n%s", err, out)
	}
	for _, h := range hosts[1:] {
		if h.touched() || h.version(t) != "2.0.0-phase2" {
			t.Fatalf("%s was touched after the canary was unreachable:\n%s", h.name, out)
		}
	}
	mustMatch(t, out, `TASK \[Fleet table\]`, "no fleet table after the unreachable canary")
	mustMatch(t, out, tableRow("dead1", "UNREACHABLE", "-", "-", "-", "Failed to connect to the host via ssh")+`?.*Connection refused`,
		"fleet table lacks the unreachable canary and why")
	mustMatch(t, out, tableRow("web2", "not run"), "fleet table lacks web2")
	mustMatch(t, out, tableRow("web3", "not run"), "fleet table lacks web3")
	mustMatch(t, out, `(?m)^dead1 +: .*failed=1 `, "the unreachable canary is not counted as failed")
}

// TestAnsibleRollbackUnreachableLate: with -e max_fail_percentage=100 the
// rollout goes on past an unreachable canary, and a host of the last batch
// is unreachable too: the reachable hosts are rolled back, the table lists
// all four (both unreachable ones with the reason), and the playbook fails on
// the two it could not reach. assess.yml lists them as UNREACHABLE too.
func TestAnsibleRollbackUnreachableLate(t *testing.T) {
	hosts := []fleetHost{newUnreachableHost(t, "dead1"), newFleetHost(t, "web2", false), newFleetHost(t, "web3", false), newUnreachableHost(t, "dead4")}
	out, err := runPlaybook(t, "rollback.yml", hosts, "-e", "max_fail_percentage=100")
	if err == nil {
		t.Fatalf("playbook succeeded with unreachable hosts:\n%s", out)
	}
	for _, h := range hosts[1:3] {
		if h.version(t) != "1.0.0" {
			t.Fatalf("%s not rolled back past the unreachable canary:\n%s", h.name, out)
		}
		mustMatch(t, out, tableRow(h.name, "ok", "0", fleetBackup), "table row")
		mustMatch(t, out, `(?m)^`+h.name+` +: .*failed=0 `, "a reachable host failed")
	}
	for _, h := range []string{"dead1", "dead4"} {
		mustMatch(t, out, tableRow(h, "UNREACHABLE", "-", "-", "-", "Failed to connect")+`?.*Connection refused`, "table row of "+h)
		mustMatch(t, out, `fatal: \[`+h+`\]: FAILED! => .*"msg": "UNREACHABLE, cfrollback did not run: Failed to connect`, h+" not failed with the reason")
		mustMatch(t, out, `(?m)^`+h+` +: .*failed=1 `, h+" is not counted as failed")
	}

	out, err = runPlaybook(t, "assess.yml", hosts[1:])
	if err == nil {
		t.Fatalf("assess.yml succeeded with an unreachable host:\n%s", out)
	}
	mustMatch(t, out, tableRow("dead4", "UNREACHABLE", "-"), "severity table lacks the unreachable host")
	for _, h := range []string{"web2", "web3"} {
		mustMatch(t, out, tableRow(h, "inconclusive", "14"), "severity table lacks "+h)
		mustMatch(t, out, `(?m)^`+h+` +: .*failed=0 `, "a reachable host failed")
	}
}

// TestAnsibleRollbackFleet: three unhealthy hosts, canary then the rest; every
// host is rolled back and the table names each outcome. Run again, the now
// healthy hosts are left alone (nothing changed, the services not restarted);
// with cfrollback_force=true they are rolled back anyway.
func TestAnsibleRollbackFleet(t *testing.T) {
	hosts := []fleetHost{newFleetHost(t, "web1", false), newFleetHost(t, "web2", false), newFleetHost(t, "web3", false)}
	out, err := runPlaybook(t, "rollback.yml", hosts)
	if err != nil {
		t.Fatalf("playbook: %v\n%s", err, out)
	}
	logs := map[string]string{}
	for _, h := range hosts {
		if h.version(t) != "1.0.0" {
			t.Fatalf("%s holds %s after the rollout:\n%s", h.name, h.version(t), out)
		}
		mustMatch(t, out, tableRow(h.name, "ok", "0", fleetBackup), "first run: table row")
		mustMatch(t, out, recap(h.name, 1), "first run: not changed")
		logs[h.name] = h.serviceLog()
		if !strings.Contains(logs[h.name], "start") {
			t.Fatalf("%s: service not started by the rollback: %q", h.name, logs[h.name])
		}
	}

	out, err = runPlaybook(t, "rollback.yml", hosts)
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	for _, h := range hosts {
		mustMatch(t, out, tableRow(h.name, "skipped_healthy", "0", "-"), "second run: table row")
		mustMatch(t, out, recap(h.name, 0), "second run changed a healthy host")
		if got := h.serviceLog(); got != logs[h.name] || h.version(t) != "1.0.0" {
			t.Fatalf("second run touched healthy %s (service log %q, was %q):\n%s", h.name, got, logs[h.name], out)
		}
	}
	if !strings.Contains(out, "healthy: nothing to do") {
		t.Fatalf("second run does not say why it did nothing:\n%s", out)
	}

	out, err = runPlaybook(t, "rollback.yml", hosts, "-e", "cfrollback_force=true")
	if err != nil {
		t.Fatalf("forced run: %v\n%s", err, out)
	}
	for _, h := range hosts {
		mustMatch(t, out, tableRow(h.name, "ok", "0", fleetBackup), "forced run: table row")
		mustMatch(t, out, recap(h.name, 1), "forced run did not roll back")
		if got := h.serviceLog(); !strings.Contains(got[len(logs[h.name]):], "start") {
			t.Fatalf("forced run did not restart %s (service log %q):\n%s", h.name, got, out)
		}
	}
}

// TestAnsibleRollbackCheckMode: --check runs emergency --dry-run on the
// unhealthy host and prints its plan, leaves the healthy one alone, and
// changes nothing anywhere.
func TestAnsibleRollbackCheckMode(t *testing.T) {
	hosts := []fleetHost{newFleetHost(t, "down1", false), newFleetHost(t, "up2", false)}
	hosts[1].up(t)
	out, err := runPlaybook(t, "rollback.yml", hosts, "--check")
	if err != nil {
		t.Fatalf("check mode: %v\n%s", err, out)
	}
	for _, h := range hosts {
		if h.touched() || h.version(t) != "2.0.0-phase2" {
			t.Fatalf("check mode touched %s:\n%s", h.name, out)
		}
		mustMatch(t, out, recap(h.name, 0), "check mode reports a change")
		if m, _ := filepath.Glob(h.s.Install + "?*"); len(m) > 0 {
			t.Fatalf("check mode left %v beside %s's install", m, h.name)
		}
	}
	if !strings.Contains(out, "down1: emergency --dry-run exit 0, outcome planned, backup "+fleetBackup) {
		t.Fatalf("check mode does not say it ran a dry run on down1:\n%s", out)
	}
	mustMatch(t, out, `"stop: would stop `, "check mode prints no plan")
	mustMatch(t, out, `"swap: would swap `, "check mode prints no plan")
	mustMatch(t, out, tableRow("down1", "planned", "0", fleetBackup), "table row of the planned host")
	mustMatch(t, out, tableRow("up2", "skipped_healthy", "0"), "table row of the healthy host")
}

// TestAnsibleRollbackLateFailure: the canary and the 25 % batch succeed, the
// last host fails: the playbook fails (max_fail_percentage 0) and names it,
// the hosts already rolled back stay rolled back, and the table shows all three.
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
	mustMatch(t, out, tableRow("web1", "ok", "0", fleetBackup), "table lacks web1")
	mustMatch(t, out, tableRow("web2", "ok", "0", fleetBackup), "table lacks web2")
	mustMatch(t, out, tableRow("bad3", "preflight_failed", "3"), "table lacks bad3")
	mustMatch(t, out, `(?m)^bad3 +: .*failed=1 `, "bad3 is not counted as failed")
}

// TestAnsibleRollbackMaxFailPercentage: -e max_fail_percentage=100 lets the
// rollout go on past a failed canary (the playbook's own rule, which replaces
// Ansible's for cfrollback failures, honours it): the other hosts are rolled
// back, and the playbook still fails on the canary after the table.
func TestAnsibleRollbackMaxFailPercentage(t *testing.T) {
	hosts := []fleetHost{newFleetHost(t, "canary", true), newFleetHost(t, "web2", false), newFleetHost(t, "web3", false)}
	out, err := runPlaybook(t, "rollback.yml", hosts, "-e", "max_fail_percentage=100")
	if err == nil {
		t.Fatalf("playbook succeeded with a failed canary:\n%s", out)
	}
	for _, h := range hosts[1:] {
		if h.version(t) != "1.0.0" {
			t.Fatalf("%s not rolled back with max_fail_percentage=100:\n%s", h.name, out)
		}
		mustMatch(t, out, tableRow(h.name, "ok", "0", fleetBackup), "table row")
	}
	mustMatch(t, out, tableRow("canary", "preflight_failed", "3"), "table lacks the canary")
	if !strings.Contains(out, "cfrollback emergency exited 3") {
		t.Fatalf("the failure does not carry cfrollback's message:\n%s", out)
	}
}

// TestAnsibleRollbackBadAction: an unknown action stops the play with a
// message listing the valid actions, not a raw template error, and no host
// is touched.
func TestAnsibleRollbackBadAction(t *testing.T) {
	hosts := []fleetHost{newFleetHost(t, "web1", false), newFleetHost(t, "web2", false)}
	out, err := runPlaybook(t, "rollback.yml", hosts, "-e", "cfrollback_action=rolback")
	if err == nil {
		t.Fatalf("playbook accepted action rolback:\n%s", out)
	}
	if !strings.Contains(out, "cfrollback_action=rolback cannot roll back; rollback.yml takes emergency or rollback") ||
		!strings.Contains(out, "emergency, rollback, assess, backup, verify") {
		t.Fatalf("the failure does not list the valid actions:\n%s", out)
	}
	if strings.Contains(out, "has no attribute") || strings.Contains(out, "AnsibleUndefinedVariable") {
		t.Fatalf("a raw template error reached the user:\n%s", out)
	}
	for _, h := range hosts {
		if h.touched() || h.version(t) != "2.0.0-phase2" {
			t.Fatalf("%s touched by a bad action:\n%s", h.name, out)
		}
	}
}

// TestAnsibleAssess: assess.yml runs on every host (a P0 host does not stop
// the others) and lists the most severe first. assess's exit 10 (P0) and 14
// (inconclusive: no monitor samples here) are severities, not failures: the
// playbook succeeds and no host is reported failed.
func TestAnsibleAssess(t *testing.T) {
	hosts := []fleetHost{newFleetHost(t, "calm1", false), newFleetHost(t, "down2", false), newFleetHost(t, "calm3", false)}
	hosts[0].up(t) // down2's service is down: P0
	hosts[2].up(t)
	out, err := runPlaybook(t, "assess.yml", hosts)
	if err != nil {
		t.Fatalf("assess.yml failed although every assess answered: %v\n%s", err, out)
	}
	row := regexp.MustCompile(tableRow("down2", "P0", "10")).FindStringIndex(out)
	if row == nil {
		t.Fatalf("no P0 row for down2:\n%s", out)
	}
	for _, h := range []string{"calm1", "calm3"} {
		j := regexp.MustCompile(tableRow(h, "inconclusive", "14")).FindStringIndex(out)
		if j == nil || j[0] < row[0] {
			t.Fatalf("%s missing from the table as inconclusive (exit 14) or listed before the P0 host:\n%s", h, out)
		}
		mustMatch(t, out, `"`+h+`: severity inconclusive \(exit 14\)"`, "per-host line")
	}
	for _, bad := range []string{"fatal:", "FAILED", "...ignoring"} {
		if strings.Contains(out, bad) {
			t.Fatalf("a severity is shown as a failure (%q):\n%s", bad, out)
		}
	}
	for _, h := range hosts {
		mustMatch(t, out, `(?m)^`+h.name+` +: .*failed=0 +skipped=\d+ +rescued=0 +ignored=0`, "recap")
	}
}

// TestAnsibleLint: the playbooks and the role pass ansible-lint (Debian's
// ansible-lint package, installed by scripts/setup-deps.sh), offline.
func TestAnsibleLint(t *testing.T) {
	lint := testenv.RequireTool(t, "ansible-lint")
	dir := t.TempDir()
	cmd := exec.Command(lint, "--offline", "-p", "--nocolor")
	cmd.Dir = filepath.Join(testenv.RepoRoot(t), "deploy", "ansible")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
		"ANSIBLE_HOME="+filepath.Join(dir, "ansible-home"), "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 failure(s)") {
		t.Fatalf("ansible-lint: %v\n%s", err, out)
	}
}
