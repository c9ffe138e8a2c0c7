package cli

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// showCommand prints what the output helpers decide for its flags.
func showCommand() *cli.Command {
	return &cli.Command{
		Name:  "show",
		Flags: []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			format, err := outputFormat(c)
			if err != nil {
				return err
			}
			tty, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer tty.Close()
			var buf bytes.Buffer
			_, err = fmt.Fprintf(c.App.Writer, "format=%s color(device)=%v color(buffer)=%v\n",
				format, colorEnabled(c, tty), colorEnabled(c, &buf))
			return err
		},
	}
}

func TestOutputFormatAndColor(t *testing.T) {
	if !isTerminal(devNull(t)) {
		testenv.Missing(t, "%s is not a character device here", os.DevNull)
	}
	tests := []struct {
		name string
		env  map[string]string
		args string
		want string
	}{
		{"defaults", nil, "show", "format=text color(device)=true color(buffer)=false"},
		{"-o json", nil, "show -o json", "format=json color(device)=true color(buffer)=false"},
		{"case is ignored", nil, "show --output=JSON", "format=json color(device)=true color(buffer)=false"},
		{"KELPIE_OUTPUT", map[string]string{"KELPIE_OUTPUT": "json"}, "show", "format=json color(device)=true color(buffer)=false"},
		{"--no-color", nil, "show --no-color", "format=text color(device)=false color(buffer)=false"},
		{"KELPIE_NO_COLOR", map[string]string{"KELPIE_NO_COLOR": "true"}, "show", "format=text color(device)=false color(buffer)=false"},
		{"NO_COLOR", map[string]string{"NO_COLOR": "1"}, "show", "format=text color(device)=false color(buffer)=false"},
		{"NO_COLOR any value", map[string]string{"NO_COLOR": "yes please"}, "show", "format=text color(device)=false color(buffer)=false"},
		{"TERM=dumb", map[string]string{"TERM": "dumb"}, "show", "format=text color(device)=false color(buffer)=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			r := runApp(t, []*cli.Command{showCommand()}, strings.Fields(tt.args)...)
			if r.code != 0 || r.stderr != "" || r.stdout != tt.want+"\n" {
				t.Errorf("kelpie %s: code %d, stdout %q, stderr %q; want %q", tt.args, r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
}

func TestOutputFormatInvalid(t *testing.T) {
	clearEnv(t)
	t.Setenv("KELPIE_OUTPUT", "yaml")
	r := runApp(t, []*cli.Command{showCommand()}, "show")
	want := "kelpie: invalid value \"yaml\" for flag --output (from $KELPIE_OUTPUT): want text or json\nRun 'kelpie show --help' for usage.\n"
	if r.code != 1 || r.stderr != want || r.stdout != "" {
		t.Errorf("code %d, stdout %q, stderr %q; want 1, nothing, %q", r.code, r.stdout, r.stderr, want)
	}
}

func devNull(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	v := struct {
		Name  string   `json:"name"`
		Image string   `json:"image"`
		Ports []int    `json:"ports"`
		Notes []string `json:"notes,omitempty"`
	}{"web", "nginx:1.7.9", []int{80, 443}, []string{"a < b && c > d"}}
	if err := writeJSON(&buf, v); err != nil {
		t.Fatal(err)
	}
	want := `{
  "name": "web",
  "image": "nginx:1.7.9",
  "ports": [
    80,
    443
  ],
  "notes": [
    "a < b && c > d"
  ]
}
`
	if buf.String() != want {
		t.Errorf("writeJSON:\n%s\nwant:\n%s", buf.String(), want)
	}
	if err := writeJSON(&buf, func() {}); err == nil {
		t.Error("writeJSON(func) returned no error")
	}
}

func TestColorizer(t *testing.T) {
	on, off := colorizer{enabled: true}, colorizer{}
	tests := []struct {
		name     string
		on, off  string
		wantOn   string
		wantOff  string
		disabled string
	}{
		{name: "green", on: on.green("+ create"), off: off.green("+ create"), wantOn: "\x1b[32m+ create\x1b[0m", wantOff: "+ create"},
		{name: "red", on: on.red("- delete"), off: off.red("- delete"), wantOn: "\x1b[31m- delete\x1b[0m", wantOff: "- delete"},
		{name: "yellow", on: on.yellow("~ update"), off: off.yellow("~ update"), wantOn: "\x1b[33m~ update\x1b[0m", wantOff: "~ update"},
		{name: "bold", on: on.bold("web"), off: off.bold("web"), wantOn: "\x1b[1mweb\x1b[0m", wantOff: "web"},
		{name: "empty stays empty", on: on.red(""), off: off.red(""), wantOn: "", wantOff: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.on != tt.wantOn || tt.off != tt.wantOff {
				t.Errorf("enabled %q, disabled %q; want %q, %q", tt.on, tt.off, tt.wantOn, tt.wantOff)
			}
		})
	}
}

func TestIsTerminal(t *testing.T) {
	var buf bytes.Buffer
	if isTerminal(&buf) {
		t.Error("a bytes.Buffer is a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file is a terminal")
	}
}
