// Package cli holds kelpie's commands (urfave/cli/v2). Each command parses
// flags, builds what it needs from the library packages, makes one library
// call and prints; cli holds no business logic.
//
// # Adding a command
//
// A command lives in its own file, cli/NAME.go, as one constructor that
// returns a fresh *cli.Command (no flag globals, no init registration):
//
//	func fooCommand() *cli.Command {
//		return &cli.Command{
//			Name:      "foo",
//			Usage:     "one line, lower case, no full stop",
//			ArgsUsage: "PATH",
//			Flags: []cli.Flag{
//				outputFlag(),
//				&cli.StringFlag{Name: "since", Usage: "…", EnvVars: envVars("since")},
//			},
//			Action: func(c *cli.Context) error {
//				format, err := outputFormat(c)
//				if err != nil {
//					return err
//				}
//				if c.NArg() != 1 {
//					return usageErrorf(c, "want one PATH, got %d arguments", c.NArg())
//				}
//				result, err := lib.Do(c.Context, c.Args().First()) // the one library call
//				if err != nil {
//					return fmt.Errorf("foo %s: %w", c.Args().First(), err)
//				}
//				if format == formatJSON {
//					return writeJSON(c.App.Writer, result)
//				}
//				color := newColorizer(c, c.App.Writer)
//				_, err = fmt.Fprintln(c.App.Writer, color.green("ok"))
//				return err
//			},
//		}
//	}
//
// and is listed once, in commands() in app.go. Conventions the package
// enforces or relies on:
//
//   - Every flag has exactly the environment variable KELPIE_<NAME> (upper
//     case, dashes to underscores): use envVars(name). A test walks the whole
//     command tree and fails on a flag without it.
//   - Flags may be typed anywhere on the command line; normalizeArgs moves
//     them where urfave/cli expects them, so commands need not care.
//   - Write results to c.App.Writer and nothing else there; logs go to
//     slog.Default(), which the app points at stderr.
//   - Return usageErrorf(c, …) for a mistake on the command line (exit 1 and a
//     hint to run --help), ExitCode(n) to exit with n silently (diff and plan
//     exit 2 when changes are pending), and any other error, wrapped with
//     what was being done, for a failure (printed as "kelpie: …", exit 1).
package cli
