package cli

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/cfrollback/cfrollback/internal/testenv"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// mountOff keeps the standby's read-only mount off in these tests unless one turns it on: a
// refreshed standby's mount would stop the removal of the test's temp dir.
const mountOff = "CFROLLBACK_STANDBY_READ_ONLY_MOUNT"

func TestMain(m *testing.M) {
	if _, set := os.LookupEnv(mountOff); !set {
		_ = os.Setenv(mountOff, "false")
	}
	testscript.Main(m, map[string]func(){
		"cfrollback": func() { os.Exit(Main()) },
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script: each one
// is a small sandbox with its own install dir, backups, journal and a
// service driven by shell commands.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			w := env.WorkDir
			env.Setenv(mountOff, "false") // a script that turns it on gets its mounts detached at the end
			env.Defer(func() {
				for _, m := range testenv.MountsUnder(w) {
					_ = unix.Unmount(m, unix.MNT_DETACH)
				}
			})
			env.Setenv("CFROLLBACK_INSTALL_DIR", w+"/opt/app")
			env.Setenv("CFROLLBACK_BACKUP_DIR", w+"/backups")
			env.Setenv("CFROLLBACK_JOURNAL", w+"/log/journal.jsonl")
			env.Setenv("CFROLLBACK_LOCK", w+"/run/cfrollback.lock")
			env.Setenv("CFROLLBACK_LOG_DIR", w+"/log")
			env.Setenv("CFROLLBACK_BACKUP_STATE", w+"/state/backups.json")
			env.Setenv("CFROLLBACK_STATE_DIR", w+"/state")
			env.Setenv("CFROLLBACK_DATABASE_BACKUP_DIR", w+"/dbbackups")
			env.Setenv("CFROLLBACK_SERVICE_MANAGER", "command")
			env.Setenv("CFROLLBACK_SERVICE_START_COMMAND", "touch "+w+"/running; echo start >>"+w+"/service.log")
			env.Setenv("CFROLLBACK_SERVICE_STOP_COMMAND", "rm -f "+w+"/running; echo stop >>"+w+"/service.log")
			env.Setenv("CFROLLBACK_SERVICE_STATUS_COMMAND", "test -f "+w+"/running")
			env.Setenv("CFROLLBACK_SERVICE_STOP_TIMEOUT", "5s")
			env.Setenv("CFROLLBACK_SERVICE_START_TIMEOUT", "5s")
			env.Setenv("CFROLLBACK_HEALTH_URL", "")
			env.Setenv("CFROLLBACK_HEALTH_INTERVAL", "20ms")
			env.Setenv("CFROLLBACK_HEALTH_CONSECUTIVE", "2")
			env.Setenv("CFROLLBACK_HEALTH_WAIT_TIMEOUT", "5s")
			env.Setenv("NO_COLOR", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// exitcode N prog args...: run prog and require exit status N.
			"exitcode": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) < 2 {
					ts.Fatalf("usage: exitcode N prog args...")
				}
				want, err := strconv.Atoi(args[0])
				ts.Check(err)
				got := 0
				if err := ts.Exec(args[1], args[2:]...); err != nil {
					var ee *exec.ExitError
					if !errors.As(err, &ee) {
						ts.Fatalf("%v", err)
					}
					got = ee.ExitCode()
				}
				if (got == want) == neg {
					ts.Fatalf("exit status %d, want %d", got, want)
				}
			},
		},
	})
}
