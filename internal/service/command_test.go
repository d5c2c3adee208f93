package service

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fileService is a "service" made of files in a temp dir: it is up while dir/up exists.
func fileService(t *testing.T, start, stop string) (*commandManager, string) {
	t.Helper()
	dir := t.TempDir()
	r := strings.NewReplacer("$DIR", dir)
	m, err := newCommand(Config{
		Manager:       KindCommand,
		StartCommand:  r.Replace(start),
		StopCommand:   r.Replace(stop),
		StatusCommand: r.Replace(`test -f "$DIR/up"`),
		StopTimeout:   5 * time.Second,
		StartTimeout:  5 * time.Second,
	}.withDefaults(), deps{run: &execRunner{}})
	if err != nil {
		t.Fatal(err)
	}
	m.interval = 20 * time.Millisecond
	return m, dir
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCommandStartAndStopPollStatus(t *testing.T) {
	// Both commands return at once and change the state 300 ms later, as real daemons do.
	m, dir := fileService(t, `(sleep 0.3; touch "$DIR/up") &`, `(sleep 0.3; rm -f "$DIR/up") &`)
	ctx := context.Background()

	if st, err := m.Status(ctx); err != nil || st.Active || st.State != "inactive" || !st.Exists {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	begin := time.Now()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < 300*time.Millisecond {
		t.Errorf("Start returned after %s, before the status command said up", took)
	}
	if st, err := m.Status(ctx); err != nil || !st.Active || st.State != "active" {
		t.Fatalf("Status after Start = %+v, %v", st, err)
	}
	begin = time.Now()
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < 300*time.Millisecond {
		t.Errorf("Stop returned after %s, before the status command said down", took)
	}
	if _, err := os.Stat(filepath.Join(dir, "up")); !os.IsNotExist(err) {
		t.Errorf("service still up after Stop: %v", err)
	}
}

func TestCommandStartAndStopAreNoOpsInTheTargetState(t *testing.T) {
	m, dir := fileService(t, `echo started >>"$DIR/log"`, `echo stopped >>"$DIR/log"`)
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(dir, "up"))
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "log")); !os.IsNotExist(err) {
		t.Errorf("a command ran although the service was already in the wanted state")
	}
}

func TestCommandStopFailureOnDownServiceIsSuccess(t *testing.T) {
	m, dir := fileService(t, `true`, `rm -f "$DIR/up"; echo "kill: no such process" >&2; exit 1`)
	touch(t, filepath.Join(dir, "up"))
	if err := m.Stop(context.Background()); err != nil {
		t.Errorf("Stop = %v; the service is down, which is what was asked", err)
	}
}

func TestCommandErrorsCarryOutputTail(t *testing.T) {
	// 10 KiB of output, then the line that matters: the error keeps only the last 4 KiB.
	m, dir := fileService(t, `true`, `head -c 10240 /dev/zero | tr '\0' x; echo; echo "cannot stop: permission denied" >&2; exit 3`)
	touch(t, filepath.Join(dir, "up"))
	err := m.Stop(context.Background())
	if err == nil {
		t.Fatal("Stop succeeded")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "stop service (start/stop/status commands): stop command: exit status 3: ") ||
		!strings.HasSuffix(msg, "cannot stop: permission denied") || len(msg) > 4200 {
		t.Errorf("error (%d bytes) = %.200q...", len(msg), msg)
	}
}

func TestCommandTimeouts(t *testing.T) {
	t.Run("never comes up", func(t *testing.T) {
		m, _ := fileService(t, `true`, `true`)
		m.startTimeout = 300 * time.Millisecond
		err := m.Start(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "status command still reports it down after") {
			t.Errorf("Start = %v", err)
		}
	})
	t.Run("never goes down", func(t *testing.T) {
		m, dir := fileService(t, `true`, `true`)
		touch(t, filepath.Join(dir, "up"))
		m.stopTimeout = 300 * time.Millisecond
		err := m.Stop(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "status command still reports it up after") {
			t.Errorf("Stop = %v", err)
		}
	})
	t.Run("start command hangs: its process group is killed", func(t *testing.T) {
		m, dir := fileService(t, `sleep 30 & echo $! >"$DIR/child"; wait`, `true`)
		m.startTimeout = 300 * time.Millisecond
		begin := time.Now()
		err := m.Start(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "start command still running after") {
			t.Errorf("Start = %v", err)
		}
		if took := time.Since(begin); took > 3*time.Second {
			t.Errorf("Start took %s", took)
		}
		pid := readPIDFile(t, filepath.Join(dir, "child"))
		waitGone(t, pid)
	})
}

