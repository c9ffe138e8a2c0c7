package cli

import (
	"io"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"
)

// logLevelFlag is the global --log-level flag.
func logLevelFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:    "log-level",
		Usage:   "log verbosity: debug, info, warn or error",
		Value:   "info",
		EnvVars: envVars("log-level"),
	}
}

// logFormatFlag is the global --log-format flag.
func logFormatFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:    "log-format",
		Usage:   "log format on stderr: text or json",
		Value:   "text",
		EnvVars: envVars("log-format"),
	}
}

// setupLogging validates --log-level and --log-format and points
// slog.Default, which commands hand to the library packages, at stderr.
// It runs in the app's Before, once per invocation.
func setupLogging(c *cli.Context) error {
	levelText := c.String("log-level")
	level, ok := parseLogLevel(levelText)
	if !ok {
		return invalidFlagValue(c, "log-level", levelText, "debug, info, warn or error")
	}
	format := strings.ToLower(c.String("log-format"))
	if format != "text" && format != "json" {
		return invalidFlagValue(c, "log-format", c.String("log-format"), "text or json")
	}
	slog.SetDefault(newLogger(c.App.ErrWriter, level, format))
	return nil
}

// parseLogLevel reads a --log-level value, ignoring case.
func parseLogLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

// newLogger returns a logger writing to w at level, as logfmt-style text or,
// with format "json", one JSON object a line.
func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
