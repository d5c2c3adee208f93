package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/testenv"
)

// TestBackupScheduleInstallSystemd installs the shipped units into a real
// systemd (the sandbox) over D-Bus and asserts what 'systemctl' there says:
// the timer enabled and active/waiting, the service not started.
func TestBackupScheduleInstallSystemd(t *testing.T) {
	sb := testenv.Systemd(t)
	// Persistent=true makes systemd create a stamp file under
	// /var/lib/systemd/timers when the timer starts. The sandbox shares the
	// host's /var, so give it a tmpfs there in its own mount namespace.
	varLib := "/var/lib/systemd"
	if _, err := os.Stat(varLib); err != nil {
		varLib = "/var/lib"
	}
	if out, err := sb.Exec("mount", "-t", "tmpfs", "tmpfs", varLib); err != nil {
		t.Fatalf("hide %s from the sandbox: %v\n%s", varLib, err, out)
	}

	for round := 1; round <= 2; round++ { // a second install rewrites and stays enabled
		io, out, errOut := testIO()
		opts := &backupScheduleOptions{IO: io, UnitDir: sb.UnitDir, Binary: "/opt/cf tools/cfrollback", ConfigFile: "/etc/cfrollback/staging.yaml"}
		if err := runBackupSchedule(t.Context(), opts); err != nil {
			t.Fatalf("round %d: %v\n%s%s", round, err, out, errOut)
		}
		if !strings.Contains(out.String(), "scheduled: cfrollback-backup.timer enabled and started") ||
			!regexp.MustCompile(`next run: \d{4}-\d\d-\d\d 02:0\d`).MatchString(out.String()) {
			t.Errorf("round %d output:\n%s", round, out)
		}
	}

	svc, err := os.ReadFile(filepath.Join(sb.UnitDir, service.ScheduleService))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ExecStart="/opt/cf tools/cfrollback" --config /etc/cfrollback/staging.yaml backup create --label scheduled`,
		`ExecStart="/opt/cf tools/cfrollback" --config /etc/cfrollback/staging.yaml backup prune`,
	} {
		if !strings.Contains(string(svc), want) {
			t.Errorf("service unit lacks %q:\n%s", want, svc)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(sb.UnitDir, ".*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	timers, err := sb.Exec("systemctl", "list-timers", "--all", "--no-pager", "--no-legend")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemctl list-timers in the sandbox:\n%s", timers)
	if !regexp.MustCompile(`(?m)02:0\d:\d\d .*cfrollback-backup\.timer +cfrollback-backup\.service`).Match(timers) {
		t.Errorf("systemctl list-timers does not show the timer due at 02:0x:\n%s", timers)
	}
	show := func(unit string) string {
		out, err := sb.Exec("systemctl", "show", "-p", "ActiveState,SubState,UnitFileState,LoadState", unit)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	timer := show(service.ScheduleTimer)
	for _, want := range []string{"LoadState=loaded", "ActiveState=active", "SubState=waiting", "UnitFileState=enabled"} {
		if !strings.Contains(timer, want) {
			t.Errorf("timer lacks %s:\n%s", want, timer)
		}
	}
	if unit := show(service.ScheduleService); !strings.Contains(unit, "ActiveState=inactive") || !strings.Contains(unit, "LoadState=loaded") {
		t.Errorf("the service was started (or not loaded); only the timer should be:\n%s", unit)
	}
	if v, err := sb.Exec("systemd-analyze", "verify", filepath.Join("/run/systemd/system", service.ScheduleTimer)); err != nil {
		t.Logf("systemd-analyze verify: %v\n%s", err, v)
	}
}

func TestBackupScheduleDryRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	io, out, _ := testIO()
	opts := &backupScheduleOptions{IO: io, DryRun: true, UnitDir: dir, Binary: "/usr/local/bin/cfrollback"}
	if err := runBackupSchedule(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# " + dir + "/cfrollback-backup.service\n",
		"ExecStart=/usr/local/bin/cfrollback backup create --label scheduled\n",
		"ExecStart=/usr/local/bin/cfrollback backup prune\n",
		"# " + dir + "/cfrollback-backup.timer\n",
		"OnCalendar=*-*-* 02:00:00\n", "Persistent=true\n", "WantedBy=timers.target\n",
		"would run: systemctl daemon-reload && systemctl enable --now cfrollback-backup.timer",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("dry run wrote %v", left)
	}
}

func TestSystemdQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/local/bin/cfrollback": "/usr/local/bin/cfrollback",
		"/opt/my tools/cfrollback":  `"/opt/my tools/cfrollback"`,
		`/x/a"b\c`:                  `"/x/a\"b\\c"`,
		"/x/100%/cfrollback":        "/x/100%%/cfrollback",
	} {
		if got := service.SystemdQuote(in); got != want {
			t.Errorf("service.SystemdQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
