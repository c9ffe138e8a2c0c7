package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/agent"
)

// historyCommand is `kelpie history`.
func historyCommand() *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "show the agent's last syncs: trigger, commit, outcome, duration and what changed",
		Description: "Asks the agent at --agent for its history (/api/v1/history): the last syncs, and\n" +
			"the drift repairs that acted or failed, newest first, each with what started it, the\n" +
			"commit, ok, refused or failed (and why), how long it took and the actions it executed.\n" +
			"The agent keeps the last 300 in STATE-DIR/agent/history.jsonl. -o json prints the\n" +
			"entries as the agent serves them.",
		Flags: append(agentFlags(), outputFlag(),
			&cli.IntFlag{Name: "limit", Aliases: []string{"n"}, Usage: "show the last N entries", Value: 20, EnvVars: envVars("limit")}),
		Action: runHistory,
	}
}

// runHistory fetches and prints the history.
func runHistory(c *cli.Context) error {
	if c.Args().Present() {
		return usageErrorf(c, "unexpected argument %q", c.Args().First())
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	n := c.Int("limit")
	if n < 1 {
		return invalidFlagValue(c, "limit", fmt.Sprint(n), "a number of entries, 1 or more")
	}
	body, err := agentRequest(c.Context, c, http.MethodGet, fmt.Sprintf("/api/v1/history?limit=%d", n), http.StatusOK)
	if err != nil {
		return err
	}
	var entries []agent.HistoryEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		return fmt.Errorf("read the agent's history: %w", err)
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, entries)
	}
	printHistory(c.App.Writer, newColorizer(c, c.App.Writer), entries)
	return nil
}

// printHistory prints entries, one line each, followed by the error and
// the actions indented.
func printHistory(w io.Writer, z colorizer, entries []agent.HistoryEntry) {
	if len(entries) == 0 {
		fmt.Fprintln(w, "No syncs recorded yet.")
		return
	}
	for _, e := range entries {
		commit := "-"
		if e.Commit != "" {
			commit = agent.CommitInfo{Hash: e.Commit}.Short()
			if e.Subject != "" {
				commit += " " + termSafe(firstLine(e.Subject))
			}
		}
		result := z.green(e.Result)
		switch e.Result {
		case "refused":
			result = z.red(e.Result + " (" + string(e.Kind) + ")")
		case "failed":
			result = z.yellow(e.Result + " (" + string(e.Kind) + ")")
		}
		changes := "no change"
		if n := len(e.Actions) + e.More; n > 0 {
			changes = fmt.Sprintf("%d %s", n, plural(n, "action", "actions"))
		}
		fmt.Fprintf(w, "%s  %-8s %s  %s  %s  %s\n", e.Time.Local().Format(time.DateTime), termSafe(e.Trigger), result,
			(time.Duration(e.Seconds * float64(time.Second))).Round(time.Millisecond), changes, commit)
		if e.Error != "" {
			fmt.Fprintf(w, "    %s\n", termSafe(firstLine(e.Error)))
		}
		for _, a := range e.Actions {
			fmt.Fprintf(w, "    %s\n", termSafe(a))
		}
		if e.More > 0 {
			fmt.Fprintf(w, "    … and %d more\n", e.More)
		}
	}
}
