package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// clearEnv unsets every KELPIE_* variable and NO_COLOR for the test, so the
// environment the tests run in cannot change flag values.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "KELPIE_") || k == "NO_COLOR" || k == "TERM" {
			t.Setenv(k, v) // restores it after the test
			os.Unsetenv(k)
		}
	}
}

// result is what one run of kelpie produced.
type result struct {
	code           int
	stdout, stderr string
}

// runMain runs Main like the shell would and restores slog.Default after.
func runMain(t *testing.T, args ...string) result {
	t.Helper()
	return runApp(t, nil, args...)
}

// runApp runs kelpie with extra commands added to the app, through run, the
// body of Main.
func runApp(t *testing.T, extra []*cli.Command, args ...string) result {
	t.Helper()
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	var stdout, stderr bytes.Buffer
	var code int
	if extra == nil {
		code = Main(append([]string{"kelpie"}, args...), strings.NewReader(""), &stdout, &stderr)
	} else {
		app := NewApp(&stdout, &stderr)
		app.Commands = append(app.Commands, extra...)
		code = run(app, append([]string{"kelpie"}, args...))
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// errCommand is a test command that returns the error it is given.
func errCommand(err error) *cli.Command {
	return &cli.Command{
		Name: "fail",
		Action: func(c *cli.Context) error {
			fmt.Fprintln(c.App.Writer, "ran")
			return err
		},
	}
}

func TestExitCodes(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name       string
		err        error
		wantCode   int
		wantStderr string
	}{
		{"nil", nil, 0, ""},
		{"ExitCode is silent", ExitCode(2), 2, ""},
		{"wrapped ExitCode", fmt.Errorf("diff: %w", ExitCode(2)), 2, ""},
		{"cli.Exit with message", cli.Exit("3 objects invalid", 3), 3, "3 objects invalid\n"},
		{"cli.Exit without message", cli.Exit("", 4), 4, ""},
		{"plain error", errors.New("clone repo: connection refused"), 1, "kelpie: clone repo: connection refused\n"},
		{"wrapped plain error", fmt.Errorf("plan: %w", os.ErrNotExist), 1, "kelpie: plan: file does not exist\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runApp(t, []*cli.Command{errCommand(tt.err)}, "fail")
			if r.code != tt.wantCode || r.stderr != tt.wantStderr || r.stdout != "ran\n" {
				t.Errorf("got code %d, stdout %q, stderr %q; want code %d, stdout \"ran\\n\", stderr %q",
					r.code, r.stdout, r.stderr, tt.wantCode, tt.wantStderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	clearEnv(t)
	// A fresh command per run: urfave writes into the commands it runs.
	count := func() *cli.Command {
		return &cli.Command{
			Name: "count",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "n", EnvVars: envVars("n")},
				&cli.IntFlag{Name: "replicas", EnvVars: envVars("replicas")},
				&cli.BoolFlag{Name: "upper", EnvVars: envVars("upper")},
			},
			Action: func(c *cli.Context) error { return nil },
		}
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // all of stderr
	}{
		{
			name: "unknown flag on a command, with suggestion",
			args: []string{"version", "--outptu", "json"},
			want: "kelpie: unknown flag --outptu (did you mean --output?)\nRun 'kelpie version --help' for usage.\n",
		},
		{
			name: "unknown flag, nothing close",
			args: []string{"version", "--frobnicate"},
			want: "kelpie: unknown flag --frobnicate\nRun 'kelpie version --help' for usage.\n",
		},
		{
			name: "unknown global flag, no command",
			args: []string{"--verbose"},
			want: "kelpie: unknown flag --verbose\nRun 'kelpie --help' for usage.\n",
		},
		{
			name: "bad enum value of a global flag",
			args: []string{"--log-level", "loud", "version"},
			want: "kelpie: invalid value \"loud\" for flag --log-level: want debug, info, warn or error\nRun 'kelpie --help' for usage.\n",
		},
		{
			name: "bad enum value from the environment",
			env:  map[string]string{"KELPIE_LOG_FORMAT": "xml"},
			args: []string{"version"},
			want: "kelpie: invalid value \"xml\" for flag --log-format (from $KELPIE_LOG_FORMAT): want text or json\nRun 'kelpie --help' for usage.\n",
		},
		{
			name: "bad output format",
			args: []string{"version", "-o", "yaml"},
			want: "kelpie: invalid value \"yaml\" for flag --output: want text or json\nRun 'kelpie version --help' for usage.\n",
		},
		{
			name: "value flag last without value",
			args: []string{"completion", "bash", "--log-level"},
			want: "kelpie: flag --log-level needs a value\nRun 'kelpie --help' for usage.\n",
		},
		{
			name: "command value flag last without value",
			args: []string{"version", "-o"},
			want: "kelpie: flag -o needs a value\nRun 'kelpie version --help' for usage.\n",
		},
		{
			name: "bad int",
			args: []string{"count", "--replicas", "two"},
			want: "kelpie: invalid value \"two\" for flag --replicas: parse error\nRun 'kelpie count --help' for usage.\n",
		},
		{
			name: "bad int, short name",
			args: []string{"count", "-n=x"},
			want: "kelpie: invalid value \"x\" for flag -n: parse error\nRun 'kelpie count --help' for usage.\n",
		},
		{
			name: "bad bool",
			args: []string{"count", "--upper=maybe"},
			want: "kelpie: invalid value \"maybe\" for flag --upper: want true or false\nRun 'kelpie count --help' for usage.\n",
		},
		{
			name: "bad bool in the environment",
			env:  map[string]string{"KELPIE_NO_COLOR": "maybe"},
			args: []string{"version"},
			want: "kelpie: could not parse \"maybe\" as bool value from environment variable \"KELPIE_NO_COLOR\" for flag --no-color: strconv.ParseBool: parsing \"maybe\": invalid syntax\nRun 'kelpie --help' for usage.\n",
		},
		{
			name: "bad logs --since",
			args: []string{"logs", "--since", "yesterday", "web"},
			want: "kelpie: invalid value \"yesterday\" for flag --since: want a duration such as 10m or an RFC 3339 time such as 2026-12-04T20:00:00Z\nRun 'kelpie logs --help' for usage.\n",
		},
		{
			name: "negative logs --since in the environment",
			env:  map[string]string{"KELPIE_SINCE": "-5m"},
			args: []string{"logs", "web"},
			want: "kelpie: invalid value \"-5m\" for flag --since (from $KELPIE_SINCE): want a positive duration such as 10m\nRun 'kelpie logs --help' for usage.\n",
		},
		{
			name: "unknown command",
			args: []string{"verison"},
			want: "kelpie: unknown command \"verison\" (did you mean \"version\"?)\nRun 'kelpie --help' for usage.\n",
		},
		{
			name: "unexpected argument",
			args: []string{"version", "now"},
			want: "kelpie: unexpected argument \"now\": version takes none\nRun 'kelpie version --help' for usage.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			r := runApp(t, []*cli.Command{count()}, tt.args...)
			if r.code != 1 {
				t.Errorf("exit code %d, want 1", r.code)
			}
			if r.stderr != tt.want {
				t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing (no help dump on usage errors)", r.stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		args []string
		want []string
	}{
		{nil, []string{"kelpie - declarative GitOps reconciler for fleets of container hosts", "version", "completion", "--log-level", "KELPIE_LOG_LEVEL"}},
		{[]string{"--help"}, []string{"COMMANDS:", "version", "completion", "--no-color"}},
		{[]string{"help", "version"}, []string{"kelpie version", "--output value, -o value"}},
		{[]string{"version", "-h"}, []string{"kelpie version", "--output value, -o value", "KELPIE_OUTPUT"}},
		{[]string{"completion", "bash", "--help"}, []string{"kelpie completion", "bash|zsh|fish"}},
		{[]string{"-h", "version"}, []string{"kelpie version", "--output value"}},
		{[]string{"help"}, []string{"COMMANDS:", "version"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runMain(t, tt.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("code %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help does not mention %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

// TestEveryFlagHasEnvVar walks the whole command tree, so commands added
// later are held to the rule too: every flag has exactly the environment
// variable KELPIE_<NAME>.
func TestEveryFlagHasEnvVar(t *testing.T) {
	app := NewApp(io.Discard, io.Discard)
	var check func(where string, flags []cli.Flag)
	check = func(where string, flags []cli.Flag) {
		for _, f := range flags {
			if f == cli.HelpFlag || f == cli.VersionFlag {
				continue // urfave's own
			}
			name := f.Names()[0]
			want := "KELPIE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
			d, ok := f.(cli.DocGenerationFlag)
			if !ok {
				t.Errorf("%s: flag --%s (%T) does not report its env vars", where, name, f)
				continue
			}
			if got := d.GetEnvVars(); len(got) != 1 || got[0] != want {
				t.Errorf("%s: flag --%s has env vars %q, want [%s]", where, name, got, want)
			}
		}
	}
	check("kelpie", app.Flags)
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			path := prefix + " " + c.Name
			check(path, c.Flags)
			walk(path, c.Subcommands)
		}
	}
	walk("kelpie", app.Commands)
	if len(app.Commands) < 2 {
		t.Errorf("walked %d commands, want at least version and completion", len(app.Commands))
	}
}

func TestEnvVarSetsFlag(t *testing.T) {
	clearEnv(t)
	t.Setenv("KELPIE_OUTPUT", "json")
	r := runMain(t, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "{\n") {
		t.Errorf("KELPIE_OUTPUT=json kelpie version: code %d, stdout %q, stderr %q; want JSON", r.code, r.stdout, r.stderr)
	}
	// The command line wins over the environment.
	r = runMain(t, "version", "-o", "text")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "version:") {
		t.Errorf("-o text with KELPIE_OUTPUT=json: code %d, stdout %q; want text", r.code, r.stdout)
	}
}

func TestLeafCommandTakesHelpAsArgument(t *testing.T) {
	clearEnv(t)
	// "help" after a command without subcommands is an argument, not urfave's
	// implicit help command.
	r := runMain(t, "completion", "help")
	want := "kelpie: unknown shell \"help\": want bash, zsh or fish\nRun 'kelpie completion --help' for usage.\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("code %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
}

func TestEnvName(t *testing.T) {
	for name, want := range map[string]string{
		"output":           "KELPIE_OUTPUT",
		"log-level":        "KELPIE_LOG_LEVEL",
		"reschedule-after": "KELPIE_RESCHEDULE_AFTER",
	} {
		if got := envName(name); got != want {
			t.Errorf("envName(%q) = %q, want %q", name, got, want)
		}
	}
}
