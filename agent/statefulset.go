package agent

import (
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// elsewhere is the planner's PlanOptions.ReadyElsewhere and HashElsewhere:
// every pod the other live hosts report (nodeDetail.Revisions), true when
// it is available there (nodeDetail.Available), and its spec hash. A StatefulSet's pod here waits
// for its lower ordinals elsewhere, and is not created while another host
// still reports a pod of its name: one ordinal never runs on two hosts
// that both live. Dead and departed hosts are left out, as for Services:
// their pods move once the leader places them elsewhere. Nil outside a
// cluster.
func (a *Agent) elsewhere() (ready map[string]bool, hashes map[string]string) {
	if a.cluster == nil {
		return nil, nil
	}
	out, hashes := map[string]bool{}, map[string]string{}
	for _, m := range a.cluster.Members() {
		if m.Self || !m.HasStatus || m.State == gossip.StateDead || m.State == gossip.StateLeft {
			continue
		}
		var d nodeDetail
		if json.Unmarshal(m.Status.Data, &d) != nil {
			continue
		}
		for pod, hash := range d.Revisions {
			if _, ok := out[pod]; !ok {
				out[pod] = false
			}
			hashes[pod] = hash
		}
		for _, pod := range d.Available {
			out[pod] = true
		}
	}
	return out, hashes
}

// statefulReplicas is the planner's PlanOptions.StatefulReplicas: the
// replica count of every StatefulSet of the commit t applies. Nil outside
// a cluster, or before a commit is validated.
func (a *Agent) statefulReplicas(t *target) map[string]int {
	if a.cluster == nil || t == nil || t.state == nil {
		return nil
	}
	out := map[string]int{}
	for _, obj := range t.state.Objects {
		if ss, ok := obj.Obj.(*appsv1.StatefulSet); ok {
			n := 1
			if ss.Spec.Replicas != nil {
				n = int(*ss.Spec.Replicas)
			}
			out[reconciler.JoinName(obj.Namespace, obj.Name)] = n
		}
	}
	return out
}
