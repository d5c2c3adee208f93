package integration

import (
	"os"
	"testing"
)

// TestMain keeps the standby's read-only mount off in the cfrollback processes these tests
// start, unless the environment turns it on: a refreshed standby's mount would stop the
// removal of the test's temp dir, and the systemd sandboxes the tests boot reach every temp
// dir writable, so refresh would not mount it anyway (the mount has its own tests in
// internal/standby and internal/runbook, and the drill's).
func TestMain(m *testing.M) {
	const k = "CFROLLBACK_STANDBY_READ_ONLY_MOUNT"
	if _, set := os.LookupEnv(k); !set {
		_ = os.Setenv(k, "false")
	}
	os.Exit(m.Run())
}
