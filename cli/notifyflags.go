package cli

import (
	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/agent"
)

// notifyFlags are the notification flags of `kelpie agent` (see
// agent.Config.Notify).
func notifyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "notify", Usage: "POST a JSON notification (Alertmanager webhook shape, Slack \"text\") to this URL when something goes wrong and when it recovers (repeatable)", EnvVars: envVars("notify")},
		&cli.StringFlag{Name: "notify-secret", Usage: "sign notifications: X-Kelpie-Signature: sha256=HMAC of the body (prefer the env var)", EnvVars: envVars("notify-secret")},
		&cli.IntFlag{Name: "history-limit", Usage: "how many syncs the history (kelpie history) keeps", Value: agent.DefaultHistoryLimit, EnvVars: envVars("history-limit")},
	}
}

// notifyConfig sets the notification and history fields of cfg from the
// flags; agent.New rejects a URL that is not http or https.
func notifyConfig(c *cli.Context, cfg *agent.Config) {
	cfg.Notify = c.StringSlice("notify")
	cfg.NotifySecret = c.String("notify-secret")
	cfg.HistoryLimit = c.Int("history-limit")
}
