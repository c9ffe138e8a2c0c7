package cli

import (
	"encoding/json"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// Output formats accepted by --output.
const (
	formatText = "text"
	formatJSON = "json"
)

// outputFlag is the --output/-o flag every printing command includes:
// text (for people, the default) or json (for programs).
func outputFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:    "output",
		Aliases: []string{"o"},
		Usage:   "output format: text or json",
		Value:   formatText,
		EnvVars: envVars("output"),
		Action: func(c *cli.Context, _ string) error {
			_, err := outputFormat(c)
			return err
		},
	}
}

// outputFormat returns the command's --output value, formatText or
// formatJSON, or a usage error naming the flag.
func outputFormat(c *cli.Context) (string, error) {
	v := c.String("output")
	switch f := strings.ToLower(v); f {
	case formatText, formatJSON:
		return f, nil
	}
	return "", invalidFlagValue(c, "output", v, "text or json")
}

// writeJSON writes v to w as JSON indented by two spaces, with a trailing
// newline and without escaping <, > and &.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// noColorFlag is the global --no-color flag. NO_COLOR (https://no-color.org)
// is honoured too, by colorEnabled: any non-empty value disables colour,
// which a bool flag's env var could not express.
func noColorFlag() *cli.BoolFlag {
	return &cli.BoolFlag{
		Name:    "no-color",
		Usage:   "never colour output (NO_COLOR is honoured too)",
		EnvVars: envVars("no-color"),
	}
}

// colorEnabled reports whether output to w may be coloured: w is a terminal,
// --no-color is off, NO_COLOR is empty and TERM is not "dumb".
func colorEnabled(c *cli.Context, w io.Writer) bool {
	if c != nil && c.Bool("no-color") {
		return false
	}
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isTerminal(w)
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// colorizer wraps text in ANSI colours, or returns it unchanged when disabled.
// The zero value is disabled.
type colorizer struct {
	enabled bool
}

// newColorizer returns a colorizer for output to w under c's flags.
func newColorizer(c *cli.Context, w io.Writer) colorizer {
	return colorizer{enabled: colorEnabled(c, w)}
}

func (z colorizer) paint(code, s string) string {
	if !z.enabled || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// green marks additions and success.
func (z colorizer) green(s string) string { return z.paint("32", s) }

// red marks removals and failures.
func (z colorizer) red(s string) string { return z.paint("31", s) }

// yellow marks changes in place and warnings.
func (z colorizer) yellow(s string) string { return z.paint("33", s) }

// bold marks headings and names.
func (z colorizer) bold(s string) string { return z.paint("1", s) }
