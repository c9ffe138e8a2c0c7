package probes

import (
	"slices"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/workload"
)

// Observe tells the engine what the host should run (desired, the pods of
// the plan) and what it runs (actual, as the runtime observed it), and
// returns actual with every pod's readiness filled in (ReadyKnown, Ready,
// ReadySince and each container's Ready), for the planner and for status.
//
// The engine tracks the probes of each run of each app container of a
// desired pod that runs with the desired spec: a container seen running
// for the first time, or again after a restart (another start time or
// restart count), gets a new workload.Tracker; a container that stopped,
// and a pod that is gone or runs another spec, are dropped. Until a
// tracker's probes have run, its container is as the Tracker says: not
// Ready when it has a readiness or startup probe, Ready once it runs when
// it has none.
//
// A pod whose spec is not desired (an old one during a rollout, or one no
// longer desired) is not probed (its probes are not known): it is Ready
// when its app containers run, since the latest of their starts.
func (e *Engine) Observe(desired []reconciler.Pod, actual reconciler.Actual) reconciler.Actual {
	want := make(map[string]*reconciler.Pod, len(desired))
	for i := range desired {
		d := &desired[i]
		want[reconciler.JoinName(d.Namespace, d.Name)] = d
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	out := actual
	out.Pods = make([]reconciler.ActualPod, len(actual.Pods))
	seen := make(map[string]bool, len(actual.Pods))
	for i, ap := range actual.Pods {
		ap.Containers = slices.Clone(ap.Containers)
		key := reconciler.JoinName(ap.Namespace, ap.Name)
		d := want[key]
		if d == nil || d.Hash != ap.Hash || ap.Hash == "" {
			out.Pods[i] = untracked(ap, d)
			continue
		}
		seen[key] = true
		p := e.track(key, d, ap, now)
		out.Pods[i] = p.readiness(ap)
	}
	for key := range e.pods {
		if !seen[key] {
			delete(e.pods, key)
			e.keysStale = true
		}
	}

	e.seenGen = e.gen
	e.nudge()
	return out
}

// track updates the pod of key, desired as d and observed as ap, and
// returns it.
func (e *Engine) track(key string, d *reconciler.Pod, ap reconciler.ActualPod, now time.Time) *pod {
	p := e.pods[key]
	if p == nil {
		p = &pod{}
		for _, c := range d.Containers {
			p.containers = append(p.containers, &container{name: c.Name, probes: c.Probes, kinds: probeKinds(c.Probes)})
		}
		e.pods[key] = p
		e.keysStale = true
	}
	p.actual, p.grace = ap, d.TerminationGracePeriod
	state := make(map[string]reconciler.ActualContainer, len(ap.Containers))
	for _, c := range ap.Containers {
		state[c.Name] = c
	}
	for _, c := range p.containers {
		st, ok := state[c.name]
		if !ok || st.State != reconciler.Running {
			c.cur = nil
			continue
		}
		k := runKey{startedAt: st.StartedAt, restarts: st.Restarts}
		if c.cur != nil && c.cur.key == k {
			continue
		}
		start := st.StartedAt
		if start.IsZero() || start.After(now) {
			start = now // unknown (or another clock's): from now on
		}
		c.cur = &run{key: k, tracker: workload.NewTracker(c.name, containerProbes(c.probes), start)}
		if hasProbes(c.probes) {
			e.log.Debug("probing a new run", "pod", key, "container", c.name, "started", start)
		}
	}
	return p
}

// readiness returns ap with the readiness of the tracked pod p.
func (p *pod) readiness(ap reconciler.ActualPod) reconciler.ActualPod {
	trackers := make([]*workload.Tracker, len(p.containers))
	ready := map[string]bool{}
	for i, c := range p.containers {
		if c.cur != nil {
			trackers[i] = c.cur.tracker
			ready[c.name] = c.cur.tracker.Ready()
		}
	}
	for i := range ap.Containers {
		ap.Containers[i].Ready = ready[ap.Containers[i].Name]
	}
	ap.ReadyKnown = true
	ap.ReadySince, ap.Ready = workload.PodReadySince(trackers)
	if !ap.Ready || !ap.SandboxReady {
		ap.Ready, ap.ReadySince = false, time.Time{}
	}
	return ap
}

// untracked returns ap with its readiness when it is not probed: Ready
// when it has app containers and they all run. The app containers are
// those of d (the desired pod of that name, another spec) but its init
// containers; without d, every container but those that exited 0 (done
// init containers).
func untracked(ap reconciler.ActualPod, d *reconciler.Pod) reconciler.ActualPod {
	init := map[string]bool{}
	if d != nil {
		for _, c := range d.InitContainers {
			init[c.Name] = true
		}
	}
	ap.ReadyKnown, ap.Ready, ap.ReadySince = true, false, time.Time{}
	apps, running := 0, 0
	var since time.Time
	for i := range ap.Containers {
		c := &ap.Containers[i]
		if init[c.Name] || (d == nil && c.State == reconciler.Exited && c.ExitCode == 0) {
			continue
		}
		apps++
		c.Ready = c.State == reconciler.Running
		if c.Ready {
			running++
			if c.StartedAt.After(since) {
				since = c.StartedAt
			}
		}
	}
	if apps > 0 && running == apps && ap.SandboxReady {
		ap.Ready, ap.ReadySince = true, since
	}
	return ap
}

// Unprobed returns actual with every pod's readiness as it is without a
// probe engine (no Prober): a pod is Ready when its sandbox is ready and
// its app containers (those of desired, when it names the pod) all run,
// since the latest of their starts. The planner's rule for a pod whose
// readiness is not known is the same; status and `kelpie ps` use this.
func Unprobed(desired []reconciler.Pod, actual reconciler.Actual) reconciler.Actual {
	want := make(map[string]*reconciler.Pod, len(desired))
	for i := range desired {
		want[reconciler.JoinName(desired[i].Namespace, desired[i].Name)] = &desired[i]
	}
	out := actual
	out.Pods = make([]reconciler.ActualPod, len(actual.Pods))
	for i, ap := range actual.Pods {
		ap.Containers = slices.Clone(ap.Containers)
		out.Pods[i] = untracked(ap, want[reconciler.JoinName(ap.Namespace, ap.Name)])
	}
	return out
}
