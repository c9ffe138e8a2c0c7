package cli

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/tlsconf"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/source"
)

// agentCommand is `kelpie agent --repo URL`.
func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "keep this host in the state of a git branch",
		Description: "Fetches --repo's --ref into a cache under the state dir, validates the manifests\n" +
			"under --path, and converges this host to them: at start, every --interval, when\n" +
			"a local repository's refs change, on a signed webhook (/hooks/git), on SIGHUP and\n" +
			"on `kelpie sync`. A commit that does not validate, is not a fast-forward of the\n" +
			"applied one, or is not signed by --verify-keys is refused as a whole and the host\n" +
			"keeps running the last good commit. Containers that stop are restarted.\n\n" +
			"Serves the / dashboard, /healthz, /metrics, /api/v1/status, /api/v1/cluster,\n" +
			"/api/v1/history and POST /api/v1/sync on --listen. With --bind, --join or\n" +
			"--gossip-key it joins a cluster: the elected leader places replicas across the\n" +
			"members (docs/cluster.md). --notify URL posts an alert when something goes wrong.\n" +
			"With --serve-mirror it serves its applied commit and images to peers under /mirror/.\n" +
			"SIGTERM or SIGINT stop the agent; the containers keep running. See docs/agent.md.",
		Flags: concatFlags([]cli.Flag{
			&cli.StringSliceFlag{Name: "repo", Usage: "repository URL or path to follow (repeatable: the origin, then mirrors)", EnvVars: envVars("repo")},
			&cli.StringFlag{Name: "ref", Usage: "branch, tag or commit to follow", Value: "main", EnvVars: envVars("ref")},
			&cli.StringFlag{Name: "path", Usage: "directory of the manifests inside the repository", Value: ".", EnvVars: envVars("path")},
			&cli.DurationFlag{Name: "interval", Usage: "how often to poll the repository", Value: agent.DefaultInterval, EnvVars: envVars("interval")},
			&cli.DurationFlag{Name: "fetch-stall-timeout", Usage: "give up on a repository URL that sends nothing for this long during a fetch", Value: source.DefaultStallTimeout, EnvVars: envVars("fetch-stall-timeout")},
			&cli.StringFlag{Name: "listen", Usage: "address of the HTTP endpoints (status, metrics, sync, webhook)", Value: agent.DefaultListen, EnvVars: envVars("listen")},
			&cli.StringFlag{Name: "api-token", Usage: "the token POST /api/v1/sync (and, beyond loopback, every API read) needs; prefer the env var. Default: a random one kept in STATE-DIR/agent/api-token", EnvVars: envVars("api-token")},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve HTTPS with this PEM certificate (and present it to peers that ask for a client certificate)", EnvVars: envVars("tls-cert")},
			&cli.StringFlag{Name: "tls-key", Usage: "the PEM key of --tls-cert", EnvVars: envVars("tls-key")},
			&cli.StringFlag{Name: "tls-client-ca", Usage: "PEM CAs whose client certificates /mirror/ requires (mutual TLS between peers)", EnvVars: envVars("tls-client-ca")},
			&cli.StringFlag{Name: "tls-ca", Usage: "PEM CAs to trust, beside the system's, for https --repo URLs and registry mirrors (a peer's certificate)", EnvVars: envVars("tls-ca")},
			&cli.StringFlag{Name: "webhook-secret", Usage: "HMAC key or token of /hooks/git (prefer the env var); without it /hooks/git is off", EnvVars: envVars("webhook-secret")},
			&cli.StringFlag{Name: "verify-keys", Usage: "armored OpenPGP public keys: apply only commits signed by one of them", EnvVars: envVars("verify-keys")},
			&cli.StringFlag{Name: "ssh-key", Usage: "private key file for ssh repositories", EnvVars: envVars("ssh-key")},
			&cli.StringFlag{Name: "known-hosts", Usage: "known_hosts file for ssh repositories", EnvVars: envVars("known-hosts")},
			&cli.BoolFlag{Name: "allow-rewrite", Usage: "apply a head that does not descend from the applied commit", EnvVars: envVars("allow-rewrite")},
			&cli.BoolFlag{Name: "prune", Usage: "delete pods and networks the manifests no longer name (--prune=false keeps them)", Value: true, EnvVars: envVars("prune")},
			&cli.BoolFlag{Name: "allow-empty", Usage: "let a commit with no pods for this host remove every pod", EnvVars: envVars("allow-empty")},
		}, []cli.Flag{skipKindFlag(), ageKeyFileFlag()}, hostFlags(), clusterFlags(), networkFlags(), serveMirrorFlags(), notifyFlags(), runtimeFlags()),
		Action: runAgent,
	}
}

// runAgent builds the agent from the flags and runs it until SIGTERM or
// SIGINT.
func runAgent(c *cli.Context) error {
	if c.Args().Present() {
		return usageErrorf(c, "unexpected argument %q (the repository is given with --repo)", c.Args().First())
	}
	repos := c.StringSlice("repo")
	if len(repos) == 0 {
		return usageErrorf(c, "flag --repo is required: the repository to follow")
	}
	node, labels, err := hostIdentity(c)
	if err != nil {
		return err
	}
	rcfg, err := runtimeConfig(c)
	if err != nil {
		return err
	}
	gc, err := clusterConfig(c)
	if err != nil {
		return err
	}
	ncfg, mode, err := networkConfig(c)
	if err != nil {
		return err
	}
	nip, err := nodeIP(c)
	if err != nil {
		return err
	}
	cfg := agent.DefaultConfig()
	cfg.Cluster = gc
	cfg.LeaveOnStop = c.Bool("leave-on-stop")
	cfg.RescheduleAfter = c.Duration("reschedule-after")
	cfg.Rebalance = c.Bool("rebalance")
	cfg.Repos = repos
	cfg.Ref = c.String("ref")
	cfg.Path = c.String("path")
	cfg.Interval = c.Duration("interval")
	cfg.FetchStallTimeout = c.Duration("fetch-stall-timeout")
	cfg.Listen = c.String("listen")
	cfg.WebhookSecret = c.String("webhook-secret")
	cfg.APIToken = c.String("api-token")
	cfg.TLS = tlsconf.Files{CertFile: c.String("tls-cert"), KeyFile: c.String("tls-key"), ClientCAFile: c.String("tls-client-ca"), CAFile: c.String("tls-ca")}
	cfg.VerifyKeysFile = c.String("verify-keys")
	cfg.SSHKeyFile = c.String("ssh-key")
	cfg.KnownHostsFile = c.String("known-hosts")
	cfg.AllowRewrite = c.Bool("allow-rewrite")
	cfg.Prune = c.Bool("prune")
	cfg.AllowEmpty = c.Bool("allow-empty")
	cfg.Host = reconciler.Host{Name: node, Labels: labels}
	cfg.Runtime = rcfg
	cfg.Network = ncfg
	cfg.PodNetworkMode = mode
	cfg.SkipKinds = c.StringSlice("skip-kind")
	if cfg.AgeIdentities, err = ageIdentities(c); err != nil {
		return err
	}
	cfg.NodeIP = nip
	cfg.StateDir = rcfg.StateDir
	serveMirrorConfig(c, &cfg)
	if err := notifyConfig(c, &cfg); err != nil {
		return err
	}
	cfg.Log = slog.Default()

	a, err := agent.Open(c.Context, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				a.Trigger("SIGHUP")
			case <-c.Context.Done():
				return
			}
		}
	}()
	return a.Run(c.Context) // SIGTERM and SIGINT cancel c.Context (see Main)
}
