package scheduler

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// statefulReplicas is a StatefulSet's replica count, 0 when over the limit
// (only an unvalidated state gets there).
func statefulReplicas(o *appsv1.StatefulSet) int {
	n := 1
	if o.Spec.Replicas != nil {
		n = int(*o.Spec.Replicas)
	}
	if n < 0 || n > specs.MaxReplicas {
		return 0
	}
	return n
}

// statefulWorkloads turns a StatefulSet into workloads, its replicas named
// NAME-ORDINAL in ordinal order (so lower ordinals are placed first). A
// StatefulSet without volume claim templates is one workload, spread like
// a Deployment's; with them, each ordinal is a workload of its own, using
// its own claims (TEMPLATE-NAME-ORDINAL): it is pinned to the node that
// holds them, and the first placement binds them where it lands. taken
// maps the pod names used so far to their workload.
func statefulWorkloads(obj *specs.Object, o *appsv1.StatefulSet, taken map[string]specs.Key) ([]*workload, []Skipped) {
	replicas := 1
	if o.Spec.Replicas != nil {
		replicas = int(*o.Spec.Replicas)
	}
	if replicas > specs.MaxReplicas {
		return nil, []Skipped{{Workload: obj.Key(), Reason: fmt.Sprintf("%d replicas is more than the limit of %d; not placed", replicas, specs.MaxReplicas)}}
	}
	var (
		out     []*workload
		skipped []Skipped
		shared  *workload
	)
	perOrdinal := len(o.Spec.VolumeClaimTemplates) > 0
	for i := 0; i < replicas; i++ {
		id := obj.Namespace + "/" + specs.StatefulSetPodName(obj.Name, i)
		if prev, dup := taken[id]; dup {
			skipped = append(skipped, Skipped{Workload: obj.Key(), Replica: id, Reason: fmt.Sprintf("pod name %s is already used by %s; not placed", id, prev)})
			continue
		}
		taken[id] = obj.Key()
		w := shared
		if w == nil || perOrdinal {
			w = newWorkload(obj.Key(), &specs.StatefulSetPodTemplate(o, i).Spec)
			w.stateful = true
			out = append(out, w)
			if !perOrdinal {
				shared = w
			}
		}
		w.replicas = append(w.replicas, &replica{id: id, w: w, node: -1})
	}
	return out, skipped
}
