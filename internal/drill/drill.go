// Package drill is the main job on a throwaway sandbox: it builds a tiny
// HTTP app run by the `command` service manager, makes a good backup and a
// corrupt newer one, deploys a broken version, runs the real emergency
// procedure against it and checks what came out. No root, systemd or pm2.
package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/archive"
	"github.com/cfrollback/cfrollback/internal/drillapp"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/journal"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/service"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/standby"
)

// Options of a drill.
type Options struct {
	Dir  string // sandbox; "" = a new temp dir
	Keep bool   // keep the sandbox afterwards
	// Exe is the cfrollback binary that serves the app (drill-app).
	Exe    string
	Events func(runbook.Event)
	Say    func(format string, a ...any)
}

// Check is one thing the drill asserts at the end.
type Check struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	Info string `json:"info"`
}

// Report is what the drill did and found.
type Report struct {
	Sandbox   string          `json:"sandbox"`
	Kept      bool            `json:"kept"`
	Emergency *runbook.Result `json:"emergency"`
	Checks    []Check         `json:"checks"`
	OK        bool            `json:"ok"`
	Journal   []journal.Run   `json:"-"`
}

// Run performs the drill.
func Run(ctx context.Context, opt Options) (rep *Report, err error) {
	say := opt.Say
	if say == nil {
		say = func(string, ...any) {}
	}
	dir := opt.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cfrollback-drill-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rep = &Report{Sandbox: dir, Kept: opt.Keep}
	port, err := drillapp.FreePort()
	if err != nil {
		return rep, err
	}
	cfg := Config(dir, opt.Exe, port)
	mgr, err := service.New(ctx, runbook.ServiceConfig(cfg))
	if err != nil {
		return rep, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = mgr.Stop(sctx)
		endSpawned(sctx, spawnedFile(dir), dir)
		if !opt.Keep {
			_ = standby.Disarm(cfg.StandbyPath()) // its read-only mount would stop the removal
			_ = os.RemoveAll(dir)
		}
	}()

	say("sandbox %s, app on 127.0.0.1:%d, managed by shell commands", dir, port)
	if err := drillapp.WriteInstall(cfg.InstallDir, "1.0.0", true); err != nil {
		return rep, err
	}
	if err := mgr.Start(ctx); err != nil {
		return rep, fmt.Errorf("start the good version: %w", err)
	}
	if _, err := health.WaitHealthy(ctx, health.WaitOptions{Interval: 100 * time.Millisecond, Consecutive: 1, Timeout: 10 * time.Second},
		&health.HTTPProbe{URL: cfg.Health.URL, Timeout: time.Second}); err != nil {
		return rep, fmt.Errorf("the good version never became healthy: %w", err)
	}
	say("v1.0.0 is up and healthy")

	good := filepath.Join(cfg.Backup.Dir, "backup-"+time.Now().Add(-2*time.Hour).Format(settings.TimestampLayout)+".tar.gz")
	sum, err := archive.Create(ctx, cfg.InstallDir, good, archive.CreateOptions{})
	if err != nil {
		return rep, fmt.Errorf("back up v1.0.0: %w", err)
	}
	say("backed up v1.0.0 to %s (%d entries)", filepath.Base(good), sum.Entries)
	corrupt := filepath.Join(cfg.Backup.Dir, "backup-"+time.Now().Add(-time.Hour).Format(settings.TimestampLayout)+".tar.gz")
	if err := truncatedCopy(good, corrupt); err != nil {
		return rep, err
	}
	say("planted a newer, truncated backup %s (it must be skipped, loudly)", filepath.Base(corrupt))

	if err := drillapp.WriteInstall(cfg.InstallDir, "2.0.0-phase2", false); err != nil {
		return rep, err
	}
	if err := mgr.Stop(ctx); err != nil {
		return rep, err
	}
	if err := mgr.Start(ctx); err != nil {
		return rep, fmt.Errorf("start the broken version: %w", err)
	}
	r := (&health.HTTPProbe{URL: cfg.Health.URL, Timeout: time.Second}).Probe(ctx)
	say("deployed v2.0.0-phase2 in place: health says %q", r.Detail)

	say("running: cfrollback emergency")
	res, emErr := runbook.Emergency(ctx, runbook.Options{Config: cfg, Command: "emergency", Args: []string{"emergency"}},
		runbook.Deps{Service: mgr, Events: opt.Events})
	rep.Emergency = res

	emInfo := "outcome ok"
	if emErr != nil {
		emInfo = emErr.Error()
	}
	rep.check("emergency exited ok", emErr == nil, emInfo)
	body := health.HTTPProbe{URL: cfg.Health.URL, Timeout: time.Second}
	hr := body.Probe(ctx)
	rep.check("service healthy after the rollback", hr.OK, hr.Detail)
	v, _ := os.ReadFile(filepath.Join(cfg.InstallDir, drillapp.VersionFile))
	rep.check("install dir holds v1.0.0", strings.TrimSpace(string(v)) == "1.0.0", "VERSION "+strings.TrimSpace(string(v)))
	if res != nil {
		fv, _ := os.ReadFile(filepath.Join(res.FailedDir, drillapp.VersionFile))
		rep.check("failed install kept intact", strings.TrimSpace(string(fv)) == "2.0.0-phase2", res.FailedDir)
		rep.check("corrupt newer backup skipped loudly", len(res.Skipped) == 1 && res.Skipped[0].Path == corrupt, fmt.Sprint(len(res.Skipped), " skipped"))
		rep.check("downtime reported", res.DowntimeMS > 0, fmt.Sprintf("%d ms", res.DowntimeMS))
	}
	data, _ := os.ReadFile(filepath.Join(cfg.InstallDir, drillapp.DataFile))
	rep.check("live data carried over (.swarm)", strings.Contains(string(data), "started version 2.0.0-phase2") &&
		strings.Count(string(data), "started version 1.0.0") >= 2, fmt.Sprintf("%d lines", strings.Count(string(data), "\n")))
	problems, jerr := journal.Verify(cfg.Journal)
	jInfo := fmt.Sprintf("%d problems", len(problems))
	if jerr != nil {
		jInfo = jerr.Error()
	}
	rep.check("journal intact", jerr == nil && len(problems) == 0, jInfo)
	if recs, err := journal.ReadAll(cfg.Journal); err == nil {
		rep.Journal = journal.Runs(recs)
	}
	rep.OK = true
	for _, c := range rep.Checks {
		rep.OK = rep.OK && c.OK
	}
	return rep, nil
}

