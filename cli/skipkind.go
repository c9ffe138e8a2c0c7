package cli

import (
	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/specs"
)

// skipKindFlag leaves out objects of a kind: for a repository shared with a
// Kubernetes cluster, whose RBAC, Ingress and the like mean nothing here.
func skipKindFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "skip-kind", Usage: "leave out objects of this kind (repeatable; also skipKinds in the manifests' " + specs.ConfigFile + "): listed as skipped, never run", EnvVars: envVars("skip-kind")}
}

// loadOptions are the manifest loading options the flags ask for.
func loadOptions(c *cli.Context) specs.Options {
	return specs.Options{SkipKinds: c.StringSlice("skip-kind")}
}
