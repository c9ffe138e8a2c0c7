package reconciler

import (
	"context"
	"fmt"
	"time"
)

// ExecuteRollout executes res, the plan of desired made with opts, and then,
// as long as the last plan says Continue (a rolling update replaced some
// pods and holds others back), observes the host, plans desired again at
// now() and executes that: it carries rolling updates to their end in one
// call, for a one-shot caller such as `kelpie apply` that wants to honour
// them (opts.RollingUpdates). It stops after a round that fails, when ctx
// ends, or when a plan no longer says Continue: the rollout is done, or
// stuck on pods that do not come up (their Waits say which).
//
// It returns the last plan and the results of every round in one Report,
// in execution order. OnDone of eopts sees every action of every round. An
// error is returned only when observing or planning fails; execution
// failures are in the Report.
func ExecuteRollout(ctx context.Context, rt Runtime, desired Desired, res PlanResult, opts PlanOptions, eopts ExecOptions, now func() time.Time) (PlanResult, Report, error) {
	var total Report
	// Each round but the last replaces at least one pod; a round's restarts
	// alone can make another, so allow twice the pods and a little more.
	for round := 0; ; round++ {
		rep := Execute(ctx, rt, res.Actions, eopts)
		total.Results = append(total.Results, rep.Results...)
		total.Succeeded += rep.Succeeded
		total.Failed += rep.Failed
		total.Skipped += rep.Skipped
		if !rep.OK() || !res.Continue || ctx.Err() != nil || round > 2*len(desired.Pods)+2 {
			return res, total, nil
		}
		actual, err := rt.Observe(ctx)
		if err != nil {
			return res, total, fmt.Errorf("observe the host for the next round of a rolling update: %w", err)
		}
		opts.Now = now()
		next, err := Plan(desired, actual, opts)
		if err != nil {
			return res, total, fmt.Errorf("plan the next round of a rolling update: %w", err)
		}
		res = next
	}
}
