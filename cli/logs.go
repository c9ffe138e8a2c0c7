package cli

import (
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/runtime/host"
	"github.com/kelpie-dev/kelpie/specs"
)

// logsCommand is `kelpie logs POD [-c NAME] [-f] [--tail N] [--since D|T] [-p]`.
func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print the output of a pod's container, on this host or through an agent",
		ArgsUsage: "[NAMESPACE/]POD",
		Description: "Prints what a container of the pod wrote to stdout and stderr, restarts included.\n" +
			"-c names the container (needed when the pod has several); -f keeps printing new\n" +
			"output until the container stops or you interrupt; --tail N starts with the last N\n" +
			"lines. The agent rotates logs (--container-log-max-size): rotated files come first.\n" +
			"With --agent, the agent serves the log (its API token is needed), forwarding the\n" +
			"request to the host of its cluster that runs the pod; without, this host's\n" +
			"containerd is read directly. --previous (-p) prints the container's previous run\n" +
			"instead (one that ended before kelpie kept runs apart is part of the current one).\n" +
			"--since 10m (or an RFC 3339 time, 2026-12-04T20:00:00Z) keeps the output written\n" +
			"since then, before --tail picks its last lines. Logs carry no time stamps: the agent\n" +
			"dates them once a second in an index beside each log, so --since is exact to a\n" +
			"second and may show up to a second of older output, never hide newer output; what\n" +
			"was written while no agent ran gets the time the agent next saw it.",
		Flags: concatFlags([]cli.Flag{
			&cli.StringFlag{Name: "container", Aliases: []string{"c"}, Usage: "the container's name", EnvVars: envVars("container")},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new output", EnvVars: envVars("follow")},
			&cli.IntFlag{Name: "tail", Usage: "print only the last N lines of what was written so far (-1: all)", Value: -1, EnvVars: envVars("tail")},
			&cli.StringFlag{Name: "since", Usage: "only output written in the last `DURATION` (10m) or since a TIME (RFC 3339), to the second", EnvVars: envVars("since")},
			&cli.BoolFlag{Name: "previous", Aliases: []string{"p"}, Usage: "print the output of the container's previous run (before its last restart)", EnvVars: envVars("previous")},
		}, runtimeFlags(), agentFlags()),
		Action: runLogs,
	}
}

// runLogs prints a container's log.
func runLogs(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErrorf(c, "logs takes one pod, [NAMESPACE/]POD; got %d arguments", c.NArg())
	}
	namespace, pod := specs.DefaultNamespace, c.Args().First()
	if ns, name, ok := strings.Cut(pod, "/"); ok {
		namespace, pod = ns, name
	}
	opts := agent.LogOptions{Container: c.String("container"), Follow: c.Bool("follow"), Tail: c.Int("tail"),
		Previous: c.Bool("previous")}
	if s := c.String("since"); s != "" {
		var err error
		if opts.Since, opts.SinceTime, err = agent.ParseSince(s); err != nil {
			return invalidFlagValue(c, "since", s, err.Error())
		}
	}
	if c.IsSet("agent") {
		return remoteLogs(c, namespace, pod, opts)
	}
	rt, err := openRuntime(c)
	if err != nil {
		return err
	}
	defer rt.Close()
	filter := host.LogFilter{Since: opts.Cutoff(time.Now()), Tail: opts.Tail}
	if opts.Previous {
		return rt.LogsPrevious(c.Context, namespace, pod, opts.Container, filter, c.App.Writer)
	}
	return rt.LogsTail(c.Context, namespace, pod, opts.Container, filter, opts.Follow, c.App.Writer)
}
