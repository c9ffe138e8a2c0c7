package cli

import (
	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/agent"
)

// serveMirrorFlags are the peer sync flags of `kelpie agent`: with
// --serve-mirror the agent serves its applied commit and its images to its
// peers on --listen (see agent.Config.ServeMirror).
func serveMirrorFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "serve-mirror", Usage: "serve the applied commit (/mirror/git/repo.git) and the images (/mirror/v2/) to peers on --listen, read-only", EnvVars: envVars("serve-mirror")},
		&cli.StringFlag{Name: "mirror-token", Usage: "secret peers must present to /mirror/ (prefer the env var); default in a cluster: derived from the gossip key", EnvVars: envVars("mirror-token")},
	}
}

// serveMirrorConfig sets the peer sync fields of cfg from the flags;
// agent.Config's validation rejects a missing or short token.
func serveMirrorConfig(c *cli.Context, cfg *agent.Config) {
	cfg.ServeMirror = c.Bool("serve-mirror")
	cfg.MirrorToken = c.String("mirror-token")
}
