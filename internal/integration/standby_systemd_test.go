package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/drillapp"
)

// TestStandbySystemd is the warm path with the service as a real systemd unit (the systemd
// sandbox): a refreshed standby is taken by `cfrollback emergency`, the unit is active and
// healthy on the backup's version, the failed install is kept; then, after the install is
// broken again and one file of the (refreshed) standby is edited, the next emergency does not
// take it, says why, extracts, and still ends healthy with the backup's own file.
func TestStandbySystemd(t *testing.T) {
	sd, s, url := systemdDrillUnit(t, "cfrollback standby integration app")
	env := []string{"CFROLLBACK_SERVICE_MANAGER=systemd", "CFROLLBACK_SERVICE_UNIT=cfr-app", "CFROLLBACK_HEALTH_URL=" + url}
	unitActive := func(when string) {
		t.Helper()
		out, err := sd.Exec("systemctl", "is-active", "cfr-app.service")
		if err != nil || strings.TrimSpace(string(out)) != "active" {
			t.Fatalf("unit %s: %s %v", when, out, err)
		}
	}
	standbyTree := s.Install + ".standby"

	s.refreshStandby(env)
	if out, err := sd.Exec("systemctl", "start", "cfr-app.service"); err != nil {
		t.Fatalf("start unit: %v %s", err, out)
	}
	waitHTTP(t, url, 503, 10*time.Second) // the broken deploy is up and unhealthy

	r := s.run(env, "emergency", "--json")
	s.assertRolledBack(r, url)
	unitActive("after the warm emergency")
	if sb := standbyOf(t, r); sb["used"] != true {
		t.Fatalf("the emergency did not take the refreshed standby: %v", sb)
	}
	if svc, _ := r.JSON["service"].(string); !strings.Contains(svc, "systemd") {
		t.Fatalf("service %q, want the systemd unit", svc)
	}
	if _, n := dirsHolding(t, s.Install+"-failed-*", "2.0.0-phase2"); n != 1 {
		t.Fatalf("%d failed dirs hold the broken version, want 1 (the failed install kept)", n)
	}
	if st := s.run(env, "standby", "status"); st.Code != 0 {
		t.Fatalf("no ready standby after the emergency's refresh: exit %d\n%s", st.Code, st.Stdout)
	}

	// Break the install again, under the unit, and edit one file of the standby.
	if err := drillapp.WriteInstall(s.Install, "2.0.0-phase2", false); err != nil {
		t.Fatal(err)
	}
	if out, err := sd.Exec("systemctl", "restart", "cfr-app.service"); err != nil {
		t.Fatalf("restart unit: %v %s", err, out)
	}
	waitHTTP(t, url, 503, 10*time.Second)
	edited := filepath.Join(standbyTree, "app", "README")
	f, err := os.OpenFile(edited, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("tampered\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	r = s.run(env, "emergency", "--json")
	s.assertRolledBack(r, url)
	unitActive("after the cold emergency")
	sb := standbyOf(t, r)
	if sb["used"] != false || !strings.Contains(fmt.Sprint(sb["reason"]), "app/README") {
		t.Fatalf("the emergency took an edited standby, or does not name the edited file: %v", sb)
	}
	if got := readFile(t, filepath.Join(s.Install, "app", "README")); got != "drill app 1.0.0" {
		t.Fatalf("the install holds app/README %q, want the backup's", got)
	}
	if _, n := dirsHolding(t, s.Install+"-failed-*", "2.0.0-phase2"); n != 2 {
		t.Fatalf("%d failed dirs hold the broken version, want 2", n)
	}
}
