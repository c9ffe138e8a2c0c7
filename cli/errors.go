package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	textsuggest "github.com/kelpie-dev/kelpie/internal/suggest"
)

// ExitCode returns an error that makes Main exit with code and print nothing,
// for outcomes that are not failures but must show in the exit status: diff
// and plan return ExitCode(2) when changes are pending.
func ExitCode(code int) error {
	return exitError{code: code}
}

// exitError is ExitCode's error; it satisfies urfave's cli.ExitCoder.
type exitError struct {
	code int
}

func (e exitError) Error() string { return "" }

// ExitCode returns the process exit status this error asks for.
func (e exitError) ExitCode() int { return e.code }

// usageError is a mistake on the command line: an unknown flag or command, a
// bad flag value, a wrong number of arguments. Main prints it with a hint to
// run help for cmd and exits 1.
type usageError struct {
	cmd string // the command whose help explains the mistake: "kelpie diff"
	msg string
}

func (e *usageError) Error() string { return e.msg }

// usageErrorf returns a usage error for the command running in c.
func usageErrorf(c *cli.Context, format string, args ...any) error {
	return &usageError{cmd: helpTarget(c), msg: fmt.Sprintf(format, args...)}
}

// invalidFlagValue returns the usage error for a flag whose value is not one
// the command accepts: `invalid value "loud" for flag --log-level: want
// debug, info, warn or error`. When the value came from the flag's environment
// variable the message says so, since the user did not type it.
func invalidFlagValue(c *cli.Context, name, value, want string) error {
	msg := fmt.Sprintf("invalid value %q for flag %s", value, dashed(name))
	if env, ok := os.LookupEnv(envName(name)); ok && env == value {
		msg += " (from $" + envName(name) + ")"
	}
	return usageErrorf(c, "%s: want %s", msg, want)
}

// helpTarget names the command running in c as a user types it: "kelpie diff".
func helpTarget(c *cli.Context) string {
	if c != nil && c.Command != nil && c.Command.HelpName != "" {
		return c.Command.HelpName
	}
	if c != nil && c.App != nil {
		return c.App.Name
	}
	return "kelpie"
}

// onUsageError is installed as every command's OnUsageError: it turns the
// flag package's parse error into a one-line usage error naming the flag, in
// place of urfave's default of printing the whole help.
func onUsageError(c *cli.Context, err error, _ bool) error {
	return &usageError{cmd: helpTarget(c), msg: describeFlagError(c, err)}
}

// describeFlagError rewrites the standard flag package's messages, which spell
// every flag with one dash, into kelpie's wording.
func describeFlagError(c *cli.Context, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		out := "unknown flag " + dashed(name)
		if s := suggest(name, knownFlagNames(c)); s != "" {
			out += " (did you mean " + dashed(s) + "?)"
		}
		return out
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return "flag " + dashed(name) + " needs a value"
	}
	// invalid value "x" for flag -name: reason
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		if value, tail, ok := strings.Cut(rest, " for flag -"); ok {
			if name, reason, ok := strings.Cut(tail, ": "); ok {
				return fmt.Sprintf("invalid value %s for flag %s: %s", value, dashed(name), reason)
			}
		}
	}
	// invalid boolean value "x" for -name: parse error
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		if value, tail, ok := strings.Cut(rest, " for -"); ok {
			if name, _, ok := strings.Cut(tail, ": "); ok {
				return fmt.Sprintf("invalid value %s for flag %s: want true or false", value, dashed(name))
			}
		}
	}
	// urfave: could not parse "x" as bool value from environment variable "K" for flag name: reason
	if head, tail, ok := strings.Cut(msg, " for flag "); ok && strings.HasPrefix(head, "could not parse ") {
		if name, reason, ok := strings.Cut(tail, ": "); ok {
			return head + " for flag " + dashed(name) + ": " + reason
		}
	}
	return msg
}

// knownFlagNames lists the flags a user could have meant in c: those of the
// command and of every command above it.
func knownFlagNames(c *cli.Context) []string {
	var names []string
	if c == nil {
		return nil
	}
	for _, ctx := range c.Lineage() {
		if ctx.Command == nil {
			continue
		}
		for _, f := range ctx.Command.Flags {
			names = append(names, f.Names()...)
		}
	}
	return names
}

// dashed spells a flag name as typed: -o, --output.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// suggest returns the candidate closest to typed when it is close enough to
// be a typo, else "".
func suggest(typed string, candidates []string) string {
	return textsuggest.Closest(typed, candidates)
}

// report prints err for the user and returns the exit status it stands for:
// nothing and 0 for nil; the code of an exit coder (ExitCode, cli.Exit), with
// its message if it has one; a usage error with a pointer to help and 1;
// anything else as "kelpie: message" and 1.
func report(w io.Writer, prog string, err error) int {
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(w, "%s: %s\nRun '%s --help' for usage.\n", prog, err, ue.cmd)
		return 1
	}
	var me cli.MultiError
	if errors.As(err, &me) {
		code := 1
		for _, e := range me.Errors() {
			if e != nil {
				code = report(w, prog, e)
			}
		}
		return code
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if ec.Error() != "" {
			fmt.Fprintln(w, err)
		}
		return ec.ExitCode()
	}
	fmt.Fprintf(w, "%s: %s\n", prog, err)
	return 1
}
