package probes

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/kelpie-dev/kelpie/internal/clock"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/workload"
)

// DefaultParallelism bounds the probes in flight by default: a probe is
// mostly waiting on a socket or an exec, a few that time out must not hold
// back the others, and the network probes of a hundred pods, all due on
// the same tick, start together.
const DefaultParallelism = 128

// DefaultExecParallelism bounds the exec probes in flight by default, among
// those of Parallelism: an exec is a runc process in the container, heavy
// for a small host, and more at once add latency, not throughput (on 2
// cores 8 concurrent execs took 2-3 s each, and their timeouts and kills
// fed on each other). An exec probe that waits for a slot is late, not
// failed: its timeout starts when it starts.
const DefaultExecParallelism = 4

// DefaultTick is the tick the agent starts probes on (Config.Tick): the
// probes due within a second start together, on the second, and share the
// runtime's wake-ups. Periods and delays are whole seconds, so a probe
// keeps its period; it is late by less than a second only when its
// container started between two ticks (the kubelet's probes are late by
// up to a period when it restarts). With a hundred pods probed every
// second, a 100 ms tick (ten probes ten times a second) cost 5.2% of a
// core, this one 4.5% (bench/probes.sh).
const DefaultTick = time.Second

// probeSlack is how much longer than its timeout a probe's context lives:
// the Prober times a probe out itself (and says so in its output); the
// context only bounds a Prober that does not.
const probeSlack = time.Second

// killTimeout bounds one KillContainer beyond the grace period it is given.
const killTimeout = 30 * time.Second

// Config configures an Engine. Prober is required.
type Config struct {
	// Prober makes the probes and kills the containers.
	Prober Prober
	// Clock times the probes; nil is the wall clock.
	Clock clock.Clock
	// Log receives one line per transition (Ready, NotReady, Started,
	// Kill) and the kills' failures; nil discards them.
	Log *slog.Logger
	// Parallelism bounds the probes in flight; 0 or less means
	// DefaultParallelism.
	Parallelism int
	// ExecParallelism bounds the exec probes in flight, among those;
	// 0 or less means DefaultExecParallelism.
	ExecParallelism int
	// Tick, when positive, starts the probes on the ticks of the clock
	// (the multiples of Tick since the zero time.Time): a probe due
	// between two ticks starts at the next one, and is made as of then.
	// A probe's next one is due a period later, on a tick again when the
	// period is a multiple of Tick, so the probes of many pods start in a
	// few batches. 0 or less starts each probe when it is due.
	Tick time.Duration
	// OnChange, when set, is called after a container's readiness changed
	// or after a container was killed by its probe, with a short reason:
	// the owner should observe the host and plan again (the planner
	// restarts a killed container, and a rollout moves on once its pods
	// are Ready). It is called from the engine's goroutines and must not
	// block.
	OnChange func(reason string)
	// OnProbe, when set, is called after each probe whose result counts,
	// with its kind and whether it passed (a metric counts them). It is
	// called from the engine's goroutines and must be cheap.
	OnProbe func(kind workload.ProbeKind, ok bool)
}

// Engine runs the probes of the containers of a host's pods. Create it
// with New, tell it what the host runs with Observe, and run it with Run.
// Observe, Wait and Run may be called from any goroutine.
type Engine struct {
	prober   Prober
	clock    clock.Clock
	log      *slog.Logger
	par      int
	execPar  int
	tick     time.Duration
	onChange func(string)
	onProbe  func(workload.ProbeKind, bool)

	wake chan struct{} // buffered 1: the loop has something new to look at

	mu        sync.Mutex
	pods      map[string]*pod // by "namespace/name"
	keys      []string        // the keys of pods, sorted: the order probes start in
	keysStale bool            // pods were added or removed since keys was sorted
	inFlight  int             // probes running or handed to a worker
	workers   int             // worker goroutines started (at least inFlight)
	jobs      chan job        // the probes handed to workers; room for Parallelism
	execs     int             // exec probes among them
	// starved reports that a due probe waits for a free slot
	// (Parallelism); sleepUntil is when the loop wakes next by itself,
	// zero when it waits for a nudge alone. A probe that ends wakes the
	// loop only when it must (a slot is awaited, or its next probe is due
	// before the loop wakes): with many pods most end without a wake.
	starved    bool
	sleepUntil time.Time
	changed    chan struct{}  // closed and replaced at each change (Wait)
	gen        uint64         // changes so far
	seenGen    uint64         // gen at the last Observe
	wg         sync.WaitGroup // workers and kill goroutines
}

