package cli

import (
	"errors"
	"fmt"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/specs"
)

// validateCommand is `kelpie validate [PATH...]`.
func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check manifests without deploying anything",
		ArgsUsage: "[PATH...]",
		Description: "Decodes every manifest under each PATH (a directory, read recursively, or a file;\n" +
			"default .) strictly into the Kubernetes types, and checks names, selectors, ports,\n" +
			"quantities, volume mounts and references between objects. All PATHs form one desired\n" +
			"state. A directory with a kustomization.yaml is built with kustomize (no network, no\n" +
			"plugins; bases anywhere in the git work tree) instead of read file by file\n" +
			"(docs/manifests.md, Overlays). Every problem is printed as FILE:LINE:COL: FIELD:\n" +
			"MESSAGE on stderr.\n\n" +
			"Exit status: 0 valid, 1 invalid or unreadable.",
		Flags:  []cli.Flag{skipKindFlag(), nodePortRangeFlag(), outputFlag()},
		Action: runValidate,
	}
}

// validateResult is the -o json output of validate.
type validateResult struct {
	Valid   bool            `json:"valid"`
	Objects int             `json:"objects"`
	Kinds   map[string]int  `json:"kinds,omitempty"`
	Errors  []manifestError `json:"errors"`
}

// runValidate loads the paths and reports the outcome.
func runValidate(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	paths := c.Args().Slice()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	sources, err := manifestSources(paths)
	if err != nil {
		return err
	}
	opts, err := loadOptions(c)
	if err != nil {
		return err
	}
	state, err := specs.LoadSources(opts, sources...)
	var list specs.ErrorList
	if err != nil && !errors.As(err, &list) {
		return err
	}
	out, stderr := c.App.Writer, c.App.ErrWriter
	if format == formatJSON {
		res := validateResult{Valid: err == nil, Objects: state.Len(), Errors: manifestErrors(list)}
		if state != nil {
			res.Kinds = countKinds(state)
		}
		if werr := writeJSON(out, res); werr != nil {
			return werr
		}
		if err != nil {
			return ExitCode(1)
		}
		return nil
	}
	if err != nil {
		printManifestErrors(stderr, list)
		z := newColorizer(c, stderr)
		fmt.Fprintln(stderr, z.red(fmt.Sprintf("%d %s found; nothing is valid until all are fixed.", len(list), plural(len(list), "problem", "problems"))))
		return ExitCode(1)
	}
	z := newColorizer(c, out)
	kinds := countKinds(state)
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	summary := ""
	for i, k := range names {
		if i > 0 {
			summary += ", "
		}
		summary += fmt.Sprintf("%d %s", kinds[k], k)
	}
	fmt.Fprintf(out, "%s %d %s valid", z.green("✓"), state.Len(), plural(state.Len(), "object", "objects"))
	if summary != "" {
		fmt.Fprintf(out, " (%s)", summary)
	}
	fmt.Fprintln(out)
	for _, sk := range state.Skipped {
		fmt.Fprintf(out, "%s %s\n", z.yellow("skipped:"), termSafe(sk.String()))
	}
	return nil
}

// countKinds counts objects per kind.
func countKinds(state *specs.DesiredState) map[string]int {
	kinds := map[string]int{}
	for _, o := range state.Objects {
		kinds[o.Kind]++
	}
	return kinds
}

// plural picks the singular or plural word for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
