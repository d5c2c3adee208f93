package runbook

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// The agent-set changes, as journaled in their intent and shown by history.
const (
	AgentsImportCommand = "agents import"
	AgentsResetCommand  = "agents reset"
)

// AgentsBackupDir is where agent bundles and checkpoints go: <backup.dir>/agents.
func AgentsBackupDir(cfg settings.Config) string { return filepath.Join(cfg.Backup.Dir, "agents") }

// ExportAgents writes the current agents dir as a bundle: to output, or (output "") to
// AgentsBackupDir named prefix-YYYYmmdd-HHMMSS.json. It returns the file written.
func ExportAgents(cfg settings.Config, reason, output, prefix string, now time.Time) (string, appconfig.Bundle, error) {
	dir := cfg.AgentsPath()
	files, err := appconfig.ReadDir(dir)
	if err != nil {
		return "", appconfig.Bundle{}, fmt.Errorf("read agents dir: %w", err)
	}
	b := appconfig.NewBundle(dir, files, appconfig.AppVersion(cfg.InstallDir), reason, now)
	if output == "" {
		// <backup.dir>/agents: a deploy user may own it, other users must not write it
		// (the checkpoints' rule, fsutil.CheckSharedDir)
		if err := fsutil.MkdirShared(AgentsBackupDir(cfg), 0o700); err != nil {
			return "", b, fmt.Errorf("write agents bundle: %w", fsutil.WithKey(err, "backup.dir"))
		}
		output = filepath.Join(AgentsBackupDir(cfg), appconfig.CheckpointName(prefix, b.Time))
	}
	name, err := appconfig.WriteBundle(output, b)
	if err != nil {
		return "", b, fmt.Errorf("write agents bundle: %w", err)
	}
	return name, b, nil
}

// AgentsIntent is what an agent-set change is about to do (journaled under "change").
type AgentsIntent struct {
	Dir      string `json:"dir"`
	Files    int    `json:"files"`
	From     string `json:"from,omitempty"`     // import: the bundle
	Template string `json:"template,omitempty"` // reset: the built-in set
}

// AgentsResult is what an agent-set change did, or (DryRun) would do.
type AgentsResult struct {
	RunID      string `json:"run_id"`
	Dir        string `json:"dir"`
	Files      int    `json:"files"`
	Agents     int    `json:"agents"`
	Checkpoint string `json:"checkpoint,omitempty"`
	Undo       string `json:"undo,omitempty"`
	// Plan is a dry run's: the files the new set adds, changes and removes.
	Plan *appconfig.ReplacePlan `json:"-"`
}

// agentsOutcome is journaled under the outcome's "change".
type agentsOutcome struct {
	Checkpoint string `json:"checkpoint,omitempty"`
	Agents     int    `json:"agents"`
}

// ReplaceAgents replaces the whole agent set with files as a procedure (RunChange): the set
// is validated first (invalid: nothing was changed, nothing journaled); then lock, intent,
// checkpoint (the current set into AgentsBackupDir), replace (one RENAME_EXCHANGE),
// outcome. A dry run plans the replace and writes nothing.
func ReplaceAgents(ctx context.Context, cfg settings.Config, command string, intent AgentsIntent, files []appconfig.BundleFile,
	dryRun bool, args []string, deps ChangeDeps) (*AgentsResult, *ChangeResult, error) {
	agents, err := appconfig.ValidateSet(files)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now
	if deps.Now != nil {
		now = deps.Now
	}
	dir := cfg.AgentsPath()
	intent.Dir, intent.Files = dir, len(files)
	res := &AgentsResult{Dir: dir, Files: len(files), Agents: agents}
	summary := fmt.Sprintf("replace the agent set in %s with %d files, %d agent definitions", dir, len(files), agents)
	cr, err := RunChange(ctx, ChangeSpec{Config: cfg, Command: command, DryRun: dryRun, Args: args, Summary: summary, Intent: intent}, deps,
		func(ctx context.Context, p *Proc) (any, error) {
			if !p.DryRun() {
				res.RunID = p.RunID()
			}
			_, statErr := os.Stat(dir)
			if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
				return nil, statErr
			}
			if statErr == nil {
				if err := p.Step(ctx, "checkpoint", func(context.Context) (string, any, error) {
					if p.DryRun() {
						return "would checkpoint the current set into " + AgentsBackupDir(cfg), nil, nil
					}
					name, _, err := ExportAgents(cfg, "before "+command, "", "agents-checkpoint-", now())
					if err != nil {
						return "", nil, fmt.Errorf("checkpoint the current set (nothing was changed): %w", err)
					}
					res.Checkpoint = name
					return "the current set is kept in " + name, nil, nil
				}); err != nil {
					return nil, err
				}
			}
			err := p.Step(ctx, "replace", func(context.Context) (string, any, error) {
				if p.DryRun() {
					plan, err := appconfig.PlanReplace(dir, files)
					res.Plan = &plan
					return fmt.Sprintf("would add %d, change %d, remove %d files", len(plan.Added), len(plan.Changed), len(plan.Removed)), nil, err
				}
				if err := appconfig.ReplaceDir(dir, files, now()); err != nil {
					return "", nil, err
				}
				p.Changed("replaced the agent set in %s (the set before it: %s)", dir, orNone(res.Checkpoint))
				return fmt.Sprintf("%s now holds %d files", dir, len(files)), nil, nil
			})
			if err == nil && res.Checkpoint != "" {
				res.Undo = "cfrollback agents import --file " + res.Checkpoint
			}
			return agentsOutcome{Checkpoint: res.Checkpoint, Agents: agents}, err
		})
	return res, cr, err
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
