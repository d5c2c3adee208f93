package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// bindSettingsFlags adds the global flags that set a setting (settings.FlagKeys) and tells
// the loader which of them were given.
func bindSettingsFlags(l *settings.Loader, fs *pflag.FlagSet) {
	fs.String("install-dir", "", "the service's install dir (setting install_dir)")
	fs.String("backup-dir", "", "where backup-*.tar.gz live (setting backup.dir)")
	fs.String("manager", "", "auto, systemd, pm2 or command (setting service.manager)")
	fs.String("health-url", "", "URL that answers 2xx when healthy (setting health.url)")
	registerManagerCompletion(fs.Lookup("manager"))
	l.Flag = func(name string) (string, bool) {
		if f := fs.Lookup(name); f != nil && f.Changed {
			return f.Value.String(), true
		}
		return "", false
	}
}

// loadConfig is what every command calls first.
func (f *Factory) loadConfig() (settings.Config, error) {
	return f.Settings.Load(func(msg string) {
		f.IO.Warnf("%s", msg)
	})
}

// settingsResult is the --json output of settings.
type settingsResult struct {
	File     string             `json:"file"`
	Settings []settings.Setting `json:"settings"`
}

func newSettingsCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "settings",
		Short: "Print the effective settings and where each came from",
		Long: `Print every setting cfrollback will use and where its value came from:
default (the Claude Flow profile), file (--config, or /etc/cfrollback/config.yaml),
env (CFROLLBACK_<KEY> with dots as underscores, e.g. CFROLLBACK_BACKUP_DIR), or flag.` +
			exitStatusHelp("0  settings are valid", "2  a setting is invalid (the key is named)"),
		Example: `  cfrollback settings
  CFROLLBACK_INSTALL_DIR=/srv/app cfrollback settings --json
  cfrollback --config ./staging.yaml settings`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.loadConfig()
			if err != nil {
				return err
			}
			return runSettings(f.IO, f.JSON, f.Settings, cfg)
		},
	}
}

func runSettings(io *ui.IO, asJSON bool, s *settings.Loader, cfg settings.Config) error {
	// Shown, never the credentials in them.
	cfg.Health.URL = appconfig.RedactURL(cfg.Health.URL)
	hooks := make([]settings.Webhook, len(cfg.Notify.Webhooks))
	for i, w := range cfg.Notify.Webhooks {
		w.URL = appconfig.RedactWebhookURL(w.URL)
		hooks[i] = w
	}
	cfg.Notify.Webhooks = hooks
	rows, err := s.Effective(cfg)
	if err != nil {
		return err
	}
	if asJSON {
		return ui.JSON(io.Out, settingsResult{File: s.Used(), Settings: rows})
	}
	tb := ui.NewTable("KEY", "VALUE", "SOURCE")
	for _, r := range rows {
		tb.Row(r.Key, fmt.Sprint(r.Value), r.Source)
	}
	return tb.Render(io.Out)
}
