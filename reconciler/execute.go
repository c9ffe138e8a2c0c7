package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultParallelism is how many actions of a stage run at once by
// default: on 2 cores more than 4 concurrent container starts add latency,
// not throughput (PITFALLS.md).
const DefaultParallelism = 4

// ErrSkipped marks the result of an action that did not run: a network or
// claim it needs failed, an earlier failure made it unsafe, or the context
// ended first.
var ErrSkipped = errors.New("not run")

// ExecOptions tune Execute.
type ExecOptions struct {
	// Parallelism bounds the actions of one stage that run at once; 0 or
	// less means DefaultParallelism.
	Parallelism int
	// OnDone, when set, is called once per action as it completes or is
	// skipped, with its error (nil on success) and how long it took. Calls
	// come one at a time, never concurrently; OnDone should not block long.
	OnDone func(a Action, err error, took time.Duration)
}

// Report is the outcome of Execute.
type Report struct {
	// Results holds one result per action, in the order the actions were given.
	Results []ActionResult
	// Succeeded, Failed and Skipped count the results.
	Succeeded, Failed, Skipped int
}

// ActionResult is the outcome of one action.
type ActionResult struct {
	Action Action
	// Err is nil on success; it wraps ErrSkipped when the action did not run.
	Err error
	// Duration is how long the action ran (0 when skipped).
	Duration time.Duration
}

// Skipped reports whether the action did not run.
func (r ActionResult) Skipped() bool { return errors.Is(r.Err, ErrSkipped) }

// OK reports whether every action succeeded.
func (r Report) OK() bool { return r.Failed == 0 && r.Skipped == 0 }

// Err summarises what went wrong, or returns nil when every action
// succeeded. It names the first few failures (then the skips) and wraps
// their errors, so errors.Is finds the causes.
func (r Report) Err() error {
	if r.OK() {
		return nil
	}
	const shown = 3
	e := &executeError{failed: r.Failed, skipped: r.Skipped, total: len(r.Results)}
	for pass := 0; pass < 2 && len(e.first) < shown; pass++ {
		for _, res := range r.Results {
			if res.Err == nil || res.Skipped() != (pass == 1) {
				continue
			}
			e.first = append(e.first, fmt.Errorf("%s %s: %w", res.Action.Kind, res.Action.Subject, res.Err))
			if len(e.first) == shown {
				break
			}
		}
	}
	return e
}

// executeError is Report.Err's error.
type executeError struct {
	failed, skipped, total int
	first                  []error
}

// Error lists the counts and the first failures.
func (e *executeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d actions failed", e.failed, e.total)
	if e.skipped > 0 {
		fmt.Fprintf(&b, ", %d not run", e.skipped)
	}
	for _, err := range e.first {
		b.WriteString("; ")
		b.WriteString(err.Error())
	}
	if more := e.failed + e.skipped - len(e.first); more > 0 {
		fmt.Fprintf(&b, "; and %d more", more)
	}
	return b.String()
}

// Unwrap returns the first failures, for errors.Is and errors.As.
func (e *executeError) Unwrap() []error { return e.first }

// Execute runs the actions of a plan through rt, stage by stage in
// ascending Stage order: every action of a stage completes before the next
// stage starts, and within a stage up to opts.Parallelism actions run at
// once. A failed action does not stop the others, except that pod actions
// needing a network or claim whose setup failed are skipped, and networks
// are not deleted once anything failed (a pod may still use them). Once
// ctx is done, actions not yet started are skipped. Execute returns when
// every started action has returned.
func Execute(ctx context.Context, rt Runtime, actions []Action, opts ExecOptions) Report {
	par := opts.Parallelism
	if par <= 0 {
		par = DefaultParallelism
	}
	x := &executor{
		rt: rt, onDone: opts.OnDone,
		results:        make([]ActionResult, len(actions)),
		failedNetworks: map[string]bool{},
		failedClaims:   map[string]bool{},
	}
	order := make([]int, len(actions))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return actions[order[i]].Stage < actions[order[j]].Stage })
	for start := 0; start < len(order); {
		end := start
		for end < len(order) && actions[order[end]].Stage == actions[order[start]].Stage {
			end++
		}
		x.stage(ctx, actions, order[start:end], par)
		start = end
	}
	rep := Report{Results: x.results}
	for _, r := range rep.Results {
		switch {
		case r.Err == nil:
			rep.Succeeded++
		case r.Skipped():
			rep.Skipped++
		default:
			rep.Failed++
		}
	}
	return rep
}

