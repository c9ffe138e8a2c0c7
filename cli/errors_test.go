package cli

import (
	"bytes"
	"errors"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestDescribeFlagError(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"flag provided but not defined: -bogus", "unknown flag --bogus"},
		{"flag provided but not defined: -x", "unknown flag -x"},
		{"flag provided but not defined: -ouptut", "unknown flag --ouptut (did you mean --output?)"},
		{"flag needs an argument: -o", "flag -o needs a value"},
		{"flag needs an argument: -output", "flag --output needs a value"},
		{`invalid value "two" for flag -replicas: parse error`, `invalid value "two" for flag --replicas: parse error`},
		{`invalid value "x" for flag -n: value out of range`, `invalid value "x" for flag -n: value out of range`},
		{`invalid boolean value "maybe" for -stat: parse error`, `invalid value "maybe" for flag --stat: want true or false`},
		{`could not parse "x" as int value from environment variable "KELPIE_N" for flag n: bad`, `could not parse "x" as int value from environment variable "KELPIE_N" for flag -n: bad`},
		{"bad flag syntax: ---x", "bad flag syntax: ---x"},
		{"something else entirely", "something else entirely"},
	}
	app := &cli.App{Name: "kelpie"}
	ctx := cli.NewContext(app, nil, nil)
	ctx.Command = &cli.Command{Name: "diff", Flags: []cli.Flag{outputFlag(), &cli.BoolFlag{Name: "stat"}}}
	for _, tt := range tests {
		if got := describeFlagError(ctx, errors.New(tt.in)); got != tt.want {
			t.Errorf("describeFlagError(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	candidates := []string{"output", "o", "log-level", "log-format", "no-color", "version", "validate"}
	tests := []struct{ typed, want string }{
		{"ouptut", "output"},
		{"outptu", "output"},
		{"log-levle", "log-level"},
		{"nocolor", "no-color"},
		{"verison", "version"},
		{"valdiate", "validate"},
		{"x", ""},
		{"frobnicate", ""},
		{"output", "output"},
	}
	for _, tt := range tests {
		if got := suggest(tt.typed, candidates); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.typed, got, tt.want)
		}
	}
}

func TestReport(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantOut  string
	}{
		{"nil", nil, 0, ""},
		{"exit code", ExitCode(2), 2, ""},
		{"exit code zero", ExitCode(0), 0, ""},
		{"cli.Exit", cli.Exit("boom", 7), 7, "boom\n"},
		{"usage", &usageError{cmd: "kelpie diff", msg: "unknown flag --x"}, 1, "kelpie: unknown flag --x\nRun 'kelpie diff --help' for usage.\n"},
		{"other", errors.New("disk full"), 1, "kelpie: disk full\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if code := report(&buf, "kelpie", tt.err); code != tt.wantCode || buf.String() != tt.wantOut {
				t.Errorf("report: code %d, printed %q; want %d, %q", code, buf.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}
