package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// TestDrill is `make demo` as a test: the drill must pass every check and
// leave nothing behind.
func TestDrill(t *testing.T) {
	dir := t.TempDir() + "/drill"
	out, err := exec.Command(binary(t), "drill", "--json", "--dir", dir).Output()
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, out)
	}
	var rep struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("drill --json: %v\n%s", err, out)
	}
	if !rep.OK || len(rep.Checks) < 8 {
		t.Fatalf("drill report: %s", out)
	}
	for _, c := range rep.Checks {
		if !c.OK {
			t.Errorf("drill check failed: %s", c.Name)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("drill left its sandbox behind: %v", err)
	}
}