// executor holds the state of one Execute.
type executor struct {
	rt     Runtime
	onDone func(Action, error, time.Duration)

	mu      sync.Mutex // guards results and serialises onDone
	results []ActionResult

	// What failed in earlier stages (read and written between stages only).
	failedNetworks map[string]bool
	failedClaims   map[string]bool
	anyFailed      bool
}

// stage runs the actions idx of one stage.
func (x *executor) stage(ctx context.Context, actions []Action, idx []int, par int) {
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for _, i := range idx {
		a := actions[i]
		if why := x.blocked(a); why != "" {
			x.finish(i, a, fmt.Errorf("%w: %s", ErrSkipped, why), 0)
			continue
		}
		acquired := false
		select {
		case sem <- struct{}{}:
			acquired = true
		case <-ctx.Done():
		}
		if err := ctx.Err(); err != nil {
			if acquired {
				<-sem // this slot only: the others belong to running actions
			}
			x.finish(i, a, fmt.Errorf("%w: %w", ErrSkipped, err), 0)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			start := time.Now()
			err := run(ctx, x.rt, a)
			x.finish(i, a, err, time.Since(start))
		}()
	}
	wg.Wait()
	for _, i := range idx {
		if x.results[i].Err == nil {
			continue
		}
		x.anyFailed = true
		s := actions[i].Subject
		switch s.Type {
		case SubjectNetwork:
			x.failedNetworks[s.Name] = true
		case SubjectClaim:
			x.failedClaims[JoinName(s.Namespace, s.Name)] = true
		}
	}
}

// finish records the result of action i and reports it.
func (x *executor) finish(i int, a Action, err error, took time.Duration) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.results[i] = ActionResult{Action: a, Err: err, Duration: took}
	if x.onDone != nil {
		x.onDone(a, err, took)
	}
}

// blocked says why an action must not run after the failures of earlier
// stages, or returns "".
func (x *executor) blocked(a Action) string {
	switch {
	case a.Subject.Type == SubjectPod && a.Kind != Delete && a.Pod != nil:
		for _, n := range a.Pod.Networks {
			if x.failedNetworks[n] {
				return fmt.Sprintf("network %s was not set up", n)
			}
		}
		for _, v := range a.Pod.Volumes {
			if c, ok := v.Source.(Claim); ok && x.failedClaims[JoinName(c.Namespace, c.Name)] {
				return fmt.Sprintf("claim %s was not set up", JoinName(c.Namespace, c.Name))
			}
		}
	case a.Subject.Type == SubjectNetwork && a.Kind == Delete && x.anyFailed:
		return "an earlier action failed, so a pod may still use the network"
	}
	return ""
}

// run performs one action through rt.
func run(ctx context.Context, rt Runtime, a Action) error {
	s := a.Subject
	switch {
	case s.Type == SubjectNetwork && (a.Kind == Create || a.Kind == Update) && a.Network != nil:
		return rt.EnsureNetwork(ctx, *a.Network)
	case s.Type == SubjectNetwork && a.Kind == Delete:
		return rt.RemoveNetwork(ctx, s.Name)
	case s.Type == SubjectClaim && a.Kind == Create && a.Claim != nil:
		return rt.EnsureClaim(ctx, *a.Claim)
	case s.Type == SubjectPod && (a.Kind == Create || a.Kind == Update) && a.Pod != nil:
		return rt.CreatePod(ctx, *a.Pod)
	case s.Type == SubjectPod && a.Kind == Replace && a.Pod != nil:
		if err := rt.RemovePod(ctx, s.Namespace, s.Name, a.Grace); err != nil {
			return fmt.Errorf("remove the old pod: %w", err)
		}
		if err := rt.CreatePod(ctx, *a.Pod); err != nil {
			return fmt.Errorf("create the new pod: %w", err)
		}
		return nil
	case s.Type == SubjectPod && a.Kind == Delete:
		return rt.RemovePod(ctx, s.Namespace, s.Name, a.Grace)
	case s.Type == SubjectContainer && a.Kind == Update && a.Pod != nil:
		return rt.RestartContainer(ctx, *a.Pod, s.Container)
	}
	return fmt.Errorf("unsupported action %q (or its payload is missing)", a.String())
}
