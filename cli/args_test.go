package cli

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// treeApp is a command tree shaped like kelpie's, with every kind of flag
// normalizeArgs must tell apart.
func treeApp() *cli.App {
	return &cli.App{
		Name:                 "kelpie",
		EnableBashCompletion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level"},
			&cli.BoolFlag{Name: "no-color"},
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}},
		},
		Commands: []*cli.Command{
			{Name: "diff", Aliases: []string{"d"}, Flags: []cli.Flag{
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}},
				&cli.BoolFlag{Name: "stat"},
				&cli.StringSliceFlag{Name: "path", Aliases: []string{"p"}},
			}},
			{Name: "validate", Flags: []cli.Flag{
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}},
				&cli.BoolFlag{Name: "strict"},
			}},
			{Name: "image", Flags: []cli.Flag{&cli.StringFlag{Name: "store"}}, Subcommands: []*cli.Command{
				{Name: "import", Aliases: []string{"i"}, Flags: []cli.Flag{
					&cli.BoolFlag{Name: "force", Aliases: []string{"f"}},
					&cli.StringFlag{Name: "tag", Aliases: []string{"t"}},
				}},
				{Name: "list"},
			}},
			{Name: "exec", SkipFlagParsing: true},
		},
	}
}

func TestNormalizeArgs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"program only", "", ""},
		{"already in order", "--log-level debug diff -o json a b", "--log-level debug diff -o json a b"},
		{"command flags after positionals", "diff HEAD~1 HEAD -o json", "diff -o json HEAD~1 HEAD"},
		{"command flag before the command", "-o json validate x", "validate -o json x"},
		{"global flag after positionals", "validate x --log-level debug", "--log-level debug validate x"},
		{"global and command flags mixed", "diff a --log-level debug b -o json --no-color", "--log-level debug --no-color diff -o json a b"},
		{"= forms never take the next token", "diff a --output=json --log-level=warn b", "--log-level=warn diff --output=json a b"},
		{"short = form", "diff a -o=json", "diff -o=json a"},
		{"bool flag does not take the next token", "diff a --stat b", "diff --stat a b"},
		{"global bool flag", "diff a --no-color b", "--no-color diff a b"},
		{"bool flag with = value", "diff a --no-color=false", "--no-color=false diff a"},
		{"short alias of a global flag", "diff a -c site.yaml", "-c site.yaml diff a"},
		{"single dash long flag", "diff a -output json", "diff -output json a"},
		{"command alias", "d a -o json", "d -o json a"},
		{"value that looks like a flag", "diff a -o -x", "diff -o -x a"},
		{"value that names a command", "-o diff validate x", "validate -o diff x"},
		{"repeated slice flag keeps order", "diff a -p x b -p y", "diff -p x -p y a b"},
		{"unknown flag stays with the command", "diff a --bogus b", "diff --bogus a b"},
		{"unknown flag before the command", "--bogus diff a", "diff --bogus a"},
		{"unknown flag without command", "--bogus", "--bogus"},
		{"double dash ends flags", "diff a -- -o json", "diff -- a -o json"},
		{"flags before double dash still move", "diff a -o json -- --stat b", "diff -o json -- a --stat b"},
		{"double dash as a flag value", "diff -o -- a", "diff -o -- a"},
		{"double dash alone", "diff --", "diff --"},
		{"lone dash is positional", "validate - -o json", "validate -o json -"},
		{"nested subcommand", "image import x.tar --force --store /s --log-level debug -t v1", "--log-level debug image --store /s import --force -t v1 x.tar"},
		{"nested subcommand alias and short bool", "image i x.tar -f", "image i -f x.tar"},
		{"nested flags typed first", "--store /s -t v1 image import x.tar", "image --store /s import -t v1 x.tar"},
		{"only the first positional can be a command", "validate diff --strict", "validate --strict diff"},
		{"positional before command name stops descent", "x diff -o json", "-o json x diff"},
		{"-h after positionals drops them", "diff a -h", "diff -h"},
		{"--help before positionals drops them", "validate --help x", "validate --help"},
		{"-h after double dash is positional", "validate x -- -h", "validate -- x -h"},
		{"-h before the command goes to the command", "-h diff", "diff -h"},
		{"-h alone", "-h", "-h"},
		{"-h on a nested command", "image import x -h", "image import -h"},
		{"help command", "help diff --log-level debug", "--log-level debug help diff"},
		{"skip flag parsing passes the rest on", "--no-color exec ls -la --log-level x", "--no-color exec ls -la --log-level x"},
		{"skip flag parsing keeps flags after it", "exec ls --no-color", "exec ls --no-color"},
		{"completion flag stays last", "diff a -o json --generate-bash-completion", "diff -o json a --generate-bash-completion"},
		{"completion flag after partial flag", "diff a --ou --generate-bash-completion", "diff --ou a --generate-bash-completion"},
		{"completion flag after double dash is positional", "diff -- --generate-bash-completion", "diff -- --generate-bash-completion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]string{"kelpie"}, strings.Fields(tt.in)...)
			want := append([]string{"kelpie"}, strings.Fields(tt.want)...)
			got := normalizeArgs(treeApp(), in)
			if !slices.Equal(got, want) {
				t.Errorf("normalizeArgs(%q)\n got %q\nwant %q", tt.in, got, want)
			}
		})
	}
}

