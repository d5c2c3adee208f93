package runbook

import (
	"context"
	"fmt"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// The app-config changes, as journaled in their intent and shown by history.
const (
	ConfigSetCommand     = "config set"
	ConfigRestoreCommand = "config restore"
	ConfigResetCommand   = "config reset"
)

// ConfigIntent is what a config change is about to do (journaled under "change"; never a
// secret value: set journals the key, not the value).
type ConfigIntent struct {
	File           string `json:"file"`
	Key            string `json:"key,omitempty"`
	From           string `json:"from,omitempty"`
	FromSHA256     string `json:"from_sha256,omitempty"`
	FromAppVersion string `json:"from_app_version,omitempty"`
	KeepSecrets    *bool  `json:"keep_secrets,omitempty"`
}

// configOutcome is what a config change did (journaled under the outcome's "change").
type configOutcome struct {
	Changed    bool               `json:"changed"`
	Checkpoint string             `json:"checkpoint,omitempty"`
	SHA256Old  string             `json:"sha256_before,omitempty"`
	SHA256New  string             `json:"sha256_after,omitempty"`
	Diff       []appconfig.Change `json:"diff"`
}

// ConfigChange is one change of the app's config file: Apply is the Editor's Set or Apply
// (the Editor's DryRun makes it write nothing).
type ConfigChange struct {
	Config  settings.Config
	Command string // ConfigSetCommand, ConfigRestoreCommand or ConfigResetCommand
	Editor  *appconfig.Editor
	Intent  ConfigIntent
	Args    []string
	Apply   func() (appconfig.Result, error)
}

// ChangeConfig runs a config change as a procedure (RunChange): the file is judged first
// (a link another user owns, not a regular file: nothing was changed, nothing journaled),
// then lock, intent, the write step (checkpoint, validate, write), outcome.
func ChangeConfig(ctx context.Context, c ConfigChange, deps ChangeDeps) (appconfig.Result, *ChangeResult, error) {
	var res appconfig.Result
	if !c.Editor.DryRun {
		// Where the write would go is judged before the lock and the journal (Apply judges
		// it again, under the lock).
		if _, err := appconfig.StatFile(c.Editor.Path); err != nil {
			return res, nil, fmt.Errorf("%w; nothing was changed", err)
		}
	}
	summary := c.Command + " " + c.Editor.Path
	switch {
	case c.Intent.Key != "":
		summary = fmt.Sprintf("set %s in %s", c.Intent.Key, c.Editor.Path)
	case c.Intent.From != "":
		summary = fmt.Sprintf("restore %s from %s", c.Editor.Path, c.Intent.From)
	case c.Command == ConfigResetCommand:
		summary = fmt.Sprintf("reset %s to the built-in defaults", c.Editor.Path)
	}
	cr, err := RunChange(ctx, ChangeSpec{Config: c.Config, Command: c.Command, DryRun: c.Editor.DryRun, Args: c.Args, Summary: summary, Intent: c.Intent}, deps,
		func(ctx context.Context, p *Proc) (any, error) {
			err := p.Step(ctx, "write", func(context.Context) (string, any, error) {
				var err error
				res, err = c.Apply()
				switch {
				case err != nil:
					return "", nil, err
				case res.Changed:
					p.Changed("wrote %s (the file before it: checkpoint %s)", res.File, res.Checkpoint)
					return fmt.Sprintf("wrote %s (%d differences; checkpoint %s)", res.File, len(res.Diff), res.Checkpoint), nil, nil
				case res.WouldChange:
					return fmt.Sprintf("would checkpoint and write %s (%d differences)", res.File, len(res.Diff)), nil, nil
				}
				return res.File + " already has that content; nothing written", nil, nil
			})
			return configOutcome{Changed: res.Changed, Checkpoint: res.Checkpoint, SHA256Old: res.SHA256Old, SHA256New: res.SHA256New, Diff: res.Diff}, err
		})
	return res, cr, err
}
