package runbook

// What rollback --to-version does when a step fails, and how it reports the run.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/journal"
)

// putBack undoes a run that failed after the stop: reinstall the previous
// version (if the install had begun), write the previous config back, start
// the service. It always returns an exit-4 error naming what failed and
// what was put back.
func (v *versionRun) putBack(ctx context.Context, failed error) error {
	r := v.r
	if Interruption(ctx) != nil {
		return failed // as a kill would: the next rollback --to-version takes over
	}
	// A run that timed out must still leave the old version running; one the
	// operator interrupts stops where it is.
	ctx, cancel := detachUnlessInterrupted(ctx)
	defer cancel()
	pb := &PutBack{Version: v.res.FromVersion}
	v.res.PutBack = pb
	var did []string
	if v.installRan {
		line := Render(r.cfg.Version.InstallCommand, v.vars(v.res.FromVersion, v.o.To, v.res.FromVersion))
		v.res.Commands = append(v.res.Commands, line)
		err := r.step(ctx, "put_back_install", func(ctx context.Context) (string, any, error) {
			if err := v.run(ctx, "put back install", line); err != nil {
				return "", nil, err
			}
			if got, _ := DetectVersion(ctx, r.res.InstallDir); got != "" {
				v.res.InstalledVersion = got
			}
			return "reinstalled claude-flow " + v.res.FromVersion, nil, nil
		})
		if err != nil {
			pb.Problems = append(pb.Problems, fmt.Sprintf("reinstalling claude-flow %s FAILED too; install it by hand: %s", v.res.FromVersion, line))
		} else {
			pb.Installed = true
			did = append(did, "claude-flow "+v.res.FromVersion+" reinstalled")
		}
	}
	if v.configPath != "" {
		cur, rerr := fsutil.ReadFile(v.configPath, fsutil.MaxSmallFile)
		changed := (v.oldConfig == nil && rerr == nil) || (v.oldConfig != nil && !bytes.Equal(cur, v.oldConfig))
		if changed {
			err := r.step(ctx, "put_back_config", func(context.Context) (string, any, error) {
				if v.oldConfig == nil {
					if err := v.fx.RemoveConfig(v.configPath); err != nil {
						return "", nil, err
					}
					return "removed " + v.configPath + " (there was none before)", nil, nil
				}
				if err := v.fx.WriteConfig(v.configPath, v.oldConfig); err != nil {
					return "", nil, err
				}
				return "put back " + v.configPath + " from " + v.res.ConfigCheckpoint, nil, nil
			})
			if err != nil {
				pb.Problems = append(pb.Problems, "putting the config back FAILED; run: cfrollback config restore --file "+shellQuote(v.res.ConfigCheckpoint))
			} else {
				pb.Config = v.res.ConfigCheckpoint
				if v.oldConfig == nil {
					pb.Config = "(removed: there was no config before)"
				}
				did = append(did, "the config from "+pb.Config)
			}
		} else if v.res.ConfigCheckpoint != "" {
			did = append(did, "the config was not changed (saved as "+v.res.ConfigCheckpoint+")")
		}
	}
	if err := r.step(ctx, "put_back_start", func(ctx context.Context) (string, any, error) {
		sctx, cancel := context.WithTimeout(ctx, r.cfg.Service.StartTimeout)
		defer cancel()
		if err := r.fx.Start(sctx, r.deps.Service, nothingSeen); err != nil {
			return "", nil, fmt.Errorf("start %s: %w", r.res.Service, err)
		}
		return "started " + r.res.Service, nil, nil
	}); err != nil {
		pb.Problems = append(pb.Problems, r.res.Service+" did not start again")
	} else {
		pb.Started = true
		did = append(did, r.res.Service+" started")
	}
	note := "put back: nothing"
	if len(did) > 0 {
		note = "put back: " + strings.Join(did, ", ")
	}
	if len(pb.Problems) > 0 {
		note += "; " + strings.Join(pb.Problems, "; ")
	}
	return v.withNote(failed, note)
}

// withNote makes failed an exit-4 error whose message also says what was
// done about it.
func (v *versionRun) withNote(failed error, note string) error {
	step, inner := "", failed
	var se *StepError
	if errors.As(failed, &se) {
		step, inner = se.Step, se.Err
	}
	hint := "'cfrollback history' shows every step; 'cfrollback health-check --critical-only' checks the service"
	if v.installRan && v.res.PutBack != nil && !v.res.PutBack.Installed {
		hint = "install claude-flow " + v.res.FromVersion + " by hand (see above), then start the service"
	}
	return &StepError{Step: step, AfterStop: true, Err: fmt.Errorf("%s; %s", inner.Error(), note), Hint: hint}
}

