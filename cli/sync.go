package cli

import (
	"fmt"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"
)

// syncPoll is how often `kelpie sync --wait` asks for the status.
const syncPoll = 200 * time.Millisecond

// syncCommand is `kelpie sync`.
func syncCommand() *cli.Command {
	return &cli.Command{
		Name:  "sync",
		Usage: "ask the local agent to fetch and apply now",
		Description: "Asks the agent at --agent to sync now instead of at its next poll, as SIGHUP\n" +
			"and a webhook do. With --wait, waits for that sync to end and prints its result\n" +
			"(exit 1 unless it ended ok).",
		Flags: append(agentFlags(),
			&cli.DurationFlag{Name: "wait", Usage: "wait up to this long for the sync to end (0: do not wait)", EnvVars: envVars("wait")},
		),
		Action: runSync,
	}
}

// runSync requests a sync and, with --wait, waits for it.
func runSync(c *cli.Context) error {
	wait := c.Duration("wait")
	before := -1
	if wait > 0 {
		s, _, err := fetchStatus(c)
		if err != nil {
			return err
		}
		before = 0
		if s.LastSync != nil {
			before = s.LastSync.Seq
		}
	}
	if _, err := agentRequest(c.Context, c, http.MethodPost, "/api/v1/sync", http.StatusAccepted); err != nil {
		return err
	}
	if wait <= 0 {
		fmt.Fprintf(c.App.Writer, "Sync requested from the agent at %s.\n", c.String("agent"))
		return nil
	}
	deadline := time.Now().Add(wait)
	for {
		s, _, err := fetchStatus(c)
		if err != nil {
			return err
		}
		if ls := s.LastSync; ls != nil && ls.Seq > before {
			commit := ls.Commit
			if len(commit) > 12 {
				commit = commit[:12]
			}
			fmt.Fprintf(c.App.Writer, "Sync %s: commit %s, %d %s.\n", ls.Result, commit, ls.Actions, plural(ls.Actions, "action", "actions"))
			if ls.Result != "ok" {
				if e := s.LastError; e != nil {
					fmt.Fprintf(c.App.ErrWriter, "%s\n", e.Message)
				}
				return ExitCode(1)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the agent at %s did not finish a sync within %s", c.String("agent"), wait)
		}
		select {
		case <-c.Context.Done():
			return c.Context.Err()
		case <-time.After(syncPoll):
		}
	}
}
