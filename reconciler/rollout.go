package reconciler

import (
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Rollout is how the pods of a workload are replaced when their spec hash
// changes. The zero value, for Pods, DaemonSets and Deployments with
// strategy Recreate, replaces every changed pod in one plan.
//
// A Deployment with strategy RollingUpdate replaces its pods a few at a
// time (PlanOptions.RollingUpdates), within two budgets as Kubernetes
// counts them: at most MaxUnavailable of its Replicas unavailable, and at
// most Replicas+MaxSurge pods in all. Each replica is a slot NAME-ORDINAL
// (SlotName); with MaxSurge 0 a replacement deletes the slot's pod and
// creates the new one under the same name, and with MaxSurge above 0 it
// may first create the new pod beside the old one, under another name
// (SurgeName), and delete the old one once the new one is available. See
// surge.go.
type Rollout struct {
	// Rolling is set for a Deployment whose strategy is RollingUpdate, and
	// a DaemonSet whose updateStrategy is (daemonSetRollout).
	Rolling bool `json:",omitempty"`
	// MaxUnavailable is spec.strategy.rollingUpdate.maxUnavailable resolved
	// against Replicas as Kubernetes does (a percentage rounds down); 1 when
	// it and MaxSurge both resolve to 0, as in Kubernetes.
	MaxUnavailable int `json:",omitempty"`
	// MaxSurge is spec.strategy.rollingUpdate.maxSurge resolved against
	// Replicas (a percentage rounds up): how many pods a rolling update may
	// run beyond Replicas. 0 for a pod template that binds host ports or
	// uses the host's network, whose surge pod could not bind the same
	// ports on the host of its slot.
	MaxSurge int `json:",omitempty"`
	// Replicas is the Deployment's (or StatefulSet's) replica count across
	// the cluster.
	Replicas int `json:",omitempty"`
	// MinReady is spec.minReadySeconds: a pod counts as available once it
	// has been Ready for that long (ActualPod.ReadySince when a probe
	// engine filled in readiness; else since its app containers started,
	// ActualContainer.StartedAt, a runtime that reports no start time
	// making a running pod available at once).
	MinReady time.Duration `json:",omitempty"`
	// OnDelete is set for a DaemonSet or StatefulSet whose updateStrategy is OnDelete: a
	// pod of an older template keeps running until it stops or is
	// removed, and only then comes back with the new one.
	OnDelete bool `json:",omitempty"`
	// Stateful is set for a StatefulSet's pods: never two pods of one
	// ordinal (no surge), changed pods replaced one at a time from the
	// highest ordinal down, each available before the next
	// (plan_statefulset.go).
	Stateful bool `json:",omitempty"`
	// OrderedReady is a StatefulSet's podManagementPolicy OrderedReady:
	// a pod is created only once every lower ordinal is available, and
	// pods are removed from the highest ordinal down, one at a time.
	OrderedReady bool `json:",omitempty"`
	// Partition is a StatefulSet's rollingUpdate.partition: pods of lower
	// ordinals keep their template when it changes.
	Partition int `json:",omitempty"`
}

// rolloutOf resolves the update strategy of a defaulted Deployment with
// replicas replicas.
func rolloutOf(d *appsv1.Deployment, replicas int) Rollout {
	s := d.Spec.Strategy
	if s.Type == appsv1.RecreateDeploymentStrategyType {
		return Rollout{}
	}
	r := Rollout{Rolling: true, Replicas: replicas, MinReady: time.Duration(d.Spec.MinReadySeconds) * time.Second}
	unavailable, surge := intstr.FromString("25%"), intstr.FromString("25%")
	if ru := s.RollingUpdate; ru != nil {
		if ru.MaxUnavailable != nil {
			unavailable = *ru.MaxUnavailable
		}
		if ru.MaxSurge != nil {
			surge = *ru.MaxSurge
		}
	}
	// Kubernetes (deploymentutil.ResolveFenceposts): maxSurge rounds up,
	// maxUnavailable down, and both 0 means maxUnavailable 1.
	u, uerr := intstr.GetScaledValueFromIntOrPercent(&unavailable, replicas, false)
	sg, serr := intstr.GetScaledValueFromIntOrPercent(&surge, replicas, true)
	if uerr != nil || u < 0 {
		u = 1
	}
	if serr != nil || sg < 0 || bindsHostPorts(&d.Spec.Template.Spec) {
		sg = 0
	}
	if u == 0 && sg == 0 {
		u = 1
	}
	r.MaxUnavailable, r.MaxSurge = u, sg
	return r
}

// rollouts decides, when opts.RollingUpdates, which changed pods of each
// rolling Deployment wait for a later plan. A pod of the Deployment is
// unavailable when it is not on the host, its sandbox is not ready, its
// hash is unknown, one of its app containers does not run, or it has not
// been Ready for minReadySeconds (see available). Changed pods
// that are unavailable are replaced anyway (that costs no availability)
// and, with every other unavailable pod of the Deployment, use up the
// budget of MaxUnavailable; available changed pods are replaced, in
// ordinal order, only within what is left. The others are returned, by pod
// key, with the reason they wait.
//
// The budget is per host: each host plans only its own pods, so a
// Deployment spread over several hosts may have up to MaxUnavailable pods
// down on each, unless the leader paces it (PlanOptions.RolloutAllowed).
// A Deployment that may surge, or has a slot with a predecessor, is paced
// by surgeGroup instead.
func (p *planner) rollouts(desired []Pod, actual map[string]*ActualPod) map[string]rolloutWait {
	if !p.opts.RollingUpdates {
		return nil
	}
	groups := map[string][]*Pod{}
	var order []string
	for i := range desired {
		d := &desired[i]
		if !d.Rollout.Rolling { // a rolling Deployment, or DaemonSet (rollout_daemonset.go)
			continue
		}
		g := d.Owner.Kind + "/" + JoinName(d.Namespace, d.Owner.Name)
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], d)
	}
	held := map[string]rolloutWait{}
	for _, g := range order {
		pods := groups[g]
		if p.surging(pods) {
			p.surgeGroup(pods, actual, held)
			continue
		}
		var busy []string
		var changed []*Pod
		var soonest time.Time // when the first pod that runs becomes available
		pending := false      // a pod comes up: it runs but is not available yet
		for _, d := range pods {
			key := JoinName(d.Namespace, d.Name)
			a := actual[key]
			ok, readyAt, coming := available(d, a, p.opts.Now)
			switch {
			case !ok:
				busy = append(busy, key)
				pending = pending || coming
				if !readyAt.IsZero() && (soonest.IsZero() || readyAt.Before(soonest)) {
					soonest = readyAt
				}
			case a.Hash != d.Hash:
				changed = append(changed, d)
			}
		}
		r := pods[0].Rollout
		if allowed := p.opts.RolloutAllowed; allowed != nil {
			// The leader paces the Deployment across hosts: the pods it
			// allows first, then no more than this host's budget.
			slices.SortStableFunc(changed, func(x, y *Pod) int {
				return boolOrder(allowed[paceKey(x)], allowed[paceKey(y)])
			})
			k := 0
			for k < len(changed) && allowed[paceKey(changed[k])] {
				k++
			}
			changed, held = changed[:k:k], addHeld(held, changed[k:], "rolling update across hosts: waiting for the leader to allow it (one replica after another, within maxUnavailable for the whole cluster)")
		}
		n := min(max(r.MaxUnavailable-len(busy), 0), len(changed))
		for _, d := range changed[:n] {
			busy = append(busy, JoinName(d.Namespace, d.Name))
		}
		if n == len(changed) {
			continue
		}
		reason := fmt.Sprintf("rolling update: %d of %d replaced at a time; waiting for %s",
			r.MaxUnavailable, r.Replicas, listNames(busy, 4))
		for _, d := range changed[n:] {
			held[JoinName(d.Namespace, d.Name)] = rolloutWait{group: busy, reason: reason, until: soonest, pending: pending}
		}
	}
	return held
}

