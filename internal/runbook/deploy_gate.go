package runbook

// The deploy's command, its health gate and its watch window.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/assess"
	"github.com/cfrollback/cfrollback/internal/health"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// commandGrace is how long the deploy command's process group has between SIGTERM and
// SIGKILL once it is stopped (deploy.command_timeout, Ctrl-C).
const commandGrace = 5 * time.Second

// runDeployCommand runs the deploy command; a non-zero exit, a kill or a timeout fails it.
func (d *deployRun) runDeployCommand(ctx context.Context) (string, any, error) {
	argv, limit := d.dopt.Command, d.cfg.Deploy.CommandTimeout
	if d.opt.DryRun {
		return fmt.Sprintf("would run %s (at most %s; its process group is killed after that or on Ctrl-C)", shellJoin(argv), limit), nil, nil
	}
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t0 := time.Now()
	code, err := d.dd.Run(cctx, argv, d.dd.Stdout, d.dd.Stderr)
	took := time.Since(t0).Round(time.Millisecond)
	if code >= 0 {
		d.dres.ExitCode = &code
	}
	data := commandData{ExitCode: code, DurationMS: took.Milliseconds()}
	switch {
	case errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		return "", data, fmt.Errorf("%s ran longer than deploy.command_timeout (%s): its process group was killed", argv[0], limit)
	case ctx.Err() != nil:
		return "", data, fmt.Errorf("%s was stopped: %w", argv[0], context.Cause(ctx))
	case err != nil:
		return "", data, fmt.Errorf("run %s: %w", argv[0], err)
	case code != 0:
		return "", data, fmt.Errorf("%s exited %d after %s", argv[0], code, took)
	}
	return fmt.Sprintf("%s exited 0 after %s", argv[0], took), data, nil
}

// commandData is the deploy step's journal payload: the command's exit code (-1: killed or
// not started) and how long it ran.
type commandData struct {
	ExitCode   int   `json:"exit_code"`
	DurationMS int64 `json:"duration_ms"`
}

// gateData is the gate step's journal payload: the attempts and the last one's results.
type gateData struct {
	Attempts int             `json:"attempts"`
	Results  []health.Result `json:"results"`
}

// runCommand runs argv in its own process group with the output passed through; when ctx
// ends the group gets SIGTERM, and SIGKILL commandGrace later. exitCode is -1 when it did
// not exit by itself (killed, or not started: then err says why).
func runCommand(ctx context.Context, argv []string, stdout, stderr io.Writer) (int, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = commandGrace
	err := cmd.Run()
	if cmd.Process != nil {
		// whatever of the group is left (a child that ignored SIGTERM, one that outlived its
		// parent) goes too; ESRCH when none is
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.Exited() && ctx.Err() == nil:
		return ee.ExitCode(), nil
	case errors.As(err, &ee):
		return -1, nil
	}
	return -1, err
}

// gate waits for deploy.gate_passes consecutive passes of the emergency's probes (service
// active, health.url 2xx) within deploy.gate_timeout.
func (d *deployRun) gate(ctx context.Context) (string, any, error) {
	dc := d.cfg.Deploy
	if d.opt.DryRun {
		return fmt.Sprintf("would wait up to %s for %d consecutive passes of %s", dc.GateTimeout, dc.GatePasses, d.probeNames()), nil, nil
	}
	attempts := 0
	results, err := health.WaitHealthy(ctx, health.WaitOptions{
		Interval: d.cfg.Health.Interval, Consecutive: dc.GatePasses, Timeout: dc.GateTimeout,
		OnAttempt: func(n int, _ bool, _ []health.Result) { attempts = n },
	}, d.probes()...)
	d.dres.Gate = results
	data := gateData{Attempts: attempts, Results: results}
	if err != nil {
		return "", data, fmt.Errorf("health gate: %w", err)
	}
	return fmt.Sprintf("%d consecutive passes of %s (%d attempts)", dc.GatePasses, d.probeNames(), attempts), data, nil
}

func (d *deployRun) probeNames() string {
	if d.cfg.Health.URL != "" && d.deps.Probes == nil {
		return "service active and " + d.cfg.Health.URL
	}
	return "the service's probes"
}

// WatchResult is the watch window: how many samples and the last assessment.
type WatchResult struct {
	Samples    int               `json:"samples"`
	DurationMS int64             `json:"duration_ms"`
	FailOn     []string          `json:"fail_on"`
	Assessment assess.Assessment `json:"assessment"`
}

