package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/specs"
)

// skipKindFlag leaves out objects of a kind: for a repository shared with a
// Kubernetes cluster, whose RBAC, Ingress and the like mean nothing here.
func skipKindFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "skip-kind", Usage: "leave out objects of this kind (repeatable; also skipKinds in the manifests' " + specs.ConfigFile + "): listed as skipped, never run", EnvVars: envVars("skip-kind")}
}

// nodePortRangeFlag is the range a manifest's nodePort is checked
// against: the agents' --service-node-port-range (same name, same
// environment variable), so a check on a laptop refuses what the agents
// would refuse.
func nodePortRangeFlag() cli.Flag {
	return &cli.StringFlag{Name: "service-node-port-range", Usage: "check every nodePort against this range, MIN-MAX: the agents' --service-node-port-range", Value: netplan.DefaultNodePorts.String(), EnvVars: envVars("service-node-port-range")}
}

// loadOptions are the manifest loading options the flags ask for. A
// command without --service-node-port-range checks node ports against the
// default range; one with --age-key-file decrypts SOPS-encrypted
// manifests with its keys.
func loadOptions(c *cli.Context) (specs.Options, error) {
	opts := specs.Options{SkipKinds: c.StringSlice("skip-kind")}
	ids, err := ageIdentities(c)
	if err != nil {
		return opts, err
	}
	opts.AgeIdentities = ids
	if s := c.String("service-node-port-range"); s != "" {
		r, err := netplan.ParsePortRange(s)
		if err != nil {
			return opts, usageErrorf(c, "flag --service-node-port-range: %s", fmt.Sprint(err))
		}
		opts.NodePortRange = [2]int32{r.Min, r.Max}
	}
	return opts, nil
}
