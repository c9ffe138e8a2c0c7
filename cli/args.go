package cli

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// completionFlag is the argument urfave/cli appends to ask for completions;
// it must stay last.
const completionFlag = "--generate-bash-completion"

// normalizeArgs rewrites a command line so that flags work wherever people
// type them. urfave/cli stops reading a command's flags at its first
// positional argument, so `kelpie diff HEAD~1 HEAD -o json` would pass "-o"
// and "json" to diff as revisions. normalizeArgs walks the command tree and
// returns
//
//	program, global flags, cmd1, cmd1's flags, cmd2, cmd2's flags, …, positionals
//
// Rules:
//   - A flag token is -x, --xx or --xx=v. Whether it takes the next token as
//     its value depends on the flag's type (bool flags do not) and is decided
//     by the innermost command on the path so far that defines it, else by any
//     command below that does; the --xx=v form never takes the next token.
//   - A flag goes after the innermost command of the final path that defines
//     it: global flags before the command name, a command's flags after it.
//     -h/--help count as defined on every command that shows help.
//   - An unknown flag goes after the innermost command, where urfave reports it.
//   - The first positional at each level that names a subcommand (or alias)
//     descends into it; after any other positional no more subcommands are
//     recognised, as in urfave.
//   - "--" ends flag processing: everything after it is positional. It is kept,
//     moved in front of all positionals so urfave still sees it as the end of
//     flags; a lone "-" is positional.
//   - With -h/--help (before any "--") positionals are dropped: urfave would
//     take the first one for a help topic, and help ignores them anyway.
//   - Below a command with SkipFlagParsing, the rest is passed on verbatim.
//   - A trailing --generate-bash-completion stays last.
//
// Relative order is kept within flags of one command and within positionals.
func normalizeArgs(app *cli.App, args []string) []string {
	return scanArgs(app, args).out
}

// argScan is normalizeArgs' reading of a command line.
type argScan struct {
	out []string // the rewritten command line
	// missing is a value flag typed last with no value after it ("-o"), and
	// missingCmd the command it belongs to ("kelpie diff"); urfave would take
	// the first positional as its value, so Main reports it instead.
	missing, missingCmd string
	completing          bool // the line ends with --generate-bash-completion
}

// node is one level of the command tree: the app itself or a command.
type node struct {
	name     string // as shown in help: "kelpie", "diff"
	flags    []cli.Flag
	subs     []*cli.Command
	helpFlag bool // -h/--help are defined here
	helpCmd  bool // an implicit "help" subcommand exists here
	skip     bool // SkipFlagParsing: everything after the name is positional
}

func appNode(app *cli.App) node {
	return node{
		name:     app.Name,
		flags:    app.Flags,
		subs:     app.Commands,
		helpFlag: !app.HideHelp,
		helpCmd:  !app.HideHelp && !app.HideHelpCommand,
		skip:     app.SkipFlagParsing,
	}
}

func commandNode(c *cli.Command) node {
	return node{
		name:     c.Name,
		flags:    c.Flags,
		subs:     c.Subcommands,
		helpFlag: !c.HideHelp,
		helpCmd:  !c.HideHelp && !c.HideHelpCommand,
		skip:     c.SkipFlagParsing,
	}
}

// sub returns the subcommand called name.
func (n node) sub(name string) (node, bool) {
	for _, c := range n.subs {
		if c.HasName(name) {
			return commandNode(c), true
		}
	}
	if n.helpCmd && (name == "help" || name == "h") {
		// urfave adds this command while running; it has no flags of its own.
		return node{name: "help", helpFlag: false}, true
	}
	return node{}, false
}

// lookup reports whether n defines the flag name and, if so, whether it
// takes a value.
func (n node) lookup(name string) (takesValue, found bool) {
	for _, f := range n.flags {
		for _, fn := range f.Names() {
			if fn == name {
				return flagTakesValue(f), true
			}
		}
	}
	if n.helpFlag && isHelpFlag(name) {
		return false, true
	}
	return false, false
}

// lookupBelow searches the commands under n, breadth first, for the flag.
func (n node) lookupBelow(name string) (takesValue, found bool) {
	queue := append([]*cli.Command(nil), n.subs...)
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if tv, ok := commandNode(c).lookup(name); ok {
			return tv, true
		}
		queue = append(queue, c.Subcommands...)
	}
	return false, false
}