func (r *Report) check(name string, ok bool, info string) {
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Info: info})
}

// Config is the drill's settings: every path inside the sandbox.
func Config(dir, exe string, port int) settings.Config {
	cfg := settings.Defaults()
	run := filepath.Join(dir, "run")
	_ = os.MkdirAll(run, 0o755)
	_ = os.MkdirAll(filepath.Join(dir, "opt"), 0o755)
	_ = os.MkdirAll(filepath.Join(dir, "backups"), 0o700)
	cfg.InstallDir = filepath.Join(dir, "opt", "claude-flow")
	cfg.FailedDirPattern = "{install}-failed-{ts}"
	cfg.Backup.Dir = filepath.Join(dir, "backups")
	cfg.Journal = filepath.Join(dir, "log", "journal.jsonl")
	cfg.Lock = filepath.Join(run, "cfrollback.lock")
	cfg.LogDir = filepath.Join(dir, "log")
	cfg.Backup.State = filepath.Join(dir, "state", "backups.json")
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Database.BackupDir = filepath.Join(dir, "dbbackups")
	pid := filepath.Join(run, "app.pid")
	q := shq
	cfg.Service.Manager = "command"
	// The app writes app.pid once it listens, and the status command goes by that. The
	// shell notes the pid it spawned as well, so that a drill interrupted before the app
	// listens can still end it (endSpawned).
	cfg.Service.StartCommand = fmt.Sprintf("nohup %s drill-app --install %s --addr 127.0.0.1:%d --pidfile %s >>%s 2>&1 </dev/null & echo $! >%s",
		q(exe), q(cfg.InstallDir), port, q(pid), q(filepath.Join(run, "app.log")), q(spawnedFile(dir)))
	cfg.Service.StopCommand = fmt.Sprintf("[ -f %[1]s ] && kill $(cat %[1]s) 2>/dev/null; true", q(pid))
	cfg.Service.StatusCommand = fmt.Sprintf("[ -f %[1]s ] && kill -0 $(cat %[1]s) 2>/dev/null", q(pid))
	cfg.Service.StopTimeout = 10 * time.Second
	cfg.Service.StartTimeout = 10 * time.Second
	cfg.Health.URL = fmt.Sprintf("http://127.0.0.1:%d/health", port)
	cfg.Health.Interval = 100 * time.Millisecond
	cfg.Health.Consecutive = 3
	cfg.Health.WaitTimeout = 15 * time.Second
	return cfg
}

// spawnedFile is where the start command notes the pid it spawned.
func spawnedFile(dir string) string { return filepath.Join(dir, "run", "app.spawned") }

// endSpawned ends the app the last start command spawned if it still runs: a drill
// interrupted while the app started (it had not yet written its pidfile, so the status
// command said down and the stop did nothing). The pid is ended only while its command
// line still names drill-app and this sandbox, so a pid reused by another process is left
// alone. SIGTERM first, SIGKILL when it has not gone within 5 s or ctx's end.
func endSpawned(ctx context.Context, file, dir string) {
	b, err := os.ReadFile(file)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || !ours(pid, dir) {
		return
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(pid) && ours(pid, dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// ours: pid is alive and its command line names drill-app and the sandbox dir.
func ours(pid int, dir string) bool {
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return err == nil && alive(pid) && bytes.Contains(cmdline, []byte("\x00drill-app\x00")) && bytes.Contains(cmdline, []byte(dir))
}

// alive: pid exists and has not exited (a zombie waiting for its parent has).
func alive(pid int) bool {
	st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
	}
	i := bytes.LastIndexByte(st, ')')
	return i < 0 || len(st) < i+3 || (st[i+2] != 'Z' && st[i+2] != 'X')
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func truncatedCopy(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b[:len(b)*2/3], 0o600)
}
