package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// imageCommand is `kelpie image import FILE...`.
func imageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "manage container images on this host",
		Subcommands: []*cli.Command{{
			Name:      "import",
			Usage:     "import image archives into containerd (air-gapped hosts)",
			ArgsUsage: "FILE...",
			Description: "Imports OCI or Docker image archives (as `docker save` writes them, gzipped or\n" +
				"not) or OCI image layout directories into kelpie's containerd namespace, and\n" +
				"unpacks them so pods can start from them without a registry.",
			Flags:  concatFlags(runtimeFlags(), []cli.Flag{outputFlag()}),
			Action: runImageImport,
		}},
	}
}

// runImageImport imports each archive and lists the images it held.
func runImageImport(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	if c.NArg() == 0 {
		return usageErrorf(c, "image import needs at least one FILE")
	}
	rt, err := openRuntime(c)
	if err != nil {
		return err
	}
	defer rt.Close()
	imported := map[string][]string{}
	for _, file := range c.Args().Slice() {
		names, err := rt.Client().ImportArchive(c.Context, file)
		if err != nil {
			return err
		}
		imported[file] = names
		if format == formatText {
			for _, n := range names {
				fmt.Fprintf(c.App.Writer, "imported %s from %s\n", n, file)
			}
		}
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, map[string]any{"imported": imported})
	}
	return nil
}
