package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/specs"
)

// volumeCommand is `kelpie volume rm [NAMESPACE/]CLAIM`.
func volumeCommand() *cli.Command {
	return &cli.Command{
		Name:  "volume",
		Usage: "manage the local volumes of PersistentVolumeClaims on this host",
		Subcommands: []*cli.Command{{
			Name:      "rm",
			Usage:     "delete a claim's volume and its data (the only way kelpie deletes it)",
			ArgsUsage: "[NAMESPACE/]CLAIM",
			Description: "Deletes the local volume of a PersistentVolumeClaim and all its data. Prune\n" +
				"never does this. Refused while a pod on this host mounts the volume.",
			Flags:  runtimeFlags(),
			Action: runVolumeRm,
		}},
	}
}

// runVolumeRm removes one claim's volume.
func runVolumeRm(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErrorf(c, "volume rm takes one claim, [NAMESPACE/]CLAIM; got %d arguments", c.NArg())
	}
	namespace, name := specs.DefaultNamespace, c.Args().First()
	if ns, n, ok := strings.Cut(name, "/"); ok {
		namespace, name = ns, n
	}
	rt, err := openRuntime(c)
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := rt.RemoveClaim(c.Context, namespace, name); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "removed volume %s/%s and its data\n", namespace, name)
	return nil
}
