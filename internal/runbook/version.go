package runbook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/journal"
)

// VersionCommand is the journal's command name for rollback --to-version.
// It is deliberately not "rollback": findInterrupted resumes emergency and
// rollback runs as backup swaps, and a version rollback has no swap.
const VersionCommand = "rollback-version"

// ErrBadVersion: the version asked for cannot be a package version (exit 2).
var ErrBadVersion = errors.New("not a version")

var versionRe = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$`)

// ValidVersion says why v cannot be passed to an install command, or nil.
func ValidVersion(v string) error {
	if !versionRe.MatchString(v) {
		return fmt.Errorf("%w: %q; give an npm version or tag such as 2.0.0-alpha.82 or 1.0.73", ErrBadVersion, v)
	}
	return nil
}

// VersionOptions are the choices of one rollback --to-version.
type VersionOptions struct {
	Options
	To string
	// Shell runs a command line; nil means /bin/sh -c in the install dir.
	Shell Shell
}

// Shell runs one command line of a version.*_command setting.
type Shell interface {
	Run(ctx context.Context, dir, cmdline string, env []string) (output []byte, err error)
}

// VersionResult is a Result with the versions before and after; --json
// prints it as is.
type VersionResult struct {
	*Result
	ToVersion   string `json:"to_version"`
	FromVersion string `json:"from_version"`
	// FromSource is where the version before was read: <install>/package.json,
	// npm ls -g, or the journal of an interrupted run.
	FromSource       string `json:"from_source"`
	InstalledVersion string `json:"installed_version,omitempty"`
	AppConfig        string `json:"app_config,omitempty"`
	// ConfigCheckpoint is the config as it was before this run.
	ConfigCheckpoint string `json:"config_checkpoint,omitempty"`
	// RestoredCheckpoint is the newest checkpoint recorded for to_version.
	RestoredCheckpoint string   `json:"restored_checkpoint,omitempty"`
	Commands           []string `json:"commands"`
	PutBack            *PutBack `json:"put_back,omitempty"`
}

// PutBack is what a failed install, import, config or migrate step undid.
type PutBack struct {
	Version   string   `json:"version"`
	Installed bool     `json:"installed"`
	Config    string   `json:"config,omitempty"`
	Started   bool     `json:"started"`
	Problems  []string `json:"problems,omitempty"`
}

// versionRun is the state of one rollback --to-version.
type versionRun struct {
	r   *runner
	o   VersionOptions
	res *VersionResult
	fx  versionEffects

	configPath  string
	oldConfig   []byte // nil: there was no config file
	newConfig   []byte // the checkpoint for To, nil if none
	installRan  bool
	interrupted string // an unfinished rollback-version run's id
}

// RollbackVersion installs version o.To through version.install_command
// and makes the config and data fit it: preflight (versions, the config
// checkpoint recorded for To, a checkpoint of the current config, the
// command templates) while the service runs; stop; export; install; import;
// config; migrate; start; health. A failing step after the stop puts the
// previous version and config back and starts the service (exit 4).
func RollbackVersion(ctx context.Context, o VersionOptions, deps Deps) (*VersionResult, error) {
	o.Command = VersionCommand
	if o.Shell == nil {
		o.Shell = execShell{}
	}
	r := newRunner(o.Options, deps)
	v := &versionRun{r: r, o: o, res: &VersionResult{Result: r.res, ToVersion: o.To, Commands: []string{}}}
	if o.DryRun {
		v.fx = dryVersionEffects{}
	} else {
		v.fx = realVersionEffects{shell: o.Shell}
	}
	_, err := r.run(ctx, v.body)
	v.next(err)
	return v.res, err
}

func (v *versionRun) body(ctx context.Context) error {
	r := v.r
	host, _ := os.Hostname()
	if err := r.record("intent", "", map[string]any{
		"command": VersionCommand, "args": appconfig.RedactArgs(r.opt.Args), "user": whoami(), "host": host, "pid": os.Getpid(),
		"service": r.res.Service, "install_dir": r.res.InstallDir, "to_version": v.o.To,
	}); err != nil {
		return &StepError{Step: "journal", Err: err, Hint: "fix the journal path or its permissions; nothing was changed"}
	}
	r.hlog.printf("rollback --to-version %s initiated by %s (run %s)", v.o.To, whoami(), r.runID)
	err := v.procedure(ctx)
	_ = r.record("versions", "", map[string]any{
		"from": v.res.FromVersion, "to": v.o.To, "installed": v.res.InstalledVersion, "put_back": v.res.PutBack,
		"config_checkpoint": v.res.ConfigCheckpoint, "restored_checkpoint": v.res.RestoredCheckpoint,
	})
	r.hlog.printf("claude-flow version before %s, asked %s, installed %s", orUnknown(v.res.FromVersion), v.o.To, orUnknown(v.res.InstalledVersion))
	return err
}

func (v *versionRun) procedure(ctx context.Context) error {
	r := v.r
	if err := r.step(ctx, "preflight", v.preflight); err != nil {
		return err
	}
	if v.res.FromVersion == v.o.To {
		return v.alreadyThere(ctx)
	}
	if err := r.step(ctx, "stop", r.stopService); err != nil {
		v.startAgain(ctx)
		return err
	}
	cfg := r.cfg.Version
	if cfg.ExportCommand != "" {
		if err := r.step(ctx, "export", v.command("export", cfg.ExportCommand)); err != nil {
			note := "nothing was installed; " + r.res.Service + " was started again on claude-flow " + v.res.FromVersion
			if !v.startAgain(ctx) {
				note = "nothing was installed, but " + r.res.Service + " did NOT start again; start it by hand"
			}
			return v.withNote(err, note)
		}
	}
	if err := r.step(ctx, "install", v.install); err != nil {
		return v.putBack(ctx, err)
	}
	if cfg.ImportCommand != "" {
		if err := r.step(ctx, "import", v.command("import", cfg.ImportCommand)); err != nil {
			return v.putBack(ctx, err)
		}
	}
	if err := r.step(ctx, "config", v.restoreConfig); err != nil {
		return v.putBack(ctx, err)
	}
	if cfg.MigrateCommand != "" {
		if err := r.step(ctx, "migrate", v.command("migrate", cfg.MigrateCommand)); err != nil {
			return v.putBack(ctx, err)
		}
	}
	if err := r.startAndWait(ctx); err != nil {
		var se *StepError
		if errors.As(err, &se) && errors.Is(err, ErrUnhealthy) {
			return &StepError{Step: se.Step, AfterStop: true,
				Err: fmt.Errorf("claude-flow %s is installed but %w; go back with: cfrollback rollback --to-version %s",
					v.o.To, se.Err, shellQuote(v.res.FromVersion)),
				Hint: "go back with: cfrollback rollback --to-version " + v.res.FromVersion}
		}
		return err
	}
	return nil
}

// preflight changes nothing but the config checkpoint it writes; any
// failure here is exit 3 with the service untouched.
func (v *versionRun) preflight(ctx context.Context) (string, any, error) {
	r := v.r
	if err := ValidVersion(v.o.To); err != nil {
		return "", nil, err
	}
	st, err := r.deps.Service.Status(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("read the state of %s: %w", r.res.Service, err)
	}
	if !st.Exists {
		return "", nil, fmt.Errorf("%s does not exist; check service.manager / service.unit / service.pm2_name", r.res.Service)
	}
	if err := v.checkTemplates(); err != nil {
		return "", nil, err
	}

	from, source := DetectVersion(ctx, r.res.InstallDir)
	lastFrom := v.unfinishedRuns()
	if from == "" && lastFrom != "" {
		from, source = lastFrom, "the journal of interrupted run "+v.interrupted
		r.warn("the installed claude-flow version cannot be read; using %s, the version before interrupted run %s", from, v.interrupted)
	}
	if from == "" {
		return "", nil, fmt.Errorf("cannot tell which claude-flow version is installed (no \"version\" in %s, and 'npm ls -g --depth=0 --json' does not list claude-flow), so it could not be put back if the install failed; nothing was changed. Check install_dir, or that npm is in PATH",
			filepath.Join(r.res.InstallDir, "package.json"))
	}
	v.res.FromVersion, v.res.FromSource = from, source
	if from == v.o.To {
		return fmt.Sprintf("claude-flow %s is already installed (%s); nothing to install, checking the service", from, source),
			map[string]string{"from": from, "to": v.o.To}, nil
	}

	cpDir := checkpointDir(r.cfg.Backup.Dir)
	if err := v.findCheckpoint(cpDir); err != nil {
		return "", nil, err
	}
	v.configPath = appConfigFile(r.cfg.AppConfigPaths())
	v.res.AppConfig = v.configPath
	cur, err := os.ReadFile(v.configPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.info("no app config at %s; nothing to checkpoint", v.configPath)
	case err != nil:
		return "", nil, fmt.Errorf("read the app config to checkpoint it: %w", err)
	default:
		v.oldConfig = cur
		cp := appconfig.NewCheckpoint(v.configPath, cur, from, "before rollback --to-version "+v.o.To+" (run "+r.runID+")", r.deps.Now())
		name, err := v.fx.WriteCheckpoint(cpDir, cp)
		if err != nil {
			return "", nil, fmt.Errorf("checkpoint the app config before anything changes: %w", err)
		}
		v.res.ConfigCheckpoint = name
	}

	detail := fmt.Sprintf("claude-flow %s (%s) -> %s", from, source, v.o.To)
	switch {
	case v.res.RestoredCheckpoint != "":
		detail += "; config checkpoint for " + v.o.To + ": " + v.res.RestoredCheckpoint
	default:
		detail += "; no config checkpoint recorded for " + v.o.To + " (the config stays as it is)"
	}
	switch {
	case v.res.ConfigCheckpoint != "" && r.opt.DryRun:
		detail += "; would save the current config as " + v.res.ConfigCheckpoint
	case v.res.ConfigCheckpoint != "":
		detail += "; current config saved as " + v.res.ConfigCheckpoint
	}
	return detail, map[string]string{
		"from": from, "from_source": source, "to": v.o.To, "app_config": v.configPath,
		"config_checkpoint": v.res.ConfigCheckpoint, "restored_checkpoint": v.res.RestoredCheckpoint,
	}, nil
}

// placeholderRe finds {name} placeholders, but not shell ${name}.
var placeholderRe = regexp.MustCompile(`(^|[^$]){([a-z_]+)}`)

// checkTemplates refuses a template that would not render: an unknown
// placeholder (a typo would otherwise reach the shell), an install command
// without {version}, or half of the export/import pair.
func (v *versionRun) checkTemplates() error {
	c := v.r.cfg.Version
	if strings.TrimSpace(c.InstallCommand) == "" {
		return fmt.Errorf("version.install_command is empty; set it, e.g. %q", "npm install -g claude-flow@{version}")
	}
	if !strings.Contains(c.InstallCommand, "{version}") {
		return fmt.Errorf("version.install_command %q has no {version}: it could not install the version asked for", c.InstallCommand)
	}
	if (c.ExportCommand == "") != (c.ImportCommand == "") {
		return errors.New("only one of version.export_command and version.import_command is set; the export/install/import path needs both (or neither)")
	}
	for _, t := range []struct{ key, tmpl string }{
		{"version.install_command", c.InstallCommand}, {"version.export_command", c.ExportCommand},
		{"version.import_command", c.ImportCommand}, {"version.migrate_command", c.MigrateCommand},
	} {
		for _, m := range placeholderRe.FindAllStringSubmatch(t.tmpl, -1) {
			switch m[2] {
			case "version", "from", "to":
			default:
				return fmt.Errorf("%s has an unknown placeholder {%s}; the known ones are {version}, {from} and {to}", t.key, m[2])
			}
		}
	}
	return nil
}

// Render fills {version}, {from} and {to} with shell-quoted values.
func Render(tmpl, version, from, to string) string {
	return strings.NewReplacer("{version}", shellQuote(version), "{from}", shellQuote(from), "{to}", shellQuote(to)).Replace(tmpl)
}

// findCheckpoint picks the newest config checkpoint recorded for To whose
// content is valid; broken ones are skipped loudly.
func (v *versionRun) findCheckpoint(dir string) error {
	infos, err := appconfig.ListCheckpoints(dir)
	if err != nil {
		return fmt.Errorf("list config checkpoints in %s: %w", dir, err)
	}
	for _, ci := range infos {
		if ci.Error != "" || ci.AppVersion != v.o.To {
			continue
		}
		content, _, err := appconfig.ReadSource(ci.Path)
		if err != nil {
			v.r.warn("SKIPPING config checkpoint %s: %s", ci.Path, appconfig.RedactString(err.Error()))
			continue
		}
		if rep := appconfig.Validate(ci.Path, content); !rep.OK {
			v.r.warn("SKIPPING config checkpoint %s: it is not a valid config (%d problem(s); 'cfrollback config validate %s')", ci.Path, len(rep.Errors), ci.Path)
			continue
		}
		v.newConfig = content
		v.res.RestoredCheckpoint = ci.Path
		return nil
	}
	return nil
}

func (v *versionRun) install(ctx context.Context) (string, any, error) {
	line := Render(v.r.cfg.Version.InstallCommand, v.o.To, v.res.FromVersion, v.o.To)
	v.res.Commands = append(v.res.Commands, line)
	if v.r.opt.DryRun {
		return "would run: " + line, nil, nil
	}
	v.installRan = true
	if err := v.run(ctx, "install", line); err != nil {
		return "", nil, err
	}
	got, source := DetectVersion(ctx, v.r.res.InstallDir)
	v.res.InstalledVersion = got
	switch {
	case got == v.o.To:
		return fmt.Sprintf("installed claude-flow %s (%s)", got, source), map[string]string{"installed": got}, nil
	case got == "":
		v.res.InstalledVersion = v.o.To
		v.r.warn("the install command succeeded but the installed version cannot be read back; assuming %s", v.o.To)
		return "ran: " + line, map[string]string{"installed": v.o.To}, nil
	case source == "npm ls -g":
		return "", nil, fmt.Errorf("%s exited 0 but npm lists claude-flow %s, not %s", line, got, v.o.To)
	default:
		v.r.warn("the install command succeeded but %s still says %s; version.install_command may install somewhere else", source, got)
		return "ran: " + line, map[string]string{"installed": got}, nil
	}
}

// command returns a step that runs one of the version templates.
func (v *versionRun) command(step, tmpl string) func(context.Context) (string, any, error) {
	return func(ctx context.Context) (string, any, error) {
		line := Render(tmpl, v.o.To, v.res.FromVersion, v.o.To)
		v.res.Commands = append(v.res.Commands, line)
		if v.r.opt.DryRun {
			return "would run: " + line, nil, nil
		}
		if err := v.run(ctx, step, line); err != nil {
			return "", nil, err
		}
		return "ran: " + line, nil, nil
	}
}

// run runs line; its output goes to the human log, and the last lines of
// it into the error.
func (v *versionRun) run(ctx context.Context, step, line string) error {
	out, err := v.fx.Run(ctx, v.r.res.InstallDir, line, []string{
		"CFROLLBACK_FROM_VERSION=" + v.res.FromVersion, "CFROLLBACK_TO_VERSION=" + v.o.To, "CFROLLBACK_RUN_ID=" + v.r.runID,
	})
	if len(out) > 0 {
		v.r.hlog.printf("%s output of %s:\n%s", step, line, appconfig.RedactString(string(out)))
	}
	if err != nil {
		msg := fmt.Sprintf("%s command %s: %v", step, line, err)
		if tail := outputTail(out); tail != "" {
			msg += ": " + tail
		}
		return errors.New(appconfig.RedactString(msg))
	}
	return nil
}

func (v *versionRun) restoreConfig(context.Context) (string, any, error) {
	if v.newConfig == nil {
		return "no config checkpoint recorded for " + v.o.To + "; the config was left as it is", nil, nil
	}
	if v.r.opt.DryRun {
		return fmt.Sprintf("would restore %s from %s", v.configPath, v.res.RestoredCheckpoint), nil, nil
	}
	if cur, err := os.ReadFile(v.configPath); err == nil && bytes.Equal(cur, v.newConfig) {
		return v.configPath + " already matches " + v.res.RestoredCheckpoint, nil, nil
	}
	if err := v.fx.WriteConfig(v.configPath, v.newConfig); err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("restored %s from %s", v.configPath, v.res.RestoredCheckpoint),
		map[string]string{"checkpoint": v.res.RestoredCheckpoint, "sha256": appconfig.SHA256Hex(v.newConfig)}, nil
}

// putBack undoes a run that failed after the stop: reinstall the previous
// version (if the install had begun), write the previous config back, start
// the service. It always returns an exit-4 error naming what failed and
// what was put back.
func (v *versionRun) putBack(ctx context.Context, failed error) error {
	r := v.r
	ctx = context.WithoutCancel(ctx) // a cancelled run must still leave the old version running
	pb := &PutBack{Version: v.res.FromVersion}
	v.res.PutBack = pb
	var did []string
	if v.installRan {
		line := Render(r.cfg.Version.InstallCommand, v.res.FromVersion, v.o.To, v.res.FromVersion)
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
		cur, rerr := os.ReadFile(v.configPath)
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
		if err := r.fx.Start(sctx, r.deps.Service); err != nil {
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
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Service.StartTimeout)
	defer cancel()
	if err := r.fx.Start(sctx, r.deps.Service); err != nil {
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
			if rec.Event == "step_done" && rec.Step == "preflight" {
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
		if r.j != nil {
			_, _ = r.j.Append(run.ID, "outcome", "", map[string]any{"outcome": "superseded by " + r.runID})
		}
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

// DetectVersion reads the installed claude-flow version: "version" in
// <install>/package.json (what config checkpoints record), else the global
// npm package. It returns "" when neither says.
func DetectVersion(ctx context.Context, installDir string) (version, source string) {
	if v := appconfig.AppVersion(installDir); v != "" {
		return v, filepath.Join(installDir, "package.json")
	}
	if v := npmGlobalVersion(ctx); v != "" {
		return v, "npm ls -g"
	}
	return "", ""
}

// npmGlobalVersion parses `npm ls -g --depth=0 --json`. npm exits non-zero
// for problems elsewhere in the tree, so the output is read regardless.
func npmGlobalVersion(ctx context.Context) string {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, npm, "ls", "-g", "--depth=0", "--json").Output()
	return ParseNpmLs(out)
}

// ParseNpmLs returns claude-flow's version from `npm ls --json` output.
func ParseNpmLs(out []byte) string {
	var ls struct {
		Dependencies map[string]struct {
			Version string `json:"version"`
		} `json:"dependencies"`
	}
	if json.Unmarshal(out, &ls) != nil {
		return ""
	}
	return ls.Dependencies["claude-flow"].Version
}

func checkpointDir(backupDir string) string { return filepath.Join(backupDir, "config") }

// appConfigFile is the first candidate that exists, else the first one
// (as the config commands choose it).
func appConfigFile(paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[0]
}

func outputTail(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	s := strings.Join(lines, " | ")
	if len(s) > 1000 {
		s = "…" + s[len(s)-1000:]
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// versionEffects are the writes of a version rollback; in dry-run none happen.
type versionEffects interface {
	Run(ctx context.Context, dir, line string, env []string) ([]byte, error)
	WriteCheckpoint(dir string, cp appconfig.Checkpoint) (string, error)
	WriteConfig(path string, data []byte) error
	RemoveConfig(path string) error
}

type realVersionEffects struct{ shell Shell }

var _ versionEffects = realVersionEffects{}

func (e realVersionEffects) Run(ctx context.Context, dir, line string, env []string) ([]byte, error) {
	return e.shell.Run(ctx, dir, line, env)
}
func (realVersionEffects) WriteCheckpoint(dir string, cp appconfig.Checkpoint) (string, error) {
	return appconfig.WriteCheckpoint(dir, "", cp)
}
func (realVersionEffects) WriteConfig(path string, data []byte) error {
	return appconfig.WriteFile(path, data)
}
func (realVersionEffects) RemoveConfig(path string) error { return os.Remove(path) }

type dryVersionEffects struct{}

var _ versionEffects = dryVersionEffects{}

func (dryVersionEffects) Run(context.Context, string, string, []string) ([]byte, error) {
	return nil, nil
}
func (dryVersionEffects) WriteCheckpoint(dir string, cp appconfig.Checkpoint) (string, error) {
	return filepath.Join(dir, appconfig.CheckpointName("config-checkpoint-", cp.Time)), nil
}
func (dryVersionEffects) WriteConfig(string, []byte) error { return nil }
func (dryVersionEffects) RemoveConfig(string) error        { return nil }

// execShell runs a command line with /bin/sh -c in its own process group,
// so a cancel kills the whole pipeline (npm and its children), not just sh.
type execShell struct{}

var _ Shell = execShell{}

func (execShell) Run(ctx context.Context, dir, line string, env []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", line)
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		cmd.Dir = dir
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.Bytes(), fmt.Errorf("%w (cancelled: %w)", err, ctx.Err())
	}
	return out.Bytes(), err
}
