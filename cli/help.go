package cli

import (
	"github.com/urfave/cli/v2"
)

// helpCommand is kelpie help [COMMAND]. kelpie has its own rather than
// urfave's built-in, which is a package-level value that appends itself to
// its own subcommands when run (and then sends fish completion into endless
// recursion in the same process).
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Aliases:   []string{"h"},
		Usage:     "show help for kelpie or one of its commands",
		ArgsUsage: "[COMMAND]",
		HideHelp:  true,
		Action: func(c *cli.Context) error {
			// The help command's context sits below the one of the command
			// whose subcommands it explains.
			parent := c.Lineage()[1]
			if !c.Args().Present() {
				if parent.Command == nil || parent.Command.HelpName == c.App.HelpName {
					return cli.ShowAppHelp(c)
				}
				return cli.ShowSubcommandHelp(parent)
			}
			name := c.Args().First()
			if parent.Command == nil || parent.Command.Command(name) == nil {
				return unknownCommand(parent, name)
			}
			return cli.ShowCommandHelp(parent, name)
		},
	}
}
