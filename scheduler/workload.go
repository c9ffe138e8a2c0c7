package scheduler

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// workload is a Deployment or a Pod reduced to what placement needs.
type workload struct {
	key specs.Key
	// selector is the pod template's nodeSelector; selKey its canonical
	// form ("k=v,k2=v2", sorted), the key of the candidate cache.
	selector map[string]string
	selKey   string
	// cpu (millicores) and mem (bytes) are the pod's effective requests.
	cpu, mem int64
	// ports are the host ports the pod binds, as "PORT/PROTOCOL".
	ports []string
	// claims are the PersistentVolumeClaims the pod uses, "NAMESPACE/NAME",
	// sorted.
	claims   []string
	replicas []*replica
	// stateful is set for a StatefulSet's: its replicas never move to
	// rebalance (a move would run one ordinal on two hosts for a while).
	stateful bool
}

// replica is one pod of a workload.
type replica struct {
	id string
	w  *workload
	// node is the index of the assigned node, or -1.
	node int
}

// maxPrealloc caps the capacity hints taken from counts in manifests, so a
// count that validation did not see cannot allocate in advance.
const maxPrealloc = 1024

// workloads turns the desired state into the workloads to place, sorted by
// key, with their replicas named as reconciler.Expand names pods. Pods
// whose name another workload took first are returned as skipped; Jobs and
// CronJobs are not workloads here (the leader adds their pods as bare pods).
func workloads(desired *specs.DesiredState) ([]*workload, []Skipped) {
	if desired == nil {
		return nil, nil
	}
	objs := desired.Objects
	if !slices.IsSortedFunc(objs, compareObjects) { // specs.Load sorts them
		objs = slices.Clone(objs)
		slices.SortStableFunc(objs, compareObjects)
	}
	var (
		out     []*workload
		skipped []Skipped
		taken   = make(map[string]specs.Key, len(objs))
	)
	for _, obj := range objs {
		var (
			spec     *corev1.PodSpec
			replicas = 1
			ordinals bool
		)
		switch o := obj.Obj.(type) {
		case *appsv1.Deployment:
			spec, ordinals = &o.Spec.Template.Spec, true
			if o.Spec.Replicas != nil {
				replicas = int(*o.Spec.Replicas)
			}
		case *appsv1.StatefulSet:
			sw, sk := statefulWorkloads(obj, o, taken)
			out, skipped = append(out, sw...), append(skipped, sk...)
			continue
		case *corev1.Pod:
			spec = &o.Spec
		case *batchv1.Job, *batchv1.CronJob:
			continue // the leader places a Job's pods, as bare pods (reconciler.JobPodObjects)
		default:
			continue // DaemonSets: each host decides; the rest are not workloads
		}
		if replicas <= 0 {
			continue
		}
		if replicas > specs.MaxReplicas { // only an unvalidated state gets here
			skipped = append(skipped, Skipped{Workload: obj.Key(), Reason: fmt.Sprintf("%d replicas is more than the limit of %d; not placed", replicas, specs.MaxReplicas)})
			continue
		}
		w := newWorkload(obj.Key(), spec)
		w.replicas = make([]*replica, 0, min(replicas, maxPrealloc)) // never preallocate from a manifest's count
		for i := range replicas {
			name := obj.Name
			if ordinals {
				name = replicaName(obj.Name, i)
			}
			id := obj.Namespace + "/" + name
			if prev, dup := taken[id]; dup {
				skipped = append(skipped, Skipped{Workload: obj.Key(), Replica: id, Reason: fmt.Sprintf("pod name %s is already used by %s; not placed", id, prev)})
				continue
			}
			taken[id] = obj.Key()
			w.replicas = append(w.replicas, &replica{id: id, w: w, node: -1})
		}
		if len(w.replicas) > 0 {
			out = append(out, w)
		}
	}
	return out, skipped
}

// compareObjects orders objects by key, as specs.Key.Less does.
func compareObjects(a, b *specs.Object) int {
	if c := strings.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// replicaName is the name of a Deployment's pod with the given ordinal,
// "NAME-ORDINAL", as reconciler.Expand names it (duplicated here so that
// scheduler depends on specs only).
func replicaName(name string, ordinal int) string {
	return name + "-" + strconv.Itoa(ordinal)
}

// newWorkload reduces a pod spec to its placement constraints.
func newWorkload(key specs.Key, spec *corev1.PodSpec) *workload {
	w := &workload{key: key, selector: spec.NodeSelector, selKey: formatSelector(spec.NodeSelector)}
	w.cpu, w.mem = podRequests(spec)
	seen := map[string]bool{}
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			host := p.HostPort
			if host == 0 && spec.HostNetwork {
				host = p.ContainerPort
			}
			if host == 0 {
				continue
			}
			proto := string(p.Protocol)
			if proto == "" {
				proto = string(corev1.ProtocolTCP)
			}
			k := strconv.Itoa(int(host)) + "/" + proto
			if !seen[k] {
				seen[k] = true
				w.ports = append(w.ports, k)
			}
		}
	}
	sort.Strings(w.ports)
	for _, v := range spec.Volumes {
		if pvc := v.PersistentVolumeClaim; pvc != nil {
			k := key.Namespace + "/" + pvc.ClaimName
			if !seen[k] {
				seen[k] = true
				w.claims = append(w.claims, k)
			}
		}
	}
	sort.Strings(w.claims)
	return w
}

// podRequests returns the pod's effective cpu (millicores) and memory
// (bytes) requests as Kubernetes computes them: the larger of the sum over
// its containers and the largest init container. A container's request
// defaults to its limit.
func podRequests(spec *corev1.PodSpec) (cpu, mem int64) {
	for i := range spec.Containers {
		c, m := containerRequests(&spec.Containers[i])
		cpu += c
		mem += m
	}
	for i := range spec.InitContainers {
		c, m := containerRequests(&spec.InitContainers[i])
		cpu, mem = max(cpu, c), max(mem, m)
	}
	return cpu, mem
}

// containerRequests returns one container's cpu and memory requests.
func containerRequests(c *corev1.Container) (cpu, mem int64) {
	r := c.Resources
	if q, ok := r.Requests[corev1.ResourceCPU]; ok {
		cpu = q.MilliValue()
	} else if q, ok := r.Limits[corev1.ResourceCPU]; ok {
		cpu = q.MilliValue()
	}
	if q, ok := r.Requests[corev1.ResourceMemory]; ok {
		mem = q.Value()
	} else if q, ok := r.Limits[corev1.ResourceMemory]; ok {
		mem = q.Value()
	}
	return cpu, mem
}

// formatSelector formats a nodeSelector as "k=v,k2=v2", sorted.
func formatSelector(sel map[string]string) string {
	if len(sel) == 0 {
		return ""
	}
	parts := make([]string, 0, len(sel))
	for k, v := range sel {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// claimsOf lists the PersistentVolumeClaims of the desired state,
// "NAMESPACE/NAME", sorted.
func claimsOf(desired *specs.DesiredState) []string {
	if desired == nil {
		return nil
	}
	var out []string
	for _, obj := range desired.Objects {
		switch o := obj.Obj.(type) {
		case *corev1.PersistentVolumeClaim:
			out = append(out, obj.Namespace+"/"+obj.Name)
		case *appsv1.StatefulSet:
			for i := range statefulReplicas(o) {
				for _, c := range specs.StatefulSetClaims(o, i) {
					out = append(out, c.Namespace+"/"+c.Name)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
