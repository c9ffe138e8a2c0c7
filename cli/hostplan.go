package cli

import (
	"context"
	"errors"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/host"
	"github.com/kelpie-dev/kelpie/specs"
)

// manifestFlags choose the manifests plan and apply converge the host to.
func manifestFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "filename", Aliases: []string{"f"}, Usage: "manifest file or directory (repeatable; default .)", EnvVars: envVars("filename")},
		&cli.BoolFlag{Name: "prune", Usage: "delete pods and networks kelpie runs that the manifests no longer name", EnvVars: envVars("prune")},
		&cli.BoolFlag{Name: "allow-empty", Usage: "allow manifests with no pods to remove every pod of this host", EnvVars: envVars("allow-empty")},
	}
}

// hostPlan is everything plan and apply show: the plan and what led to it.
type hostPlan struct {
	Node    string
	Result  reconciler.PlanResult
	Notices []reconciler.Notice
	// Desired and Options are what Result was planned from: apply plans
	// again with them while a rolling update goes on.
	Desired reconciler.Desired
	Options reconciler.PlanOptions
}

// planHost loads the manifests, connects to the runtime and plans this host.
// Manifest problems come back as a specs.ErrorList. The caller closes rt.
func planHost(ctx context.Context, c *cli.Context) (*host.Containerd, hostPlan, error) {
	paths := c.StringSlice("filename")
	if len(paths) == 0 {
		paths = []string{"."}
	}
	sources, err := manifestSources(paths)
	if err != nil {
		return nil, hostPlan{}, err
	}
	state, err := specs.LoadSources(specs.Options{}, sources...)
	if err != nil {
		return nil, hostPlan{}, err
	}
	node, labels, err := hostIdentity(c)
	if err != nil {
		return nil, hostPlan{}, err
	}
	desired, notices := reconciler.Expand(state, reconciler.Host{Name: node, Labels: labels})
	cfg, err := runtimeConfig(c)
	if err != nil {
		return nil, hostPlan{}, err
	}
	rt, err := host.New(ctx, cfg)
	if err != nil {
		return nil, hostPlan{}, err
	}
	actual, err := rt.Observe(ctx)
	if err != nil {
		rt.Close()
		return nil, hostPlan{}, err
	}
	priv := rt.Privileges()
	opts := reconciler.PlanOptions{
		Now:            time.Now(),
		Prune:          c.Bool("prune"),
		AllowEmpty:     c.Bool("allow-empty"),
		RollingUpdates: true,
		Privileges:     &priv, // a refused pod shows in the plan, not half-way through apply
	}
	res, err := reconciler.Plan(desired, actual, opts)
	if err != nil {
		rt.Close()
		if errors.Is(err, reconciler.ErrEmptyDesired) {
			return nil, hostPlan{}, usageErrorf(c, "%v (pass --allow-empty to remove every pod of this host)", err)
		}
		return nil, hostPlan{}, err
	}
	return rt, hostPlan{Node: node, Result: res, Notices: notices, Desired: desired, Options: opts}, nil
}
