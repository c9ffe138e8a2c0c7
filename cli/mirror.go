package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/mirror"
	"github.com/kelpie-dev/kelpie/runtime/image"
)

// mirrorCommand is `kelpie mirror create|import|lock|ls`.
func mirrorCommand() *cli.Command {
	return &cli.Command{
		Name:  "mirror",
		Usage: "make, import and list air-gap bundles and mirrors",
		Subcommands: []*cli.Command{
			{
				Name:  "create",
				Usage: "write one bundle file: git history and the images its manifests use",
				Description: "Writes FILE (--out): a tar holding an index with a SHA-256 for each part, a git\n" +
					"bundle of the refs (readable by `git bundle verify` and `git fetch`), and an OCI\n" +
					"image archive of every image the manifests at those refs use, taken from this\n" +
					"host's containerd (pulled if missing) or from --image-dir. With --since (an\n" +
					"earlier bundle file, or a commit) only what is new goes in: commits after it,\n" +
					"image blobs it did not have.",
				Flags: concatFlags([]cli.Flag{
					&cli.StringFlag{Name: "repo", Usage: "the repository: a path, or a URL to fetch", Value: ".", EnvVars: envVars("repo")},
					&cli.StringSliceFlag{Name: "ref", Usage: "branch or tag to carry (repeatable; default HEAD's branch, or main for a URL)", EnvVars: envVars("ref")},
					&cli.StringFlag{Name: "path", Usage: "the manifests' directory inside the repository", Value: ".", EnvVars: envVars("path")},
					&cli.StringFlag{Name: "out", Usage: "the bundle file to write", Required: true, EnvVars: envVars("out")},
					&cli.StringFlag{Name: "since", Usage: "an earlier bundle file or a commit the receiver has: carry only what is new", EnvVars: envVars("since")},
					&cli.StringSliceFlag{Name: "image-dir", Usage: "take images from these OCI layouts or archives instead of containerd (repeatable)", EnvVars: envVars("image-dir")},
				}, containerdFlags(), []cli.Flag{outputFlag()}),
				Action: runMirrorCreate,
			},
			{
				Name:      "import",
				Usage:     "verify a bundle and add it to a mirror directory",
				ArgsUsage: "FILE",
				Description: "Verifies every checksum of FILE, then updates the bare repository DIR/site.git\n" +
					"(fast-forward only, unless --force) and the OCI image layout DIR/images, which an\n" +
					"agent uses as --repo DIR/site.git --image-dir DIR/images. Everything is staged in\n" +
					"DIR first: a corrupt, truncated or refused bundle leaves the mirror as it was.\n" +
					"With --verify-keys, every ref's commit must be signed by one of the keys, and\n" +
					"every image's digest pinned by the " + mirror.LockFile + " of one of those commits\n" +
					"(see `kelpie mirror lock`): the bundle's index, which names the images, is not signed.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "dir", Usage: "the mirror directory (created if missing)", Required: true, EnvVars: envVars("dir")},
					&cli.BoolFlag{Name: "force", Usage: "accept refs that do not descend from what the mirror has", EnvVars: envVars("force")},
					&cli.StringFlag{Name: "verify-keys", Usage: "armored OpenPGP public keys: the bundle's head commits must be signed by one, and pin every image's digest in " + mirror.LockFile, EnvVars: envVars("verify-keys")},
					outputFlag(),
				},
				Action: runMirrorImport,
			},
			mirrorLockCommand(),
			{
				Name:      "ls",
				Usage:     "list what a mirror directory holds",
				ArgsUsage: "DIR",
				Flags:     []cli.Flag{outputFlag()},
				Action:    runMirrorLs,
			},
		},
	}
}

// containerdFlags are the runtime flags mirror create needs to read images
// from containerd (or pull them).
func containerdFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range runtimeFlags() {
		switch f.Names()[0] {
		case "containerd-address", "containerd-namespace", "registry-mirror":
			out = append(out, f)
		}
	}
	return out
}

// createResult is the -o json output of mirror create.
type createResult struct {
	File  string        `json:"file"`
	ID    string        `json:"id"`
	Size  int64         `json:"size"`
	Index *mirror.Index `json:"index"`
}

func runMirrorCreate(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	if c.NArg() > 0 {
		return usageErrorf(c, "mirror create takes no arguments (got %q); name the repository with --repo", c.Args().First())
	}
	cfg := mirror.CreateConfig{
		Repo:  c.String("repo"),
		Refs:  c.StringSlice("ref"),
		Path:  c.String("path"),
		Out:   c.String("out"),
		Since: c.String("since"),
	}
	progress := newMirrorProgress(c.App.ErrWriter)
	cfg.Progress = progress.fn()
	images, closeImages, err := mirrorImages(c)
	if err != nil {
		return err
	}
	defer closeImages()
	cfg.Images = images
	x, id, err := mirror.Create(c.Context, cfg)
	progress.finish()
	if err != nil {
		return err
	}
	size := fileSize(cfg.Out)
	if format == formatJSON {
		return writeJSON(c.App.Writer, createResult{File: cfg.Out, ID: id, Size: size, Index: x})
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote %s (%s, id %.12s)\n", cfg.Out, humanBytes(size), id)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range x.Refs {
		fmt.Fprintf(tw, "  %s\t%.12s\n", termSafe(r.Name), r.Commit)
	}
	tw.Flush()
	carried, bytes := 0, int64(0)
	for _, img := range x.Images {
		carried += img.Carried
		bytes += img.Size()
	}
	fmt.Fprintf(w, "  %d images (%s), %d blobs carried\n", len(x.Images), humanBytes(bytes), carried)
	if x.Since != nil {
		basis := c.String("since")
		if len(x.Since.Prerequisites) > 0 {
			basis += fmt.Sprintf(", builds on %.12s", strings.Join(x.Since.Prerequisites, " "))
		}
		fmt.Fprintf(w, "  incremental since %s\n", basis)
	}
	return nil
}