// pod is a desired pod the host runs, with the spec it was created from.
type pod struct {
	actual reconciler.ActualPod // as last observed: what Probe is given
	grace  time.Duration        // the pod's termination grace period
	// containers are the app containers of the desired pod, in order.
	containers []*container
}

// container is one app container of a pod.
type container struct {
	name   string
	probes reconciler.Probes
	kinds  []workload.ProbeKind // the kinds of its probes, in the order they start
	// cur is the run being tracked; nil while the container does not run.
	cur *run
}

// run is one run of a container, and its probes' state.
type run struct {
	key     runKey
	tracker *workload.Tracker
	busy    [len(kinds)]bool // probes in flight, by kindIndex
}

// runKey identifies a run of a container: a restart changes both.
type runKey struct {
	startedAt time.Time
	restarts  int
}

// New returns an engine; it probes nothing until Run runs and Observe
// told it what the host runs.
func New(cfg Config) (*Engine, error) {
	if cfg.Prober == nil {
		return nil, errors.New("probes: Config.Prober is required")
	}
	e := &Engine{
		prober: cfg.Prober, clock: cfg.Clock, log: cfg.Log, par: cfg.Parallelism, execPar: cfg.ExecParallelism, tick: cfg.Tick, onChange: cfg.OnChange, onProbe: cfg.OnProbe,
		wake: make(chan struct{}, 1), pods: map[string]*pod{}, changed: make(chan struct{}),
	}
	if e.clock == nil {
		e.clock = clock.System{}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.par <= 0 {
		e.par = DefaultParallelism
	}
	if e.execPar <= 0 {
		e.execPar = DefaultExecParallelism
	}
	e.jobs = make(chan job, e.par)
	return e, nil
}

// Run starts the probes when they are due until ctx is done, then waits
// for the probes and kills in flight to return.
func (e *Engine) Run(ctx context.Context) {
	defer e.stopped()
	for {
		next, ok := e.launch(ctx)
		var (
			timer clock.Timer
			fired <-chan time.Time
		)
		if ok {
			timer = e.clock.NewTimer(next.Sub(e.clock.Now()))
			fired = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-e.wake:
		case <-fired:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// onTick returns the first tick at or after t: when a probe due at t
// starts (t itself without a tick).
func (e *Engine) onTick(t time.Time) time.Time {
	if e.tick <= 0 {
		return t
	}
	if on := t.Truncate(e.tick); on.Before(t) {
		return on.Add(e.tick)
	}
	return t
}

// stopped waits for the workers and kills in flight to return, and drops
// the probes no worker took: the engine is as new for another Run.
func (e *Engine) stopped() {
	e.wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(e.jobs) > 0 {
		j := <-e.jobs
		e.inFlight--
		if len(j.p.Exec) > 0 {
			e.execs--
		}
		j.r.busy[kindIndex(j.kind)] = false
	}
	e.workers = 0
}

// nudge wakes the loop.
func (e *Engine) nudge() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// launch starts every probe that is due, as far as Parallelism allows, and
// returns when the next one not yet due is; false when none is.
func (e *Engine) launch(ctx context.Context) (next time.Time, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer func() { e.sleepUntil = next }() // zero when !ok; set before a probe can end
	if e.keysStale {
		e.keys = slices.Sorted(maps.Keys(e.pods))
		e.keysStale = false
	}
	now := e.clock.Now()
	if e.tick > 0 {
		now = now.Truncate(e.tick) // the tick now is on; the loop sleeps until a tick
	}
	e.starved = false
	for _, key := range e.keys {
		p := e.pods[key]
		for _, c := range p.containers {
			r := c.cur
			if r == nil {
				continue
			}
			for _, kind := range c.kinds {
				i := kindIndex(kind)
				if r.busy[i] {
					continue
				}
				due, isDue := r.tracker.Due(kind)
				if !isDue {
					continue
				}
				if due.After(now) {
					due = e.onTick(due)
					if !ok || due.Before(next) {
						next, ok = due, true
					}
					continue
				}
				isExec := len(probeOf(c.probes, kind).Exec) > 0
				if e.inFlight >= e.par || (isExec && e.execs >= e.execPar) {
					e.starved = true // a probe that ends wakes the loop
					continue
				}
				e.inFlight++
				if isExec {
					e.execs++
				}
				r.busy[i] = true
				e.start(ctx, key, p.actual, c, r, kind, now)
			}
		}
	}
	return next, ok
}

// job is a probe to make: probe kind p of run r of container c of pod key,
// observed as actual, due at.
type job struct {
	key    string
	actual reconciler.ActualPod
	c      *container
	r      *run
	kind   workload.ProbeKind
	p      reconciler.Probe
	at     time.Time
}

// start hands probe kind of run r of container c of pod key (observed as
// actual) to a worker, and starts one when there are fewer than probes in
// flight (at most Parallelism). A worker lives as long as Run, and its
// stack stays grown: a goroutine a probe, with a hundred probes a second,
// spent more on growing its stack than on its work. (Apart from launch's
// loop, whose variables a closure there would move to the heap at every
// pass.) e.mu must be held.
func (e *Engine) start(ctx context.Context, key string, actual reconciler.ActualPod, c *container, r *run, kind workload.ProbeKind, now time.Time) {
	e.jobs <- job{key: key, actual: actual, c: c, r: r, kind: kind, p: *probeOf(c.probes, kind), at: now} // never blocks: room for Parallelism
	if e.workers < e.inFlight {
		e.workers++
		e.wg.Go(func() { e.work(ctx) })
	}
}

// work makes the probes it is handed until ctx is done.
func (e *Engine) work(ctx context.Context) {
	for {
		select {
		case j := <-e.jobs:
			e.probe(ctx, j.key, j.actual, j.c, j.r, j.kind, j.p, j.at)
		case <-ctx.Done():
			return
		}
	}
}

// kinds are the probe kinds in the order they are started.
var kinds = [...]workload.ProbeKind{workload.Startup, workload.Liveness, workload.Readiness}

// kindIndex is the index of kind in kinds.
func kindIndex(kind workload.ProbeKind) int {
	switch kind {
	case workload.Startup:
		return 0
	case workload.Liveness:
		return 1
	}
	return 2
}

// probeKinds returns the kinds of the probes of p, in the order of kinds.
func probeKinds(p reconciler.Probes) []workload.ProbeKind {
	var out []workload.ProbeKind
	for _, k := range kinds {
		if probeOf(p, k) != nil {
			out = append(out, k)
		}
	}
	return out
}

// probe makes one probe of run r of container c and feeds its result.
func (e *Engine) probe(ctx context.Context, key string, actual reconciler.ActualPod, c *container, r *run, kind workload.ProbeKind, p reconciler.Probe, at time.Time) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout+probeSlack)
	ok, out := e.prober.Probe(pctx, actual, c.name, p)
	cancel()
	e.mu.Lock()
	e.inFlight--
	if len(p.Exec) > 0 {
		e.execs--
	}
	r.busy[kindIndex(kind)] = false
	if ctx.Err() != nil || c.cur != r || e.pods[key] == nil {
		e.wakeLocked(time.Time{}, false)
		e.mu.Unlock() // stopped, or the run or pod is gone: the result is stale
		return
	}
	pd := e.pods[key]
	trs := r.tracker.Observe(workload.Result{Kind: kind, OK: ok, At: at, Output: out})
	kill, killed := r.tracker.Kill()
	ns, name, grace := pd.actual.Namespace, pd.actual.Name, pd.grace
	if len(trs) > 0 {
		e.changedLocked()
	}
	_, due, isDue := r.tracker.Next() // a passed startup probe makes the others due
	e.wakeLocked(due, isDue)
	e.mu.Unlock()
	if e.onProbe != nil {
		e.onProbe(kind, ok)
	}

	var reason string
	for _, t := range trs {
		level := slog.LevelInfo
		if t.Event == workload.EventNotReady || t.Event == workload.EventKill {
			level = slog.LevelWarn
		}
		e.log.Log(ctx, level, t.String(), "pod", key, "container", t.Container, "event", string(t.Event), "probe", string(t.Kind))
		if reason == "" && (t.Event == workload.EventReady || t.Event == workload.EventNotReady) {
			reason = "pod " + key + " container " + t.Container + " " + string(t.Event)
		}
	}
	for _, t := range trs {
		if t.Event == workload.EventKill && killed {
			e.wg.Go(func() { e.kill(ctx, key, ns, name, c.name, kill, grace) })
			return // the kill asks for the plan, once the container stopped
		}
	}
	if reason != "" && e.onChange != nil {
		e.onChange(reason)
	}
}

// kill stops a container whose probe asked for it and asks the owner to
// plan again, so that the restart policy restarts it.
func (e *Engine) kill(ctx context.Context, key, ns, name, container string, k workload.Kill, podGrace time.Duration) {
	grace := k.GraceOr(podGrace)
	kctx, cancel := context.WithTimeout(ctx, grace+killTimeout)
	defer cancel()
	if err := e.prober.KillContainer(kctx, ns, name, container, grace); err != nil {
		if ctx.Err() == nil {
			e.log.Warn("kill a container whose probe failed", "pod", key, "container", container, "err", err)
		}
	}
	e.mu.Lock()
	e.changedLocked()
	e.mu.Unlock()
	if e.onChange != nil && ctx.Err() == nil {
		e.onChange("pod " + key + " container " + container + " killed: " + k.Reason)
	}
}

// wakeLocked wakes the loop, after a probe of a run ended whose next probe
// is due at due (isDue false when there is none), when the loop must look again:
// a probe waits for the slot it freed, the next probe is due before the
// loop wakes by itself, or the loop waits for nothing but a nudge. e.mu
// must be held.
func (e *Engine) wakeLocked(due time.Time, isDue bool) {
	if e.starved || (isDue && (e.sleepUntil.IsZero() || e.onTick(due).Before(e.sleepUntil))) {
		e.nudge()
	}
}

// changedLocked records a change for Wait. e.mu must be held.
func (e *Engine) changedLocked() {
	e.gen++
	close(e.changed)
	e.changed = make(chan struct{})
}

// Wait returns once a container's readiness changed or a probe killed a
// container since the last Observe, or at until (when not zero), or when
// ctx is done; it reports false only in that last case. A one-shot caller
// waiting for a rollout's pods to become Ready observes and plans again
// after it returns.
func (e *Engine) Wait(ctx context.Context, until time.Time) bool {
	e.mu.Lock()
	ch := e.changed
	changed := e.gen != e.seenGen
	e.mu.Unlock()
	if changed {
		return true
	}
	var fired <-chan time.Time
	if !until.IsZero() {
		t := e.clock.NewTimer(until.Sub(e.clock.Now()))
		defer t.Stop()
		fired = t.C()
	}
	select {
	case <-ch:
		return true
	case <-fired:
		return true
	case <-ctx.Done():
		return false
	}
}
