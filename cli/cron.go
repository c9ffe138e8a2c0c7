package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/urfave/cli/v2"
)

// cronCommand is `kelpie cron`.
func cronCommand() *cli.Command {
	return &cli.Command{
		Name:  "cron",
		Usage: "act on the CronJobs the local agent runs",
		Subcommands: []*cli.Command{{
			Name:      "trigger",
			Usage:     "start one Job of a CronJob now",
			ArgsUsage: "NAME",
			Description: "Asks the agent at --agent to start the CronJob's Job now, whatever its schedule,\n" +
				"suspend and concurrencyPolicy say (as `kubectl create job --from=cronjob/NAME`).\n" +
				"The Job is named NAME-manual-<Unix seconds>; `kelpie status` shows it.",
			Flags: append(agentFlags(),
				&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "the CronJob's namespace", Value: "default", EnvVars: envVars("namespace")},
				outputFlag(),
			),
			Action: runCronTrigger,
		}},
	}
}

// runCronTrigger asks the agent to trigger the CronJob and prints the Job.
func runCronTrigger(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	if c.NArg() != 1 {
		return usageErrorf(c, "want one CronJob NAME, got %d arguments", c.NArg())
	}
	ns, name := c.String("namespace"), c.Args().First()
	path := "/api/v1/cronjobs/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "/trigger"
	body, err := agentRequest(c.Context, c, http.MethodPost, path, http.StatusCreated)
	if err != nil {
		return err
	}
	if format == formatJSON {
		_, err := c.App.Writer.Write(body)
		return err
	}
	var out struct {
		Job string `json:"job"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return fmt.Errorf("read the agent's answer: %w", err)
	}
	fmt.Fprintf(c.App.Writer, "Job %s/%s started from CronJob %s.\n", termSafe(ns), termSafe(out.Job), termSafe(name))
	return nil
}
