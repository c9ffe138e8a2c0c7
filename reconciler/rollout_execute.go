package reconciler

import (
	"context"
	"fmt"
	"time"
)

// RolloutHooks let the caller of ExecuteRollout take part in its rounds.
// The zero value adds nothing.
type RolloutHooks struct {
	// Observed, when set, is given each observation before it is planned
	// and returns what to plan with: a probe engine fills in the pods'
	// readiness (probes.Engine.Observe), so a rolling update waits for its
	// new pods to be Ready.
	Observed func(Actual) Actual
	// Wait, when set, lets a rolling update wait for pods that are coming
	// up (PlanResult.Pending) instead of stopping: it is called with the
	// plan's NextCheck (zero when no time is known) and returns once
	// something may have changed (a readiness change, that time), or false
	// to stop waiting (a deadline passed, ctx ended).
	Wait func(ctx context.Context, until time.Time) bool
}

// ExecuteRollout executes res, the plan of desired made with opts, and then,
// as long as the last plan says Continue (a rolling update replaced some
// pods and holds others back), observes the host, plans desired again at
// now() and executes that: it carries rolling updates to their end in one
// call, for a one-shot caller such as `kelpie apply` that wants to honour
// them (opts.RollingUpdates). With hooks.Wait it also waits, as long as
// that allows, for the pods a plan says are coming up (PlanResult.Pending)
// and goes on once they are available. It stops after a round that fails,
// when ctx ends, or when a plan neither says Continue nor waits: the
// rollout is done, or stuck on pods that do not come up (their Waits say
// which).
//
// It returns the last plan and the results of every round in one Report,
// in execution order. OnDone of eopts sees every action of every round. An
// error is returned only when observing or planning fails; execution
// failures are in the Report.
func ExecuteRollout(ctx context.Context, rt Runtime, desired Desired, res PlanResult, opts PlanOptions, eopts ExecOptions, now func() time.Time, hooks RolloutHooks) (PlanResult, Report, error) {
	var total Report
	// Each round that acts but the last replaces at least one pod; a
	// round's restarts alone can make another, so allow twice the pods and
	// a little more. Rounds that only waited do not count.
	for acted := 0; ; {
		if len(res.Actions) > 0 {
			acted++
		}
		rep := Execute(ctx, rt, res.Actions, eopts)
		total.Results = append(total.Results, rep.Results...)
		total.Succeeded += rep.Succeeded
		total.Failed += rep.Failed
		total.Skipped += rep.Skipped
		if !rep.OK() || ctx.Err() != nil || acted > 2*len(desired.Pods)+2 {
			return res, total, nil
		}
		if !res.Continue && (!res.Pending || hooks.Wait == nil || !hooks.Wait(ctx, res.NextCheck)) {
			return res, total, nil
		}
		actual, err := rt.Observe(ctx)
		if err != nil {
			return res, total, fmt.Errorf("observe the host for the next round of a rolling update: %w", err)
		}
		if hooks.Observed != nil {
			actual = hooks.Observed(actual)
		}
		opts.Now = now()
		next, err := Plan(desired, actual, opts)
		if err != nil {
			return res, total, fmt.Errorf("plan the next round of a rolling update: %w", err)
		}
		res = next
	}
}
