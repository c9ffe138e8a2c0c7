package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// applyCommand is `kelpie apply [-f PATH]... [--prune]`.
func applyCommand() *cli.Command {
	return &cli.Command{
		Name:  "apply",
		Usage: "converge this host to the manifests once, then exit",
		Description: "Plans exactly as `kelpie plan` does, then executes that plan: networks and\n" +
			"volumes first, then pods (up to --parallel at once), printing each action as it\n" +
			"completes and a summary. Running it again after an interruption converges.\n\n" +
			"Jobs and CronJobs: apply runs the Job controller once, with the records the\n" +
			"agent keeps (STATEDIR/agent/jobs.json): it creates the pods a Job or a due\n" +
			"CronJob tick needs and exits; the next apply, or the agent, sees them finish.\n\n" +
			"Exit status: 0 converged, 1 error.",
		Flags: concatFlags(manifestFlags(), hostFlags(), runtimeFlags(), []cli.Flag{
			&cli.IntFlag{Name: "parallel", Usage: "actions run at once within a stage", Value: reconciler.DefaultParallelism, EnvVars: envVars("parallel")},
			outputFlag(),
		}),
		Action: runApply,
	}
}

// applyJSON is the -o json output of apply.
type applyJSON struct {
	Node      string            `json:"node"`
	Results   []applyResultJSON `json:"results"`
	Succeeded int               `json:"succeeded"`
	Failed    int               `json:"failed"`
	Skipped   int               `json:"skipped"`
	Waiting   []subjectJSON     `json:"waiting"`
	Notices   []string          `json:"notices"`
}

// applyResultJSON is one executed action in JSON output.
type applyResultJSON struct {
	actionJSON
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

// runApply plans, executes and reports.
func runApply(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	if c.Int("parallel") < 1 {
		return usageErrorf(c, "invalid value %d for flag --parallel: want 1 or more", c.Int("parallel"))
	}
	rt, hp, err := planHost(c.Context, c)
	if err != nil {
		return manifestOrError(c, err)
	}
	defer rt.Close()
	if hp.JobsChanged {
		// The records first: a Job pod this apply creates is never one the
		// records do not know of (the agent and the next apply read them).
		if err := agent.SaveJobRecords(hp.JobsPath, hp.Jobs.Records); err != nil {
			return err
		}
	}
	w := c.App.Writer
	pr := applyPrinter{w: w, z: newColorizer(c, w)}
	if format == formatText {
		pr.begin(hp)
	}
	start := time.Now()
	// A rolling update is carried to its end: after each batch the host is
	// observed and planned again until nothing is held back, the new pods
	// Ready first when the runtime makes probes.
	hooks, stopProbes := rolloutProbes(c.Context, rt, hp.Desired)
	defer stopProbes()
	last, report, err := reconciler.ExecuteRollout(c.Context, rt, hp.Desired, hp.Result, hp.Options, reconciler.ExecOptions{
		Parallelism: c.Int("parallel"),
		OnDone: func(a reconciler.Action, err error, took time.Duration) {
			if format == formatText {
				pr.done(a, err, took)
			}
		},
	}, time.Now, hooks)
	stopProbes()
	if err != nil {
		return err
	}
	hp.Result.Waiting = last.Waiting // what a stuck rollout waits for
	if format == formatJSON {
		out := applyJSON{Node: hp.Node, Results: []applyResultJSON{}, Succeeded: report.Succeeded, Failed: report.Failed, Skipped: report.Skipped,
			Waiting: planToJSON(hp).Waiting, Notices: planToJSON(hp).Notices}
		for _, r := range report.Results {
			a := r.Action
			res := applyResultJSON{actionJSON: actionJSON{Action: string(a.Kind), Kind: string(a.Subject.Type), Namespace: a.Subject.Namespace, Name: a.Subject.Name, Container: a.Subject.Container, Reason: a.Reason}, Seconds: r.Duration.Seconds()}
			if r.Err != nil {
				res.Error = r.Err.Error()
			}
			out.Results = append(out.Results, res)
		}
		if err := writeJSON(w, out); err != nil {
			return err
		}
	} else {
		pr.end(hp, report, time.Since(start))
	}
	if !report.OK() {
		return fmt.Errorf("apply did not converge: %w", report.Err())
	}
	if refused := refusedPods(hp); len(refused) > 0 {
		return fmt.Errorf("apply did not converge: %w", errors.Join(refused...))
	}
	return nil
}

// refusedPods returns the refusal of each desired pod that asks for more
// than the host grants: the plan gave them a wait, not an action.
func refusedPods(hp hostPlan) []error {
	if hp.Options.Privileges == nil {
		return nil
	}
	var out []error
	for i := range hp.Desired.Pods {
		if err := hp.Options.Privileges.CheckPrivileges(&hp.Desired.Pods[i]); err != nil {
			out = append(out, err)
		}
	}
	return out
}
