package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// NewApp returns kelpie's command-line application, writing results to
// stdout and diagnostics and logs to stderr. Run it with Main, which also
// lets flags follow positional arguments and maps errors to exit codes.
func NewApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "kelpie",
		Usage:                "declarative GitOps reconciler for fleets of container hosts",
		Flags:                globalFlags(),
		Commands:             commands(),
		Before:               setupLogging,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		HideVersion:          true, // kelpie version is a command
		Metadata:             map[string]any{},
	}
	prepare(app)
	return app
}

// commands lists kelpie's commands, one constructor per file in cli/.
func commands() []*cli.Command {
	return []*cli.Command{
		validateCommand(),
		diffCommand(),
		planCommand(),
		applyCommand(),
		agentCommand(),
		statusCommand(),
		historyCommand(),
		syncCommand(),
		cronCommand(),
		psCommand(),
		logsCommand(),
		execCommand(),
		imageCommand(),
		mirrorCommand(),
		volumeCommand(),
		keygenCommand(),
		versionCommand(),
		completionCommand(),
		helpCommand(),
	}
}

// globalFlags are the flags every command accepts, typed before or after it.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		logLevelFlag(),
		logFormatFlag(),
		noColorFlag(),
	}
}

// envVars returns the environment variables of the flag name: exactly
// KELPIE_<NAME>, upper case with dashes as underscores. Every flag uses it.
func envVars(name string) []string {
	return []string{envName(name)}
}

// envName is the environment variable of the flag name: "log-level" →
// "KELPIE_LOG_LEVEL".
func envName(name string) string {
	return "KELPIE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Main runs kelpie with the command line args (args[0] is the program name)
// and returns the process exit status: 0 on success; 1 for a usage mistake
// (a one-line message and a pointer to --help on stderr) or a failure
// ("kelpie: message" on stderr); the code of an error from ExitCode or
// cli.Exit, printing its message if it has one. SIGINT and SIGTERM cancel the
// context commands run under.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := NewApp(stdout, stderr)
	app.Reader = stdin
	return run(app, args)
}

// run is Main for a given app.
func run(app *cli.App, args []string) int {
	prepare(app)
	scan := scanArgs(app, args)
	if scan.missing != "" && !scan.completing {
		return report(app.ErrWriter, app.Name, &usageError{cmd: scan.missingCmd, msg: "flag " + scan.missing + " needs a value"})
	}
	if scan.completing {
		last := ""
		if len(args) >= 3 {
			last = args[len(args)-2]
		}
		app.Metadata[lastWordKey] = last
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return report(app.ErrWriter, app.Name, app.RunContext(ctx, scan.out))
}

// prepare installs kelpie's behaviour on app and every command below it that
// does not set its own: short usage errors instead of full help, completion
// from the command tree, help or an "unknown command" error for commands that
// only group subcommands (plus kelpie's help subcommand in place of urfave's),
// leaf commands that take "help" as an argument, and no os.Exit inside the
// app (Main decides the exit status). It is idempotent.
func prepare(app *cli.App) {
	if app.Metadata == nil {
		app.Metadata = map[string]any{}
	}
	if app.ExitErrHandler == nil {
		app.ExitErrHandler = func(*cli.Context, error) {}
	}
	if app.OnUsageError == nil {
		app.OnUsageError = onUsageError
	}
	if app.BashComplete == nil {
		app.BashComplete = completeCommand
	}
	if app.Action == nil {
		app.Action = rootAction
	}
	if !app.HideHelp && cli.HelpFlag != nil && !hasFlag(app.Flags, cli.HelpFlag.Names()[0]) {
		// urfave adds -h/--help to the app only along with its own help
		// command, which kelpie replaces.
		app.Flags = append(app.Flags, cli.HelpFlag)
	}
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			if c.OnUsageError == nil {
				c.OnUsageError = onUsageError
			}
			if c.BashComplete == nil {
				c.BashComplete = completeCommand
			}
			if len(c.Subcommands) > 0 {
				if c.Action == nil {
					c.Action = groupAction
				}
				if c.Command("help") == nil && !c.HideHelp && !c.HideHelpCommand {
					c.Subcommands = append(c.Subcommands, helpCommand())
				}
			} else {
				// A leaf's first argument is its own: "kelpie validate help"
				// validates ./help rather than showing help (-h does that).
				c.HideHelpCommand = true
			}
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
}

// hasFlag reports whether flags include one called name.
func hasFlag(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// rootAction runs when no command is given: it shows the app's help, or
// reports that the first argument is not a command.
func rootAction(c *cli.Context) error {
	if c.Args().Present() {
		return unknownCommand(c, c.Args().First())
	}
	return cli.ShowAppHelp(c)
}

// groupAction runs for a command that only groups subcommands: it shows the
// command's help, or reports that the argument is not one of them.
func groupAction(c *cli.Context) error {
	if c.Args().Present() {
		return unknownCommand(c, c.Args().First())
	}
	return cli.ShowSubcommandHelp(c)
}

// unknownCommand is the usage error for typed, which names none of the
// subcommands of the command running in c.
func unknownCommand(c *cli.Context, typed string) error {
	var names []string
	for _, sub := range c.Command.Subcommands {
		if !sub.Hidden {
			names = append(names, sub.Names()...)
		}
	}
	msg := fmt.Sprintf("unknown command %q", typed)
	if target := helpTarget(c); target != c.App.Name {
		msg += fmt.Sprintf(" for %q", target)
	}
	if s := suggest(typed, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return usageErrorf(c, "%s", msg)
}
