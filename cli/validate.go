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
			"MESSAGE on stderr. SOPS-encrypted files are decrypted with --age-key-file and\n" +
			"checked; without it they are checked for form only, and the output says they were\n" +
			"not decrypted.\n\n" +
			"Exit status: 0 valid, 1 invalid or unreadable.",
		Flags:  []cli.Flag{skipKindFlag(), nodePortRangeFlag(), ageKeyFileFlag(), outputFlag()},
		Action: runValidate,
	}
}

// validateResult is the -o json output of validate.
type validateResult struct {
	Valid   bool           `json:"valid"`
	Objects int            `json:"objects"`
	Kinds   map[string]int `json:"kinds,omitempty"`
	// Decrypted and Undecrypted count the objects that held SOPS-encrypted
	// values: decrypted with --age-key-file, or (without it) checked for
	// form only.
	Decrypted   int             `json:"decrypted,omitempty"`
	Undecrypted int             `json:"undecrypted,omitempty"`
	Errors      []manifestError `json:"errors"`
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
	opts.AllowUndecrypted = true // without keys, encrypted files are checked for form
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
			res.Decrypted, res.Undecrypted = countEncrypted(state)
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
	if dec, undec := countEncrypted(state); dec > 0 {
		fmt.Fprintf(out, "%s %d %s SOPS-encrypted values, decrypted and checked\n", z.green("✓"), dec, plural(dec, "object holds", "objects hold"))
	} else if undec > 0 {
		fmt.Fprintf(out, "%s %d %s SOPS-encrypted values, not decrypted (no --age-key-file): checked for form only\n", z.yellow("!"), undec, plural(undec, "object holds", "objects hold"))
	}
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

// countEncrypted counts the objects that held SOPS-encrypted values,
// decrypted and not.
func countEncrypted(state *specs.DesiredState) (decrypted, undecrypted int) {
	for _, o := range state.Objects {
		switch {
		case o.Undecrypted:
			undecrypted++
		case o.Encrypted:
			decrypted++
		}
	}
	return decrypted, undecrypted
}

// plural picks the singular or plural word for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
