package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kelpie-dev/kelpie/agent"
)

// notifyFlags are the notification flags of `kelpie agent` (see
// agent.Config.Notify).
func notifyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "notify", Usage: "POST a JSON notification (Alertmanager webhook shape, Slack \"text\") to this URL when something goes wrong and when it recovers (repeatable)", EnvVars: envVars("notify")},
		&cli.StringFlag{Name: "notify-secret", Usage: "sign notifications: X-Kelpie-Signature: sha256=HMAC of the body (prefer the env var)", EnvVars: envVars("notify-secret")},
		&cli.IntFlag{Name: "history-limit", Usage: "how many syncs the history (kelpie history) keeps", Value: agent.DefaultHistoryLimit, EnvVars: envVars("history-limit")},
		&cli.StringFlag{Name: "container-log-max-size", Usage: "rotate a container's log when it grows beyond this size (a quantity: 10Mi, 500Ki)", Value: "10Mi", EnvVars: envVars("container-log-max-size")},
		&cli.IntFlag{Name: "container-log-max-files", Usage: "log files kept per container, the current one included", Value: agent.DefaultContainerLogs.MaxFiles, EnvVars: envVars("container-log-max-files")},
	}
}

// notifyConfig sets the notification, history and log fields of cfg
// from the flags; agent.New rejects a URL that is not http or https, and
// log bounds that bound nothing.
func notifyConfig(c *cli.Context, cfg *agent.Config) error {
	cfg.Notify = c.StringSlice("notify")
	cfg.NotifySecret = c.String("notify-secret")
	cfg.HistoryLimit = c.Int("history-limit")
	size := c.String("container-log-max-size")
	q, err := resource.ParseQuantity(size)
	if err != nil || q.Value() < 1024 {
		return invalidFlagValue(c, "container-log-max-size", size, "a size of at least 1Ki, such as 10Mi or 500Ki")
	}
	cfg.ContainerLogs.MaxBytes = q.Value()
	n := c.Int("container-log-max-files")
	if n < 2 {
		return invalidFlagValue(c, "container-log-max-files", fmt.Sprint(n), "at least 2 (the current file and one rotated)")
	}
	cfg.ContainerLogs.MaxFiles = n
	return nil
}
