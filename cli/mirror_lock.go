package cli

import (
	"fmt"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/mirror"
)

// mirrorLockCommand is `kelpie mirror lock`.
func mirrorLockCommand() *cli.Command {
	return &cli.Command{
		Name:  "lock",
		Usage: "pin the digest of every image the manifests use, in " + mirror.LockFile,
		Description: "Writes " + mirror.LockFile + " in the work tree --repo: one line per image the\n" +
			"manifests under --path use, its reference and the digest this host's containerd (or\n" +
			"--image-dir) has for it. Commit the file, signed, with the manifests: `mirror import\n" +
			"--verify-keys` takes an image only if a signed commit pins its digest there (or the\n" +
			"manifest names it by digest), and `mirror create` refuses images that differ from it.",
		Flags: concatFlags([]cli.Flag{
			&cli.StringFlag{Name: "repo", Usage: "the work tree of the repository", Value: ".", EnvVars: envVars("repo")},
			&cli.StringFlag{Name: "path", Usage: "the manifests' directory inside the repository", Value: ".", EnvVars: envVars("path")},
			&cli.StringSliceFlag{Name: "image-dir", Usage: "look images up in these OCI layouts or archives instead of containerd (repeatable)", EnvVars: envVars("image-dir")},
		}, containerdFlags(), []cli.Flag{outputFlag()}),
		Action: runMirrorLock,
	}
}

// lockResult is the -o json output of mirror lock.
type lockResult struct {
	File   string           `json:"file"`
	Images mirror.ImageLock `json:"images"`
}

func runMirrorLock(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	if c.NArg() > 0 {
		return usageErrorf(c, "mirror lock takes no arguments (got %q); name the work tree with --repo", c.Args().First())
	}
	cfg := mirror.LockConfig{Dir: c.String("repo"), Path: c.String("path")}
	images, closeImages, err := mirrorImages(c)
	if err != nil {
		return err
	}
	defer closeImages()
	cfg.Images = images
	lock, err := mirror.WriteLock(c.Context, cfg)
	if err != nil {
		return err
	}
	file := filepath.Join(cfg.Dir, filepath.FromSlash(mirror.LockFile))
	if format == formatJSON {
		return writeJSON(c.App.Writer, lockResult{File: file, Images: lock})
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote %s (%d images); commit it, signed, with the manifests\n", file, len(lock))
	names := make([]string, 0, len(lock))
	for n := range lock {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", termSafe(n), lock[n])
	}
	return tw.Flush()
}
