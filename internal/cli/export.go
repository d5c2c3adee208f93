package cli

import (
	"github.com/spf13/cobra"

	"github.com/cfrollback/cfrollback/internal/settings"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// RootCommand is the whole command tree, for generating man pages and
// shell completions at build time (cmd/cfrollback-docs).
func RootCommand() *cobra.Command {
	return newRootCmd(&Factory{IO: ui.System(), Settings: &settings.Loader{}})
}
