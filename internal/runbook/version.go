package runbook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/journal"
)

// VersionCommand is the journal's command name for rollback --to-version.
// It is deliberately not "rollback": findInterrupted resumes emergency and
// rollback runs as backup swaps, and a version rollback has no swap.
const VersionCommand = "rollback-version"

// ErrBadVersion means the version asked for cannot be a package version (exit 2).
var ErrBadVersion = errors.New("not a version")

// versionRe and maxVersionLen: the length is checked apart because `{0,127}` in the
// pattern compiled into 127 copies, 2-7 ms at every start of cfrollback (package init).
var versionRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_-]*$`) })

const maxVersionLen = 128

// ValidVersion says why v cannot be passed to an install command, or nil.
func ValidVersion(v string) error {
	if len(v) > maxVersionLen || !versionRe().MatchString(v) {
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
	if err := r.record(journal.EventIntent, "", map[string]any{
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
	r.notifyStarting(ctx)
	if err := r.step(ctx, "stop", r.stopService); err != nil {
		v.startAgain(ctx)
		return err
	}
	cfg := r.cfg.Version
	if cfg.ExportCommand != "" {
		if err := r.step(ctx, "export", v.command("export", cfg.ExportCommand)); err != nil {
			if Interruption(ctx) != nil {
				return err // as a kill would: the next run takes over
			}
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

	from, source, problem := DetectVersionChecked(ctx, r.res.InstallDir)
	if problem != "" && from != "" {
		r.warn("%s; the installed version was read from %s instead", problem, source)
	}
	lastFrom := v.unfinishedRuns()
	if from == "" && lastFrom != "" {
		from, source = lastFrom, "the journal of interrupted run "+v.interrupted
		r.warn("the installed claude-flow version cannot be read; using %s, the version before interrupted run %s", from, v.interrupted)
	}
	if from == "" && problem != "" {
		return "", nil, fmt.Errorf("cannot tell which claude-flow version is installed: %s (and 'npm ls -g --depth=0 --json' does not list claude-flow), so it could not be put back if the install failed; nothing was changed. Put a regular package.json back in the install dir",
			problem)
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
	if err := v.checkPublished(ctx); err != nil {
		return "", nil, err
	}

	cpDir := checkpointDir(r.cfg.Backup.Dir)
	if err := v.findCheckpoint(cpDir); err != nil {
		return "", nil, err
	}
	v.configPath = appConfigFile(r.cfg.AppConfigPaths())
	v.res.AppConfig = v.configPath
	cur, err := fsutil.ReadFile(v.configPath, fsutil.MaxSmallFile)
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
var placeholderRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(^|[^$]){([a-z_]+)}`) })

// checkTemplates refuses a template that would not render: an unknown
// placeholder (a typo would otherwise reach the shell), an install command
// without {version}, or half of the export/import pair.
func (v *versionRun) checkTemplates() error {
	c := v.r.cfg.Version
	if strings.TrimSpace(c.InstallCommand) == "" {
		return fmt.Errorf("version.install_command is empty; set it, e.g. %q", "npm install --prefix {install_dir} --save-exact claude-flow@{version}")
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
		for _, m := range placeholderRe().FindAllStringSubmatch(t.tmpl, -1) {
			switch m[2] {
			case "version", "from", "to", "install_dir":
			default:
				return fmt.Errorf("%s has an unknown placeholder {%s}; the known ones are {version}, {from}, {to} and {install_dir}", t.key, m[2])
			}
		}
	}
	return nil
}

// TemplateVars are the values of a version command template's placeholders.
type TemplateVars struct {
	Version, From, To string
	InstallDir        string // {install_dir}: where a host install's node_modules live
}

// Render fills {version}, {from}, {to} and {install_dir} with shell-quoted values.
func Render(tmpl string, v TemplateVars) string {
	return strings.NewReplacer("{version}", shellQuote(v.Version), "{from}", shellQuote(v.From), "{to}", shellQuote(v.To),
		"{install_dir}", shellQuote(v.InstallDir)).Replace(tmpl)
}

// vars are this run's template values for installing version.
func (v *versionRun) vars(version, from, to string) TemplateVars {
	return TemplateVars{Version: version, From: from, To: to, InstallDir: v.r.res.InstallDir}
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
	line := Render(v.r.cfg.Version.InstallCommand, v.vars(v.o.To, v.res.FromVersion, v.o.To))
	v.res.Commands = append(v.res.Commands, line)
	if v.r.opt.DryRun {
		return "would run: " + line, nil, nil
	}
	v.installRan = true
	if err := v.run(ctx, "install", line); err != nil {
		return "", nil, err
	}
	got, source, problem := DetectVersionChecked(ctx, v.r.res.InstallDir)
	if problem != "" {
		v.r.warn("after the install: %s", problem)
	}
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
		line := Render(tmpl, v.vars(v.o.To, v.res.FromVersion, v.o.To))
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
	if cur, err := fsutil.ReadFile(v.configPath, fsutil.MaxSmallFile); err == nil && bytes.Equal(cur, v.newConfig) {
		return v.configPath + " already matches " + v.res.RestoredCheckpoint, nil, nil
	}
	if err := v.fx.WriteConfig(v.configPath, v.newConfig); err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("restored %s from %s", v.configPath, v.res.RestoredCheckpoint),
		map[string]string{"checkpoint": v.res.RestoredCheckpoint, "sha256": appconfig.SHA256Hex(v.newConfig)}, nil
}
