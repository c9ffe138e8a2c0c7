package cli

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestParseLogLevel(t *testing.T) {
	tests := []struct {
		in     string
		want   slog.Level
		wantOK bool
	}{
		{"debug", slog.LevelDebug, true},
		{"info", slog.LevelInfo, true},
		{"warn", slog.LevelWarn, true},
		{"error", slog.LevelError, true},
		{"DEBUG", slog.LevelDebug, true},
		{"warning", 0, false},
		{"loud", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseLogLevel(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseLogLevel(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// logCommand logs one record at each level through slog.Default, as library
// code handed slog.Default() would.
func logCommand() *cli.Command {
	return &cli.Command{
		Name: "log",
		Action: func(c *cli.Context) error {
			slog.Debug("fetching", "repo", "site")
			slog.Info("fetched", "commit", "abc123")
			slog.Warn("slow mirror")
			slog.Error("gave up")
			return nil
		},
	}
}

func TestLogging(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    string
		want    []string // messages on stderr, in order
		notWant []string
	}{
		{"default is info, text", nil, "log", []string{"msg=fetched", "msg=\"slow mirror\"", "msg=\"gave up\""}, []string{"fetching"}},
		{"debug", nil, "log --log-level debug", []string{"msg=fetching", "repo=site", "msg=fetched"}, nil},
		{"error only", nil, "--log-level=error log", []string{"msg=\"gave up\""}, []string{"fetched", "slow mirror"}},
		{"level from the environment", map[string]string{"KELPIE_LOG_LEVEL": "warn"}, "log", []string{"slow mirror"}, []string{"fetched"}},
		{"flag beats environment", map[string]string{"KELPIE_LOG_LEVEL": "error"}, "log --log-level info", []string{"fetched"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			r := runApp(t, []*cli.Command{logCommand()}, strings.Fields(tt.args)...)
			if r.code != 0 || r.stdout != "" {
				t.Fatalf("code %d, stdout %q; want 0 and no output (logs go to stderr)", r.code, r.stdout)
			}
			rest := r.stderr
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stderr lacks %q (in order):\n%s", w, r.stderr)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tt.notWant {
				if strings.Contains(r.stderr, w) {
					t.Errorf("stderr has %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

func TestLoggingJSON(t *testing.T) {
	clearEnv(t)
	r := runApp(t, []*cli.Command{logCommand()}, "log", "--log-format", "json", "--log-level", "debug")
	if r.code != 0 {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d log lines, want 4:\n%s", len(lines), r.stderr)
	}
	var rec struct {
		Level string `json:"level"`
		Msg   string `json:"msg"`
		Repo  string `json:"repo"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("first line is not JSON: %v: %s", err, lines[0])
	}
	if rec.Level != "DEBUG" || rec.Msg != "fetching" || rec.Repo != "site" {
		t.Errorf("first record = %+v, want DEBUG fetching repo=site", rec)
	}
}
