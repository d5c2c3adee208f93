package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cfrollback/cfrollback/internal/ui"
)

// checkFlags runs before every command: what cobra would otherwise report later as a plain
// error (a required flag, a flag group) or not at all (a negative duration) is a flag error.
func checkFlags(cmd *cobra.Command) error {
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return flagError{err}
	}
	if err := cmd.ValidateFlagGroups(); err != nil {
		return flagError{err}
	}
	return negativeDurationFlag(cmd)
}

// negativeDurationFlag refuses a negative duration given to any flag (--timeout -5s would
// otherwise mean "no limit" to a context and "already expired" to another).
func negativeDurationFlag(cmd *cobra.Command) error {
	var err error
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if fl.Value.Type() != "duration" || err != nil {
			return
		}
		if d, perr := ui.ParseDuration(fl.Value.String()); perr == nil && d < 0 {
			err = flagError{fmt.Errorf("--%s %s: must not be negative (0 means its default)", fl.Name, fl.Value)}
		}
	})
	return err
}

// strictUsage makes every usage mistake in the tree under c an error with exit 2: an
// unknown command, at the top or under a group (cobra would print the group's help and
// exit 0), and a missing or extra argument (cobra's own errors are plain, exit 1).
func strictUsage(c *cobra.Command) {
	if !c.HasParent() {
		strictHelp(c)
	}
	switch {
	case c.HasSubCommands() && !c.Runnable():
		// A group alone shows its help, as before (under --json, where help is no answer, it
		// is an error); a group with words after it is an error.
		c.Args = unknownSubcommand
		c.RunE = func(cmd *cobra.Command, _ []string) error {
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				return withHint(usageErrorf("%s needs a command", cmd.CommandPath()), commandsHint(cmd))
			}
			return cmd.Help()
		}
	case c.HasSubCommands() && c.Args == nil:
		c.Args = unknownSubcommand
	case c.Args != nil: // a command of its own, also a group that runs and takes arguments
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			if err == nil || errors.As(err, new(usageError)) {
				return err
			}
			if !strings.Contains(err.Error(), cmd.CommandPath()) {
				err = fmt.Errorf("%s: %w", cmd.CommandPath(), err)
			}
			return withHint(usageError{err},
				fmt.Sprintf("usage: %s; '%s --help' says more", cmd.UseLine(), cmd.CommandPath()))
		}
	}
	for _, sub := range c.Commands() {
		strictUsage(sub)
	}
}

func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	hint := commandsHint(cmd)
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, set only where it prints suggestions
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		hint = fmt.Sprintf("did you mean %q? %s", strings.Join(s, `" or "`), hint)
	}
	return withHint(usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath()), hint)
}

// commandsHint lists the commands of a group.
func commandsHint(cmd *cobra.Command) string {
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return fmt.Sprintf("%s commands: %s; '%s --help' says more", cmd.CommandPath(), strings.Join(names, ", "), cmd.CommandPath())
}

// strictHelp makes 'cfrollback help TOPIC' with an unknown topic a usage error too (cobra
// prints "Unknown help topic" and exits 0, or with Args set on the root, the root's help).
func strictHelp(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	for _, h := range root.Commands() {
		if h.Name() != "help" {
			continue
		}
		h.Run = nil
		h.RunE = func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			switch {
			case err != nil:
				return usageError{err}
			case len(rest) > 0 && cmd.HasSubCommands():
				return unknownSubcommand(cmd, rest)
			case len(rest) > 0:
				return withHint(usageErrorf("unknown help topic %q: %s has no commands", strings.Join(args, " "), cmd.CommandPath()),
					fmt.Sprintf("'%s --help'", cmd.CommandPath()))
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		}
	}
}
