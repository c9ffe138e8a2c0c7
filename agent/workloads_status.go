package agent

import (
	"fmt"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// Workload health, as WorkloadStatus.Health says it.
const (
	HealthHealthy     = "healthy"     // every desired pod runs the template, Ready
	HealthProgressing = "progressing" // a rollout is under way
	HealthDegraded    = "degraded"    // every pod runs the template, some are not Ready
	HealthStalled     = "stalled"     // the rollout made no progress for progressDeadlineSeconds
)

// WorkloadStatus is one Deployment, DaemonSet or StatefulSet of the
// commit in force, counted as a rollout counts it: in a cluster across the
// hosts that the placement (a Deployment, a StatefulSet) or the
// nodeSelector (a DaemonSet) gives it, on a lone host over the pods it
// runs here.
type WorkloadStatus struct {
	// Kind is Deployment, DaemonSet or StatefulSet.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Desired is how many pods it should run; Updated how many run its
	// current template; Ready how many of those are available (Ready for
	// minReadySeconds); a StatefulSet's Ready counts its available pods
	// of any revision, as its ordinals below a partition keep theirs.
	Desired int `json:"desired"`
	Updated int `json:"updated"`
	Ready   int `json:"ready"`
	// Health is healthy, progressing, degraded or stalled; Message says
	// why when it is not healthy.
	Health  string `json:"health"`
	Message string `json:"message,omitempty"`
	// Partition is a StatefulSet's rollingUpdate.partition: its ordinals
	// below it keep their revision. OnDelete marks an updateStrategy
	// OnDelete (a DaemonSet's or StatefulSet's): pods take the template
	// only once deleted.
	Partition int  `json:"partition,omitempty"`
	OnDelete  bool `json:"onDelete,omitempty"`
}

// workloadStatuses counts the pods of the Deployments, DaemonSets and
// StatefulSets of the commit in force (computed beside the rollouts'
// stalls, at most every stallCheckEvery); stalled are the stalled
// rollouts by workload key.
func (a *Agent) workloadStatuses(stalled map[string]RolloutStall) []WorkloadStatus {
	t := a.target
	if t == nil {
		return nil
	}
	workloads := a.rolloutWorkloads(t)
	sets := statefulSetPods(t.full)
	if len(workloads) == 0 && len(sets) == 0 {
		return nil
	}
	reports := a.hostReports()
	here := map[string][]string{} // lone host: workload key → its pods here
	if a.cluster == nil {
		for _, p := range t.desired.Pods {
			if p.Owner.Kind == "Deployment" || p.Owner.Kind == "DaemonSet" {
				k := p.Owner.Kind + "/" + reconciler.JoinName(p.Namespace, p.Owner.Name)
				here[k] = append(here[k], reconciler.JoinName(p.Namespace, p.Name))
			}
		}
	}
	var nodes []scheduler.Node
	if a.cluster != nil {
		nodes = a.aliveNodes()
	}
	out := make([]WorkloadStatus, 0, len(workloads))
	for _, w := range workloads {
		var ids []string
		owner := func(string) hostReport { return reports[""] }
		switch {
		case a.cluster == nil:
			ids = here[w.Kind+"/"+w.Key()]
		case w.Kind == "Deployment":
			for i := range min(w.Replicas, 100000) {
				ids = append(ids, reconciler.JoinName(w.Namespace, fmt.Sprintf("%s-%d", w.Name, i)))
			}
			assignments := a.placed.Assignments
			owner = func(id string) hostReport { return reports[assignments[id]] }
		default: // a DaemonSet: one pod on each alive host it selects
			hostOf := map[string]string{}
			for _, n := range nodes {
				if scheduler.NodeSelectorMatches(w.NodeSelector, n) {
					id := reconciler.JoinName(w.Namespace, reconciler.DaemonSetPodName(w.Name, n.Name))
					ids = append(ids, id)
					hostOf[id] = n.Name
				}
			}
			owner = func(id string) hostReport { return reports[hostOf[id]] }
		}
		p := progressOf(w, ids, owner)
		ws := WorkloadStatus{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, Desired: p.Total, Updated: p.Updated, Ready: p.Ready}
		ws.Health, ws.Message = workloadHealth(ws, stalled[w.Key()], w.Kind == "Deployment")
		out = append(out, ws)
	}
	for _, pods := range sets {
		owner := func(string) hostReport { return reports[""] }
		if a.cluster != nil {
			assignments := a.placed.Assignments
			owner = func(id string) hostReport { return reports[assignments[id]] }
		}
		out = append(out, statefulSetStatus(pods, owner))
	}
	return out
}

// statefulSetPods groups the StatefulSets' pods of desired by set, in the
// order the sets come.
func statefulSetPods(desired reconciler.Desired) [][]reconciler.Pod {
	var out [][]reconciler.Pod
	at := map[string]int{}
	for _, p := range desired.Pods {
		if p.Owner.Kind != "StatefulSet" {
			continue
		}
		k := reconciler.JoinName(p.Namespace, p.Owner.Name)
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], p)
	}
	return out
}