// rolloutWait is why a changed pod waits for a later plan: the pods of its
// Deployment that are being replaced or are unavailable (group), when the
// first of those that is Ready has been for minReadySeconds (until; zero
// when none waits for that), and whether some of them are coming up
// (pending: they run but are not available yet).
type rolloutWait struct {
	name    string // the pod the wait names, when not the desired one
	group   []string
	reason  string
	until   time.Time
	pending bool
}

// available reports whether pod a, desired as d, serves at now: its
// sandbox is ready, its spec hash known, every app container of d runs,
// and it has been Ready for d.Rollout.MinReady. With readiness known
// (a.ReadyKnown: a probe engine observed the pod) it is Ready from
// a.ReadySince; without, a pod whose app containers run is Ready since the
// latest of their starts. A pod that is coming up (its containers run but
// it is not Ready yet, or not for long enough) is unavailable and pending;
// readyAt is when it becomes available, when that is known.
func available(d *Pod, a *ActualPod, now time.Time) (ok bool, readyAt time.Time, pending bool) {
	if a == nil || !a.SandboxReady || a.Hash == "" || len(unexpected(d, a)) > 0 {
		return false, time.Time{}, false
	}
	started := map[string]time.Time{}
	for _, c := range a.Containers {
		if c.State == Running {
			started[c.Name] = c.StartedAt
		}
	}
	var since time.Time // when the pod became Ready
	for _, c := range d.Containers {
		at, running := started[c.Name]
		if !running {
			return false, time.Time{}, false
		}
		if at.After(since) {
			since = at
		}
	}
	if a.ReadyKnown {
		if !a.Ready {
			return false, time.Time{}, true // a readiness change plans again
		}
		since = a.ReadySince
	}
	// Without minReadySeconds a Ready pod is available: a time ahead of now
	// (another clock) must not hold it back. A zero time is long ago.
	if d.Rollout.MinReady <= 0 || since.IsZero() {
		return true, time.Time{}, false
	}
	if r := since.Add(d.Rollout.MinReady); now.Before(r) {
		return false, r, true
	}
	return true, time.Time{}, false
}

// listNames joins names: the first limit of them and a count of the rest.
func listNames(names []string, limit int) string {
	if len(names) <= limit {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:limit], ", ") + fmt.Sprintf(" and %d more", len(names)-limit)
}

// boolOrder orders true before false.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// addHeld holds pods for reason (the leader has not allowed them yet).
func addHeld(held map[string]rolloutWait, pods []*Pod, reason string) map[string]rolloutWait {
	for _, d := range pods {
		held[JoinName(d.Namespace, d.Name)] = rolloutWait{reason: reason}
	}
	return held
}

// paceKey is how the leader's allowed sets name a pod: a Deployment's by
// its slot ("ns/NAME-i", SlotName), whatever the pod is called; a
// DaemonSet's by its own name.
func paceKey(p *Pod) string {
	if slot := SlotName(p); slot != "" {
		return JoinName(p.Namespace, slot)
	}
	return JoinName(p.Namespace, p.Name)
}
