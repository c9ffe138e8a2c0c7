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

// WorkloadStatus is one Deployment or DaemonSet of the commit in force,
// counted as a rollout counts it: in a cluster across the hosts that the
// placement (a Deployment) or the nodeSelector (a DaemonSet) gives it, on a
// lone host over the pods it runs here.
type WorkloadStatus struct {
	// Kind is Deployment or DaemonSet.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Desired is how many pods it should run; Updated how many run its
	// current template; Ready how many of those are available (Ready for
	// minReadySeconds).
	Desired int `json:"desired"`
	Updated int `json:"updated"`
	Ready   int `json:"ready"`
	// Health is healthy, progressing, degraded or stalled; Message says
	// why when it is not healthy.
	Health  string `json:"health"`
	Message string `json:"message,omitempty"`
}

// workloadStatuses counts the pods of the Deployments and DaemonSets of
// the commit in force (computed beside the rollouts' stalls, at most every
// stallCheckEvery); stalled are the stalled rollouts by workload key.
func (a *Agent) workloadStatuses(stalled map[string]RolloutStall) []WorkloadStatus {
	t := a.target
	if t == nil {
		return nil
	}
	workloads := a.rolloutWorkloads(t)
	if len(workloads) == 0 {
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
	return out
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
