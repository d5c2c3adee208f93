package cli

import (
	"strings"
	"testing"

	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// Every visible command is in a group of --help, and the groups name only real commands.
func TestCommandGroups(t *testing.T) {
	root := newRootCmd(&Factory{IO: &ui.IO{}, Settings: &settings.Loader{}})
	root.InitDefaultHelpCmd()
	seen := map[string]bool{}
	for _, c := range root.Commands() {
		seen[c.Name()] = true
		if !c.Hidden && c.GroupID == "" {
			t.Errorf("command %s is in no group of commandGroups (groups.go)", c.Name())
		}
	}
	for _, g := range commandGroups {
		for _, name := range g.commands {
			if !seen[name] {
				t.Errorf("group %s names %s, which is no command", g.id, name)
			}
		}
	}
	var out strings.Builder
	root.SetOut(&out)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	if strings.Contains(help, "Additional Commands") {
		t.Errorf("--help has ungrouped commands:\n%s", help)
	}
	e, s := strings.Index(help, "Emergency:"), strings.Index(help, "Setup:")
	if e < 0 || s < 0 || e > s || !strings.Contains(help[e:], "\n  emergency ") {
		t.Errorf("--help does not start with the Emergency group:\n%s", help)
	}
}
