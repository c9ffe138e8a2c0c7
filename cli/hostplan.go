package cli

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/agent"
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
		skipKindFlag(),
		nodePortRangeFlag(),
		ageKeyFileFlag(),
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
	// Jobs is the Job controller's step the plan includes (its pods are
	// in Desired); JobsPath is where its records are kept, and JobsChanged
	// whether apply must store Jobs.Records before executing.
	Jobs        reconciler.JobsResult
	JobsPath    string
	JobsChanged bool
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
	lopts, err := loadOptions(c)
	if err != nil {
		return nil, hostPlan{}, err
	}
	state, err := specs.LoadSources(lopts, sources...)
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
	now := time.Now()
	jobsPath := agent.JobsPath(cfg.StateDir)
	records, err := agent.LoadJobRecords(jobsPath)
	if err != nil {
		rt.Close()
		return nil, hostPlan{}, err
	}
	h := reconciler.Host{Name: node, Labels: labels}
	jobs := reconciler.SyncJobs(reconciler.JobsInput{State: state, Records: records, Pods: actual.Pods, Now: now, Host: &h})
	desired, clash := desired.WithJobs(jobs)
	notices = append(append(notices, jobs.Notices...), clash...)
	priv := rt.Privileges()
	opts := reconciler.PlanOptions{
		Now:            now,
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
	return rt, hostPlan{Node: node, Result: res, Notices: notices, Desired: desired, Options: opts,
		Jobs: jobs, JobsPath: jobsPath, JobsChanged: !reflect.DeepEqual(jobsJSON(jobs.Records), jobsJSON(records))}, nil
}

// jobsJSON encodes Job records for comparison ("" when they cannot be).
func jobsJSON(r reconciler.JobRecords) string {
	b, err := json.Marshal(r)
	if err != nil {
		return ""
	}
	return string(b)
}