// watch samples the service every deploy.watch_interval for deploy.watch (two samples at
// least) and evaluates the
// decision matrix over the samples so far after each one, with the deploy's thresholds; a
// severity in deploy.fail_on fails it at once. Inconclusive is not a failure.
func (d *deployRun) watch(ctx context.Context) (string, any, error) {
	dc := d.cfg.Deploy
	if dc.Watch == 0 {
		return "not watched (deploy.watch is 0)", nil, nil
	}
	if d.opt.DryRun {
		return fmt.Sprintf("would watch for %s, a sample every %s, and fail on %s (response time over %gx the baseline p95, failed requests over %g%%, requests without an answer over %g%%, %d restart(s); rates from %d samples on)",
			dc.Watch, dc.WatchInterval, strings.Join(dc.FailOn, ", "), dc.ResponseFactor, 100*dc.ErrorRate, 100*dc.NetworkRate, dc.Restarts, dc.MinSamples), nil, nil
	}
	sm := d.dd.Sampler
	if sm == nil {
		sm = &assess.Sampler{Service: d.deps.Service, HealthURL: d.cfg.Health.URL, Timeout: d.cfg.Health.Timeout, Now: d.deps.Now}
	}
	base, _ := assess.ReadBaseline(d.cfg.StateDir)
	var data []health.Check
	if d.dd.Data != nil {
		data = d.dd.Data(ctx)
	}
	start := d.deps.Now()
	w := &WatchResult{FailOn: dc.FailOn}
	d.dres.Watch = w
	var samples []assess.Sample
	for {
		s := sm.Take(ctx)
		if err := ctx.Err(); err != nil {
			return "", w, fmt.Errorf("watch stopped after %d samples: %w", len(samples), context.Cause(ctx))
		}
		samples = append(samples, s)
		now := d.deps.Now()
		w.Samples, w.DurationMS = len(samples), now.Sub(start).Milliseconds()
		w.Assessment = JudgeWatch(samples, start, now, base, data, dc)
		if slices.Contains(dc.FailOn, string(w.Assessment.Severity)) {
			return "", w, fmt.Errorf("watch: %s after %s (%d samples): %s", w.Assessment.Severity,
				now.Sub(start).Round(time.Millisecond), len(samples), metEvidence(w.Assessment))
		}
		// two samples at least, however slow one is: a restart shows between two
		if now.Sub(start) >= dc.Watch && len(samples) >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			return "", w, fmt.Errorf("watch stopped after %d samples: %w", len(samples), context.Cause(ctx))
		case <-time.After(max(0, min(dc.WatchInterval, dc.Watch-now.Sub(start)))):
		}
	}
	return fmt.Sprintf("watched %s, %d samples: severity %s", time.Duration(w.DurationMS)*time.Millisecond, w.Samples, w.Assessment.Severity), w, nil
}

// JudgeWatch is the decision matrix over the watch's samples (taken from start to now) with
// the deploy's thresholds: every window is the watch so far, the latency is that of its
// successful requests, the service state that of the newest sample.
func JudgeWatch(samples []assess.Sample, start, now time.Time, base *assess.Baseline, data []health.Check, dc settings.DeployConfig) assess.Assessment {
	window := now.Sub(start) + time.Millisecond // Window is (now-d, now]: the first sample counts
	th := assess.DefaultThresholds
	th.ResponseFactor, th.ErrorRate, th.NetworkRate = dc.ResponseFactor, dc.ErrorRate, dc.NetworkRate
	th.ErrorWindow, th.NetworkWindow, th.AgentWindow, th.CrashWindow, th.MemoryWindow = window, window, window, window, window
	th.MinWindowSamples, th.MinLatencySamples, th.CrashRestarts = dc.MinSamples, min(dc.MinSamples, th.MinLatencySamples), dc.Restarts
	th.MemoryMinSpan = min(th.MemoryMinSpan, dc.Watch/2)
	in := assess.Input{Now: now, Baseline: base, Data: data, Samples: samples, ServiceErr: "no sample read the service manager"}
	if n := len(samples); n > 0 {
		last := samples[n-1]
		if last.Active != nil {
			st := &assess.ServiceState{Active: *last.Active, State: last.State, CrashLoop: last.CrashLoop}
			if last.Restarts != nil {
				st.Restarts = *last.Restarts
			}
			in.Service = st
		} else {
			in.ServiceErr = "the service manager could not be asked in the newest sample"
		}
	}
	for _, s := range samples {
		switch {
		case s.Probe == nil:
		case s.Probe.OK:
			in.Latency = append(in.Latency, time.Duration(s.Probe.LatencyMS*float64(time.Millisecond)))
		default:
			in.LatencyFailed++
		}
	}
	return assess.Evaluate(in, th)
}

// metEvidence is the evidence of the conditions met, for the error and the journal.
func metEvidence(a assess.Assessment) string {
	var parts []string
	for _, c := range a.Conditions {
		if c.Status == assess.Met {
			parts = append(parts, fmt.Sprintf("%s (%s): %s", c.ID, c.Severity, c.Evidence))
		}
	}
	return strings.Join(parts, "; ")
}
