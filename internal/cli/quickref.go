package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

func newQuickrefCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "quickref",
		Short: "The copy-paste emergency block, in cfrollback commands, for these settings",
		Long: `Print the seed's "Quick Reference Commands" as cfrollback commands for the
settings in effect (service manager, install and backup dirs, journal), ready to
paste into a runbook or a terminal at 3am. The logs line reads where the logs
setting says (logs.source, logs.files); when that finds no log here, the line says
what to set instead of printing a command that fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			// Resolved quietly: the block says where the logs are, warnings would only repeat it.
			src, err := resolveLogs(cmd.Context(), &ui.IO{Out: io.Discard, ErrOut: io.Discard}, cfg, "")
			logsLine := "logs --grep ERROR --last-hour --count     # " + src.Desc
			if err != nil {
				logsLine = "settings | grep '^logs'     # no log found here (" + err.Error() + ")"
			}
			return printQuickref(f.IO, f.JSON, cfg, f.Settings.File, logsLine)
		},
	}
}

// quickrefResult is the --json output of quickref: the card as text.
type quickrefResult struct {
	Quickref string `json:"quickref"`
}

// printQuickref prints the block; logsLine is the logs command (after "sudo cfrollback ").
func printQuickref(io *ui.IO, asJSON bool, cfg settings.Config, configFile, logsLine string) error {
	cf := "cfrollback"
	if configFile != "" {
		cf += " --config " + configFile
	}
	var svc string
	switch cfg.Service.Manager {
	case "systemd":
		svc = "systemd unit " + cfg.Service.Unit
	case "pm2":
		svc = "pm2 app " + cfg.Service.PM2Name
	case "command":
		svc = "start/stop/status commands"
	default:
		svc = fmt.Sprintf("systemd unit %s, else pm2 app %s (auto)", cfg.Service.Unit, cfg.Service.PM2Name)
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# service %s; install %s; backups %s/%s", svc, cfg.InstallDir, cfg.Backup.Dir, cfg.Backup.Pattern)
	w("")
	w("# EMERGENCY ROLLBACK - COPY AND EXECUTE")
	w("sudo %s emergency && echo \"ROLLBACK SUCCESS\" || echo \"ROLLBACK FAILED (exit $?): read the hint above\"", cf)
	w("sudo %s verify                      # the 7-step post-rollback checklist, journaled", cf)
	w("")
	w("# SHOULD I ROLL BACK?")
	w("sudo %s assess                      # exit 10 P0, 11 P1, 12 P2, 13 P3, 14 inconclusive", cf)
	w("sudo %s emergency --dry-run         # the plan, nothing touched", cf)
	w("")
	w("# QUICK HEALTH CHECK - VERIFY ROLLBACK")
	w("sudo %s health-check --quick", cf)
	w("sudo %s %s", cf, logsLine)
	w("sudo %s test response-time --target 2000ms --samples 10", cf)
	w("")
	w("# AFTERWARDS")
	w("sudo %s history                     # runs, downtime; journal %s", cf, cfg.Journal)
	w("sudo %s undo RUN_ID                 # put the failed install back", cf)
	w("sudo %s report --output incident.md # the incident report", cf)
	w("sudo %s monitor --watch-for agent-spawn-failure,memory-leak,api-timeout", cf)
	if asJSON {
		return ui.JSON(io.Out, quickrefResult{Quickref: b.String()})
	}
	_, err := fmt.Fprint(io.Out, b.String())
	return err
}