func runMirrorImport(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	if c.NArg() != 1 {
		return usageErrorf(c, "mirror import takes one bundle FILE; got %d arguments", c.NArg())
	}
	cfg := mirror.ImportConfig{
		File:           c.Args().First(),
		Dir:            c.String("dir"),
		Force:          c.Bool("force"),
		VerifyKeysFile: c.String("verify-keys"),
	}
	progress := newMirrorProgress(c.App.ErrWriter)
	cfg.Progress = progress.fn()
	res, err := mirror.Import(c.Context, cfg)
	progress.finish()
	if err != nil {
		return err
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, res)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "imported %s into %s\n", cfg.File, cfg.Dir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, u := range res.Refs {
		switch {
		case u.Old == "":
			fmt.Fprintf(tw, "  %s\tnew at %.12s\n", termSafe(u.Name), u.New)
		case u.Old == u.New:
			fmt.Fprintf(tw, "  %s\tunchanged at %.12s\n", termSafe(u.Name), u.New)
		case u.Forced:
			fmt.Fprintf(tw, "  %s\t%.12s → %.12s (forced)\n", termSafe(u.Name), u.Old, u.New)
		default:
			fmt.Fprintf(tw, "  %s\t%.12s → %.12s\n", termSafe(u.Name), u.Old, u.New)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "  %d images, %d blobs added (%s)\n", len(res.Images), res.BlobsAdded, humanBytes(res.BytesAdded))
	return nil
}

func runMirrorLs(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	if c.NArg() != 1 {
		return usageErrorf(c, "mirror ls takes one mirror DIR; got %d arguments", c.NArg())
	}
	l, err := mirror.List(c.Args().First())
	if err != nil {
		return err
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, l)
	}
	w := c.App.Writer
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REF\tCOMMIT\tCOMMITS\tSUBJECT")
	for _, r := range l.Refs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", termSafe(r.Name), r.Short, r.Commits, termSafe(r.Subject))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIZE")
	for _, img := range l.Images {
		size := humanBytes(img.Size)
		if img.Missing > 0 {
			size += fmt.Sprintf(" (%d blobs missing)", img.Missing)
		}
		fmt.Fprintf(tw, "%s\t%.19s\t%s\n", termSafe(img.Name), img.Digest, size)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntotal %s (repository %s, images %s) in %s\n",
		humanBytes(l.Size), humanBytes(l.RepoSize), humanBytes(l.ImagesSize), filepath.Clean(l.Dir))
	return nil
}

// newMirrorProgress returns a progress drawer for w when it is a terminal,
// else nil (which draws nothing): one line per stage, rewritten in place.
func newMirrorProgress(w io.Writer) *mirrorProgress {
	if !isTerminal(w) {
		return nil
	}
	return &mirrorProgress{w: w}
}

// mirrorProgress draws mirror progress reports.
type mirrorProgress struct {
	mu    sync.Mutex
	w     io.Writer
	stage string // of the line being drawn; "" when none
}

// fn returns the mirror.ProgressFunc to hand over; nil for a nil drawer.
func (p *mirrorProgress) fn() mirror.ProgressFunc {
	if p == nil {
		return nil
	}
	return p.report
}

// finish ends the line being drawn.
func (p *mirrorProgress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stage != "" {
		fmt.Fprintln(p.w)
		p.stage = ""
	}
}

func (p *mirrorProgress) report(r mirror.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stage != "" && p.stage != r.Stage {
		fmt.Fprintln(p.w)
	}
	p.stage = r.Stage
	line := r.Stage
	if r.Total > 0 {
		line += fmt.Sprintf(" %s / %s (%d%%)", humanBytes(r.Current), humanBytes(r.Total), r.Current*100/r.Total)
	} else if r.Current > 0 {
		line += " " + humanBytes(r.Current)
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
	if r.Stage == "commit" {
		fmt.Fprintln(p.w)
		p.stage = ""
	}
}

// fileSize returns the size of a file, 0 when it cannot be read.
func fileSize(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// mirrorImages is where `mirror create` and `mirror lock` take images from:
// --image-dir when given, else containerd (with --registry-mirror). Call
// the returned func when done.
func mirrorImages(c *cli.Context) (mirror.ImageExporter, func(), error) {
	if dirs := c.StringSlice("image-dir"); len(dirs) > 0 {
		return mirror.DirExporter(dirs), func() {}, nil
	}
	mirrors, err := image.ParseRegistryMirrors(c.StringSlice("registry-mirror"))
	if err != nil {
		return nil, nil, usageErrorf(c, "invalid value for flag --registry-mirror: %v", err)
	}
	client, err := image.Connect(c.Context, c.String("containerd-address"), c.String("containerd-namespace"),
		image.WithRegistryMirrors(mirrors))
	if err != nil {
		return nil, nil, fmt.Errorf("%w (or take images from --image-dir)", err)
	}
	return client, func() { client.Close() }, nil
}
