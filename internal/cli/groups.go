package cli

import "github.com/spf13/cobra"

// commandGroups is the map of --help for a newcomer: the 3am commands first. Every visible
// command belongs to one (TestCommandGroups).
var commandGroups = []struct {
	id, title string
	commands  []string
}{
	{"emergency", "Emergency:", []string{"emergency", "undo", "rollback", "deploy", "quickref"}},
	{"data", "Backups and data:", []string{"backup", "standby", "database", "memory"}},
	{"appconfig", "App config:", []string{"config", "agents"}},
	{"observe", "Observe and decide:", []string{"status", "health-check", "verify", "logs", "monitor", "guard", "baseline", "assess", "test", "history", "report", "journal"}},
	{"setup", "Setup:", []string{"settings", "notify", "drill", "completion", "version", "help"}},
}

// groupCommands puts root's commands in their groups.
func groupCommands(root *cobra.Command) {
	byName := map[string]string{}
	for _, g := range commandGroups {
		root.AddGroup(&cobra.Group{ID: g.id, Title: g.title})
		for _, c := range g.commands {
			byName[c] = g.id
		}
	}
	root.SetHelpCommandGroupID(byName["help"])
	for _, c := range root.Commands() {
		c.GroupID = byName[c.Name()] // one left out shows under "Additional Commands" (a test fails)
	}
}
