package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/kelpie-dev/kelpie/probes"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// Readiness waits of a one-shot apply.
const (
	// applyReadyTimeout bounds how long apply waits, in all, for the new
	// pods of rolling updates to become Ready: Kubernetes' default
	// progressDeadlineSeconds.
	applyReadyTimeout = 10 * time.Minute
	// applyReadyPoll is how often apply looks at the host while it waits
	// (a readiness change wakes it at once).
	applyReadyPoll = 2 * time.Second
)

// rolloutProbes runs the containers' probes for the length of an apply,
// when rt makes probes (probes.Prober): a rolling update then replaces its
// next pods only once the new ones are Ready (for minReadySeconds), as the
// agent's does, waiting at most applyReadyTimeout in all. It returns the
// hooks for reconciler.ExecuteRollout and a function that stops the
// probes; without a Prober the hooks are empty (a pod is Ready when its
// containers run).
func rolloutProbes(ctx context.Context, rt any, desired reconciler.Desired) (reconciler.RolloutHooks, func()) {
	pr, ok := rt.(probes.Prober)
	if !ok {
		return reconciler.RolloutHooks{}, func() {}
	}
	e, err := probes.New(probes.Config{Prober: pr, Log: slog.Default()})
	if err != nil {
		return reconciler.RolloutHooks{}, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	deadline := time.Now().Add(applyReadyTimeout)
	hooks := reconciler.RolloutHooks{
		Observed: func(a reconciler.Actual) reconciler.Actual {
			return e.Observe(reconciler.BindSlots(desired, a).Pods, a) // a new pod may be named after its slot's old one (maxSurge)
		},
		Wait: func(ctx context.Context, until time.Time) bool {
			if !time.Now().Before(deadline) {
				return false
			}
			wake := time.Now().Add(applyReadyPoll)
			if !until.IsZero() && until.Before(wake) {
				wake = until
			}
			wctx, stop := context.WithDeadline(ctx, deadline)
			defer stop()
			return e.Wait(wctx, wake)
		},
	}
	return hooks, func() { cancel(); <-done }
}