// statefulSetStatus counts one StatefulSet's pods (non-empty) where owner
// says they run: updated when at the pod's current hash, ready when
// available at any revision. It progresses while pods at or above the
// partition lack the template (not with OnDelete, where a pod changes
// only once deleted), and is degraded while some pod is not ready.
func statefulSetStatus(pods []reconciler.Pod, owner func(id string) hostReport) WorkloadStatus {
	p0 := pods[0]
	ws := WorkloadStatus{Kind: "StatefulSet", Namespace: p0.Namespace, Name: p0.Owner.Name, Desired: len(pods),
		Partition: p0.Rollout.Partition, OnDelete: p0.Rollout.OnDelete}
	toUpdate := 0
	for _, p := range pods {
		id := reconciler.JoinName(p.Namespace, p.Name)
		updated, available := owner(id).has(id, p.Hash)
		if updated {
			ws.Updated++
		}
		if available {
			ws.Ready++
		}
		if !updated && !ws.OnDelete && p.Ordinal >= ws.Partition {
			toUpdate++
		}
	}
	switch {
	case toUpdate > 0:
		ws.Health, ws.Message = HealthProgressing, fmt.Sprintf("%d of %d pods run the current template", ws.Updated, ws.Desired)
	case ws.Ready < ws.Desired:
		ws.Health, ws.Message = HealthDegraded, fmt.Sprintf("%d of %d pods not ready", ws.Desired-ws.Ready, ws.Desired)
	default:
		ws.Health = HealthHealthy
	}
	if ws.Updated < ws.Desired && toUpdate == 0 {
		why := fmt.Sprintf("partition %d: ordinals below it keep their revision", ws.Partition)
		if ws.OnDelete {
			why = "updateStrategy OnDelete: a pod takes the template once deleted"
		}
		if ws.Message != "" {
			ws.Message += "; "
		}
		ws.Message += fmt.Sprintf("%d of %d pods run the current template (%s)", ws.Updated, ws.Desired, why)
	}
	return ws
}

// workloadHealth says how a workload with counts ws is: stalled when its
// rollout is (a Deployment's), progressing while pods do not run the
// template yet, degraded while some that do are not Ready.
func workloadHealth(ws WorkloadStatus, stall RolloutStall, deployment bool) (string, string) {
	switch {
	case deployment && stall.Workload != "":
		return HealthStalled, stall.Message + "; the old pods keep serving"
	case ws.Updated < ws.Desired:
		return HealthProgressing, fmt.Sprintf("%d of %d pods run the current template", ws.Updated, ws.Desired)
	case ws.Ready < ws.Desired:
		return HealthDegraded, fmt.Sprintf("%d of %d pods not ready", ws.Desired-ws.Ready, ws.Desired)
	}
	return HealthHealthy, ""
}