func TestNormalizeArgsEmpty(t *testing.T) {
	if got := normalizeArgs(treeApp(), nil); len(got) != 0 {
		t.Errorf("normalizeArgs(nil) = %q, want empty", got)
	}
}

func TestScanArgsMissingValue(t *testing.T) {
	tests := []struct {
		in          string
		missing     string
		missingCmd  string
		completing  bool
		description string
	}{
		{"diff a -o", "-o", "kelpie diff", false, "command flag"},
		{"validate x --log-level", "--log-level", "kelpie", false, "global flag"},
		{"image import x --tag", "--tag", "kelpie image import", false, "nested command flag"},
		{"image import x --store", "--store", "kelpie image", false, "flag of the parent command"},
		{"diff a --output=", "", "", false, "= form carries its (empty) value"},
		{"diff a --stat", "", "", false, "bool flag"},
		{"diff a --bogus", "", "", false, "unknown flag: urfave reports it"},
		{"diff a -o --generate-bash-completion", "-o", "kelpie diff", true, "while completing"},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			s := scanArgs(treeApp(), append([]string{"kelpie"}, strings.Fields(tt.in)...))
			if s.missing != tt.missing || s.missingCmd != tt.missingCmd || s.completing != tt.completing {
				t.Errorf("scanArgs(%q): missing %q in %q, completing %v; want %q in %q, %v",
					tt.in, s.missing, s.missingCmd, s.completing, tt.missing, tt.missingCmd, tt.completing)
			}
		})
	}
}

// TestFlagsAnywhereEndToEnd runs a command defined here through run, the body
// of Main, with flags typed all over the command line.
func TestFlagsAnywhereEndToEnd(t *testing.T) {
	clearEnv(t)
	echo := func() *cli.Command {
		return &cli.Command{
			Name: "echo",
			Flags: []cli.Flag{
				outputFlag(),
				&cli.BoolFlag{Name: "upper", Aliases: []string{"u"}, EnvVars: envVars("upper")},
			},
			Action: func(c *cli.Context) error {
				format, err := outputFormat(c)
				if err != nil {
					return err
				}
				args := c.Args().Slice()
				if c.Bool("upper") {
					for i := range args {
						args[i] = strings.ToUpper(args[i])
					}
				}
				_, err = fmt.Fprintf(c.App.Writer, "output=%s no-color=%v log-level=%s args=%q\n",
					format, c.Bool("no-color"), c.String("log-level"), args)
				return err
			},
		}
	}
	tests := []struct {
		args string
		want string
	}{
		{"echo a b", `output=text no-color=false log-level=info args=["a" "b"]`},
		{"echo a -o json b --upper --log-level debug", `output=json no-color=false log-level=debug args=["A" "B"]`},
		{"-o json --no-color echo a", `output=json no-color=true log-level=info args=["a"]`},
		{"echo a --output=json -u -- -o b", `output=json no-color=false log-level=info args=["A" "-O" "B"]`},
		{"echo - --log-level=warn", `output=text no-color=false log-level=warn args=["-"]`},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			r := runApp(t, []*cli.Command{echo()}, strings.Fields(tt.args)...)
			if r.code != 0 || r.stderr != "" || r.stdout != tt.want+"\n" {
				t.Errorf("kelpie %s: code %d, stdout %q, stderr %q; want 0, %q", tt.args, r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
}

// TestMainFlagsAfterArguments goes through Main itself with a real command.
func TestMainFlagsAfterArguments(t *testing.T) {
	clearEnv(t)
	r := runMain(t, "completion", "fish", "--log-level", "debug", "--no-color")
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "complete -c kelpie") {
		t.Errorf("kelpie completion fish --log-level debug --no-color: code %d, stderr %q, stdout %.80q", r.code, r.stderr, r.stdout)
	}
	r = runMain(t, "-o", "json", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "{") {
		t.Errorf("kelpie -o json version: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