// startAgain starts the service after a failure before anything was
// installed, which is the state the run found.
func (v *versionRun) startAgain(ctx context.Context) bool {
	r := v.r
	if r.opt.DryRun {
		return true
	}
	if Interruption(ctx) != nil {
		return false // as a kill would: the next run starts it again
	}
	dctx, dcancel := detachUnlessInterrupted(ctx)
	defer dcancel()
	sctx, cancel := context.WithTimeout(dctx, r.cfg.Service.StartTimeout)
	defer cancel()
	if err := r.fx.Start(sctx, r.deps.Service, nothingSeen); err != nil {
		r.warn("nothing was installed but %s did not start again: %v", r.res.Service, err)
		return false
	}
	r.info("nothing was installed; %s was started again", r.res.Service)
	_ = r.record("note", "", map[string]string{"message": "failed before the install; service started again"})
	return true
}

// alreadyThere handles a run asked for the version that is installed: it
// installs nothing and makes sure the service runs and is healthy (a rerun
// after a run that was killed after its install ends here).
func (v *versionRun) alreadyThere(ctx context.Context) error {
	r := v.r
	v.res.InstalledVersion = v.o.To
	st, err := r.deps.Service.Status(ctx)
	if err == nil && st.Active {
		r.stopAt = r.deps.Now()
		err := r.step(ctx, "health", r.waitHealthy)
		r.res.DowntimeMS = 0
		return err
	}
	r.stopped = true
	r.stopAt = r.deps.Now()
	return r.startAndWait(ctx)
}

// unfinishedRuns warns about rollback-version runs that never recorded an
// outcome (killed), closes them as superseded by this run, and returns the
// version the newest of them found installed.
func (v *versionRun) unfinishedRuns() (from string) {
	r := v.r
	var recs []journal.Record
	for _, p := range []string{r.journalAside, r.cfg.Journal} {
		if p == "" {
			continue
		}
		if rs, err := journal.ReadAll(p); err == nil {
			recs = append(recs, rs...)
		}
	}
	for _, run := range journal.Runs(recs) {
		if run.ID == r.runID || run.Command != VersionCommand || !run.Unfinished() {
			continue
		}
		last := ""
		if n := len(run.Steps); n > 0 {
			last = run.Steps[n-1].Name + " (" + run.Steps[n-1].Status + ")"
		}
		for _, rec := range run.Records {
			if rec.Event == journal.EventStepDone && rec.Step == "preflight" {
				var p struct {
					Data struct {
						From string `json:"from"`
					} `json:"data"`
				}
				if json.Unmarshal(rec.Data, &p) == nil && p.Data.From != "" {
					from = p.Data.From
				}
			}
		}
		v.interrupted = run.ID
		r.warn("rollback --to-version run %s was interrupted (last step %s); this run takes over from it", run.ID, orUnknown(last))
		r.closeRun(run.ID, outcomeData{Outcome: "superseded by " + r.runID})
	}
	return from
}

// next sets what to do next, for a person and a runbook.
func (v *versionRun) next(err error) {
	res := v.res
	back := "cfrollback rollback --to-version " + shellQuote(res.FromVersion)
	switch {
	case res.Outcome == "planned":
		res.Next = []string{"cfrollback rollback --to-version " + shellQuote(v.o.To) + "   # run it"}
	case res.Outcome == "interrupted":
		res.Next = []string{"cfrollback history", "cfrollback rollback --to-version " + shellQuote(v.o.To) + " --yes   # takes over from this run"}
	case err == nil:
		res.Next = []string{"cfrollback health-check --critical-only"}
		if res.FromVersion != "" && res.FromVersion != v.o.To {
			res.Next = append(res.Next, back+"   # only if this rollback was the mistake")
		}
	case errors.Is(err, ErrUnhealthy):
		res.Next = []string{"cfrollback health-check --critical-only"}
		if res.FromVersion != "" && res.FromVersion != v.o.To {
			res.Next = append(res.Next, back+"   # go back to the version that ran before")
		}
	case errors.Is(err, ErrAfterStop):
		res.Next = []string{"cfrollback history", "cfrollback health-check --critical-only"}
	default:
		res.Next = []string{"cfrollback rollback --to-version " + shellQuote(v.o.To) + " --dry-run"}
	}
}
