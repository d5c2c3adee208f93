package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/ui"
)

func newConfigBackupCmd(opts *configOptions, load func() error) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "backup [--output FILE]",
		Short: "Save the app config as a checkpoint (time, app version, sha256, who)",
		Long: `Save the current app config, byte for byte, in a checkpoint file with its time,
the app version (<install>/package.json), its sha256 and who took it. Default
<backup.dir>/config/config-checkpoint-YYYYmmdd-HHMMSS.json; an existing file is
never overwritten. The checkpoint holds the secrets of the config: it is mode 0600.` +
			exitStatusHelp("0  saved", "1  the app config cannot be read or the checkpoint not written"),
		Example: `  cfrollback config backup
  cfrollback config backup --output config-checkpoint-$(date +%Y%m%d-%H%M%S).json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := load(); err != nil {
				return err
			}
			save := opts.editor().Checkpoint
			if opts.DryRun {
				save = opts.editor().PlanCheckpoint
			}
			name, cp, err := save("config backup", output)
			if err != nil {
				return err
			}
			info := checkpointResult{CheckpointInfo: appconfig.CheckpointInfo{Path: name, Time: cp.Time, Source: cp.Source,
				AppVersion: cp.AppVersion, SHA256: cp.SHA256, Size: cp.Size, User: cp.User, Reason: cp.Reason}, DryRun: opts.DryRun}
			if opts.JSON {
				return ui.JSON(opts.IO.Out, info)
			}
			fmt.Fprintln(opts.IO.Out, name)
			verb := "saved"
			if opts.DryRun {
				verb = "dry run: nothing was written; would save"
			}
			fmt.Fprintf(opts.IO.ErrOut, "%s %s (%d bytes, sha256 %s, app version %s)\n", verb, cp.Source, cp.Size, cp.SHA256[:12], orDash(cp.AppVersion))
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the checkpoint to this file")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "read the config and print the checkpoint that would be saved and where; write nothing")
	return cmd
}

// checkpointResult is config backup's --json: the checkpoint, and whether it was only planned.
type checkpointResult struct {
	appconfig.CheckpointInfo
	DryRun bool `json:"dry_run,omitempty"`
}

func newConfigCheckpointsCmd(opts *configOptions, load func() error) *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoints",
		Short: "List the config checkpoints, newest first",
		Long: `List the checkpoints in <backup.dir>/config, newest first: time, app version,
why it was taken, who, sha256. Contents (and so secrets) are never shown.` +
			exitStatusHelp("0  listed (also when there are none)", "1  the directory cannot be read"),
		Example: `  cfrollback config checkpoints
  cfrollback config checkpoints --json | jq -r '.[0].path'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := load(); err != nil {
				return err
			}
			list, err := appconfig.ListCheckpoints(configCheckpointDir(opts.Config))
			if err != nil {
				return err
			}
			if opts.JSON {
				return ui.JSON(opts.IO.Out, list)
			}
			if len(list) == 0 {
				fmt.Fprintf(opts.IO.ErrOut, "no checkpoints in %s\n", configCheckpointDir(opts.Config))
				return nil
			}
			return printCheckpoints(opts.IO.Out, list, opts.Now())
		},
	}
}

// printCheckpoints lists checkpoints one row each; an unreadable one's error, whatever
// it holds, stays on its row.
func printCheckpoints(w io.Writer, list []appconfig.CheckpointInfo, now time.Time) error {
	tb := ui.NewTable("TIME", "AGE", "APP VERSION", "REASON", "USER", "SHA256", "FILE")
	for _, c := range list {
		reason, sum := c.Reason, c.SHA256
		if c.Error != "" {
			reason = "UNREADABLE: " + c.Error
		}
		if len(sum) > 12 {
			sum = sum[:12]
		}
		tb.Row(c.Time.Local().Format("2006-01-02 15:04:05"), ui.Ago(c.Time, now),
			orDash(c.AppVersion), orDash(reason), orDash(c.User), orDash(sum), filepath.Base(c.Path))
	}
	return tb.Render(w)
}