// A start command that leaves a daemon behind must return even if the daemon keeps the
// inherited stdout open.
func TestCommandStartBackgroundsDaemon(t *testing.T) {
	for name, start := range map[string]string{
		"nohup with redirect":  `nohup sleep 30 >"$DIR/log" 2>&1 & echo $! >"$DIR/pid"; touch "$DIR/up"`,
		"inherits stdout":      `sleep 30 & echo $! >"$DIR/pid"; touch "$DIR/up"`,
		"setsid, prints first": `echo starting; setsid sleep 30 & echo $! >"$DIR/pid"; touch "$DIR/up"`,
	} {
		t.Run(name, func(t *testing.T) {
			m, dir := fileService(t, start, `kill $(cat "$DIR/pid") && rm -f "$DIR/up"`)
			t.Cleanup(func() {
				if pid, err := os.ReadFile(filepath.Join(dir, "pid")); err == nil {
					if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
						_ = syscall.Kill(n, syscall.SIGKILL)
					}
				}
			})
			begin := time.Now()
			if err := m.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(begin); took > 3*time.Second {
				t.Errorf("Start took %s: it waited on the daemon", took)
			}
			pid := readPIDFile(t, filepath.Join(dir, "pid"))
			if !alive(pid) {
				t.Errorf("the daemon did not survive Start")
			}
			if err := m.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			waitGone(t, pid)
		})
	}
}

func TestNewCommandNeedsAllCommands(t *testing.T) {
	_, err := New(context.Background(), Config{Manager: KindCommand, StartCommand: "x"})
	want := `service.manager is "command" but service.stop_command, service.status_command not set; ` +
		`set service.start_command, service.stop_command and service.status_command (which exits 0 when the service is up)`
	if err == nil || err.Error() != want {
		t.Errorf("New = %v\nwant %s", err, want)
	}
}

func readPIDFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitGone waits until pid has exited (a zombie counts: reaping orphans is init's job).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still exists", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "123 (sleep) Z ...".
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func TestPollScheduleCommandKeepsTenMillisecondsForASecond(t *testing.T) {
	m, _ := fileService(t, "true", "true")
	m.interval = 200 * time.Millisecond
	s := m.schedule()
	var waits []time.Duration
	var prev, elapsed time.Duration
	for elapsed < 2*time.Second {
		prev = s.next(prev, elapsed)
		waits = append(waits, prev)
		elapsed += prev
	}
	for i, w := range waits {
		switch at := sum(waits[:i]); {
		case at < commandSteadyPoll && w != 10*time.Millisecond:
			t.Fatalf("wait %d (after %s) = %s, want 10ms for the first second: %v", i, at, w, waits)
		case w > 200*time.Millisecond:
			t.Fatalf("wait %d = %s, more than the interval", i, w)
		}
	}
	if last := waits[len(waits)-1]; last != 200*time.Millisecond {
		t.Errorf("after 2 s the wait is %s, want the interval (200ms)", last)
	}
	// poll's own schedule (systemd, pm2: a check there is a D-Bus call or a node process)
	// still doubles from the first wait.
	plain := pollSchedule{first: firstPoll, max: time.Second}
	if w := plain.next(plain.next(plain.next(0, 0), 10*time.Millisecond), 30*time.Millisecond); w != 40*time.Millisecond {
		t.Errorf("plain schedule's third wait = %s, want 40ms", w)
	}
}

func sum(ds []time.Duration) (t time.Duration) {
	for _, d := range ds {
		t += d
	}
	return t
}

// A service that comes up 300 ms after its start command returns is checked every 10 ms
// meanwhile, so it is seen up within about 10 ms of that, not at the next doubled wait (the
// waits were 10, 20, 40, 80, 160 ms: checks at 0, 10, 30, 70, 150, 310 ms).
func TestCommandStartChecksStatusOftenAtFirst(t *testing.T) {
	exitErr := exec.Command("false").Run() // a real *exec.ExitError, as a status command's "down"
	var startedAt time.Time
	var downChecks int
	run := &fakeRunner{fn: func(_ string, args []string) ([]byte, error) {
		switch args[1] {
		case "start-it":
			startedAt = time.Now()
			return nil, nil
		case "is-up":
			if startedAt.IsZero() || time.Since(startedAt) < 300*time.Millisecond {
				downChecks++
				return nil, exitErr
			}
			return nil, nil
		}
		return nil, errors.New("unexpected command")
	}}
	m, err := newCommand(Config{Manager: KindCommand, StartCommand: "start-it", StopCommand: "stop-it", StatusCommand: "is-up",
		StartTimeout: 5 * time.Second}.withDefaults(), deps{run: run})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 1 before the start command, then one every 10 ms (plus the check's own time) for 300 ms.
	if downChecks < 12 {
		t.Errorf("the status command was run %d times while the service came up in 300 ms, want at least 12 (one every ~10 ms)", downChecks)
	}
}