func isHelpFlag(name string) bool {
	if cli.HelpFlag == nil {
		return false
	}
	for _, n := range cli.HelpFlag.Names() {
		if n == name {
			return true
		}
	}
	return false
}

// flagTakesValue reports whether f consumes the token after it.
func flagTakesValue(f cli.Flag) bool {
	if d, ok := f.(cli.DocGenerationFlag); ok {
		return d.TakesValue()
	}
	return true
}

// isFlagToken reports whether a (not "--") is a flag: "-x", "--xx", "--xx=v".
func isFlagToken(a string) bool {
	return len(a) > 1 && a[0] == '-'
}

// flagName returns the name in a flag token and whether it carries its value.
func flagName(a string) (name string, hasValue bool) {
	name = strings.TrimPrefix(a, "-")
	name = strings.TrimPrefix(name, "-")
	name, _, hasValue = strings.Cut(name, "=")
	return name, hasValue
}

// scanArgs does normalizeArgs' work and also reports a value flag left
// without its value.
func scanArgs(app *cli.App, args []string) argScan {
	if len(args) == 0 {
		return argScan{out: args}
	}
	var scan argScan
	body := args[1:]
	if app.EnableBashCompletion && len(body) > 0 && body[len(body)-1] == completionFlag && !slices.Contains(body, "--") {
		scan.completing = true
		body = body[:len(body)-1]
	}

	type flagTok struct {
		name   string
		tokens []string
	}
	var (
		path        = []node{appNode(app)} // path[0] is the app
		typed       []string               // command names as typed, path[1:]
		flags       []flagTok
		positionals []string
		verbatim    []string // after a SkipFlagParsing command
		dashdash    bool
		help        bool // a help flag was typed
		sawArg      bool // a positional that is not a command name
		missingAt   = -1 // index in flags of a value flag without its value
	)
	for i := 0; i < len(body); i++ {
		a := body[i]
		cur := path[len(path)-1]
		switch {
		case cur.skip && len(path) > 1:
			verbatim = append(verbatim, body[i:]...)
			i = len(body)
		case dashdash:
			positionals = append(positionals, a)
		case a == "--":
			dashdash = true
		case !isFlagToken(a):
			if !sawArg {
				if n, ok := cur.sub(a); ok {
					path = append(path, n)
					typed = append(typed, a)
					continue
				}
			}
			sawArg = true
			positionals = append(positionals, a)
		default:
			name, hasValue := flagName(a)
			tok := flagTok{name: name, tokens: []string{a}}
			if !hasValue && takesValue(path, name) {
				if i+1 < len(body) {
					tok.tokens = append(tok.tokens, body[i+1])
					i++
				} else {
					scan.missing, missingAt = a, len(flags)
				}
			}
			flags = append(flags, tok)
			if isHelpFlag(name) && !hasValue {
				help = true
			}
		}
	}

	// Each flag goes to the innermost command on the final path defining it.
	sections := make([][]string, len(path))
	for i, f := range flags {
		level := len(path) - 1 // unknown flags: let the innermost command report them
		for l := len(path) - 1; l >= 0; l-- {
			if _, ok := path[l].lookup(f.name); ok {
				level = l
				break
			}
		}
		sections[level] = append(sections[level], f.tokens...)
		if i == missingAt {
			scan.missingCmd = commandPath(path[:level+1])
		}
	}

	out := make([]string, 0, len(args)+1)
	out = append(out, args[0])
	out = append(out, sections[0]...)
	for l := 1; l < len(path); l++ {
		out = append(out, typed[l-1])
		out = append(out, sections[l]...)
	}
	out = append(out, verbatim...)
	if !help {
		if dashdash {
			out = append(out, "--")
		}
		out = append(out, positionals...)
	}
	if scan.completing {
		out = append(out, completionFlag)
	}
	scan.out = out
	return scan
}

// takesValue decides whether the flag name consumes the next token: by the
// innermost command on path that defines it, else by any command below.
func takesValue(path []node, name string) bool {
	for l := len(path) - 1; l >= 0; l-- {
		if tv, ok := path[l].lookup(name); ok {
			return tv
		}
	}
	tv, _ := path[len(path)-1].lookupBelow(name)
	return tv
}

// commandPath spells a command path as help shows it: "kelpie diff".
func commandPath(path []node) string {
	names := make([]string, len(path))
	for i, n := range path {
		names[i] = n.name
	}
	return strings.Join(names, " ")
}
