package reconciler

import (
	"fmt"
	"maps"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// Expand turns a validated desired state into what host should run:
//
//   - a Deployment becomes spec.replicas pods named NAME-0 … NAME-(n-1),
//     each carrying the Deployment's update strategy (Pod.Rollout);
//   - a DaemonSet becomes one pod named NAME-<host name>;
//   - a StatefulSet becomes spec.replicas pods named NAME-0 … NAME-(n-1),
//     each with its own claims from the volume claim templates
//     (expand_statefulset.go);
//   - a Pod stays as it is;
//   - every Network and PersistentVolumeClaim is listed as it is.
//
// A workload whose nodeSelector does not match the host's labels runs no
// pod here, and says so in a Notice. Jobs and CronJobs expand to nothing
// here: their pods depend on their records and the time, and SyncJobs
// decides them (Desired.WithJobs adds them). Services are not served by
// the host runtime yet; each gets a Notice, never silence. A pod
// whose name another workload took first (in the state's object order), or
// whose references cannot be resolved (only possible for an unvalidated
// state), is not run either, with a Notice.
//
// Expand is pure and deterministic; a nil state expands to nothing.
func Expand(state *specs.DesiredState, host Host) (Desired, []Notice) {
	e := &expander{state: state, host: podNameHost(host.Name), labels: hostLabels(host), taken: map[string]Owner{}}
	if state != nil {
		for _, obj := range state.Objects {
			e.object(obj)
		}
		for _, sk := range state.Skipped {
			e.notices = append(e.notices, Notice{APIVersion: sk.APIVersion,
				Key:     specs.Key{Kind: sk.Kind, Namespace: sk.Namespace, Name: sk.Name},
				Message: fmt.Sprintf("skipped (%s); not run (%s:%d)", sk.Why, sk.Pos.File, sk.Pos.Line)})
		}
	}
	sortDesired(&e.desired)
	return e.desired, e.notices
}

// maxPrealloc caps the capacity hints taken from counts in manifests, so a
// count that validation did not see cannot allocate in advance.
const maxPrealloc = 1024

// expander holds the state of one Expand.
type expander struct {
	state *specs.DesiredState
	// host is the host name as it appears in DaemonSet pod names.
	host   string
	labels map[string]string
	// taken maps "namespace/name" of each pod so far to its owner.
	taken   map[string]Owner
	desired Desired
	notices []Notice
}

// object expands one manifest object.
func (e *expander) object(obj *specs.Object) {
	switch o := obj.Obj.(type) {
	case *appsv1.Deployment:
		replicas := 1
		if o.Spec.Replicas != nil {
			replicas = int(*o.Spec.Replicas)
		}
		e.workload(obj, &o.Spec.Template, replicas, rolloutOf(o, replicas))
	case *appsv1.DaemonSet:
		e.workload(obj, &o.Spec.Template, 1, daemonSetRollout(o))
	case *appsv1.StatefulSet:
		e.statefulSet(obj, o)
	case *corev1.Pod:
		e.workload(obj, specs.PodTemplate(o), 1, Rollout{})
	case *batchv1.Job, *batchv1.CronJob:
		// Run by the Job controller (SyncJobs), which keeps their records.
	case *corev1.Service:
		// Served by the agent's data path and DNS (package netplan), not
		// by the host's pods.
	case *specs.Network:
		e.desired.Networks = append(e.desired.Networks, Network{
			Name: o.Name, Type: o.Spec.Type, Subnet: o.Spec.Subnet, Gateway: o.Spec.Gateway,
			Master: o.Spec.Master, Isolated: o.Spec.Isolated, Hash: obj.Hash,
		})
	case *corev1.PersistentVolumeClaim:
		e.desired.Claims = append(e.desired.Claims, claimOf(o))
	}
	// ConfigMaps, Secrets and Namespaces only feed the objects above.
}

// workload expands a Deployment (replicas pods), a DaemonSet or a Pod.
func (e *expander) workload(obj *specs.Object, tmpl *corev1.PodTemplateSpec, replicas int, rollout Rollout) {
	e.workloadWith(obj, tmpl, replicas, rollout, nil)
}

// workloadWith is workload, with ordinal (when not nil) called before each
// pod of a StatefulSet is resolved, to give it the template and claims of
// its ordinal, and after, with the pod, to finish it.
func (e *expander) workloadWith(obj *specs.Object, tmpl *corev1.PodTemplateSpec, replicas int, rollout Rollout, ordinal func(b *podBuilder, i int, p *Pod)) {
	if replicas <= 0 {
		return
	}
	if replicas > specs.MaxReplicas { // only an unvalidated state gets here
		e.notice(obj, fmt.Sprintf("%d replicas is more than the limit of %d; not run", replicas, specs.MaxReplicas))
		return
	}
	if sel := tmpl.Spec.NodeSelector; !selectorMatches(sel, e.labels) {
		what := "not run"
		switch obj.Kind {
		case specs.KindDeployment, specs.KindStatefulSet:
			what = fmt.Sprintf("%d %s not run", replicas, plural(replicas, "replica", "replicas"))
		case specs.KindDaemonSet:
			what = "no pod here"
		}
		e.notice(obj, fmt.Sprintf("nodeSelector {%s} does not match host %s; %s", formatSelector(sel), e.host, what))
		return
	}
	b, err := newPodBuilder(e.state, obj, tmpl)
	if err != nil {
		e.notice(obj, err.Error()+"; not run")
		return
	}
	pods := make([]Pod, 0, min(replicas, maxPrealloc)) // never preallocate from a manifest's count
	for i := range replicas {
		name := obj.Name
		switch obj.Kind {
		case specs.KindDeployment, specs.KindStatefulSet:
			name = fmt.Sprintf("%s-%d", obj.Name, i)
		case specs.KindDaemonSet:
			name = DaemonSetPodName(obj.Name, e.host)
		}
		if ordinal != nil {
			ordinal(b, i, nil)
		}
		p, err := b.pod(name, i)
		if err != nil {
			e.notice(obj, fmt.Sprintf("pod %s: %v; not run", name, err))
			return
		}
		p.Rollout = rollout
		if ordinal != nil {
			ordinal(b, i, &p)
		}
		pods = append(pods, p)
	}
	e.notices = append(e.notices, b.notices...)
	for _, p := range pods {
		key := JoinName(p.Namespace, p.Name)
		if prev, dup := e.taken[key]; dup {
			e.notice(obj, fmt.Sprintf("pod name %s is already used by %s; not run", key, prev))
			continue
		}
		e.taken[key] = p.Owner
		e.desired.Pods = append(e.desired.Pods, p)
	}
}

// notice records a notice about obj.
func (e *expander) notice(obj *specs.Object, msg string) {
	e.notices = append(e.notices, Notice{APIVersion: obj.APIVersion, Key: obj.Key(), Message: msg})
}

// claimOf converts a PersistentVolumeClaim.
func claimOf(o *corev1.PersistentVolumeClaim) Claim {
	c := Claim{Namespace: o.Namespace, Name: o.Name}
	if q, ok := o.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		c.StorageBytes = q.Value()
	}
	return c
}

// hostLabels returns the labels nodeSelector matches: the host's own plus
// kubernetes.io/hostname.
func hostLabels(h Host) map[string]string {
	labels := maps.Clone(h.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if _, ok := labels[HostnameLabel]; !ok {
		name := h.Name
		if name == "" {
			name = "localhost"
		}
		labels[HostnameLabel] = name
	}
	return labels
}

// podNameHost is the host name as it appears in a DaemonSet pod's name:
// lower case, characters other than letters, digits, '-' and '.' replaced
// by '-'; "localhost" when empty.
func podNameHost(name string) string {
	if name == "" {
		return "localhost"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '-'
	}, name)
}

// selectorMatches reports whether every key=value of sel is in labels.
func selectorMatches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// formatSelector formats a nodeSelector as "k=v,k2=v2", sorted.
func formatSelector(sel map[string]string) string {
	parts := make([]string, 0, len(sel))
	for k, v := range sel {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// plural picks the singular or plural word for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sortDesired sorts every list of d.
func sortDesired(d *Desired) {
	sort.SliceStable(d.Pods, func(i, j int) bool {
		return NamespacedLess(d.Pods[i].Namespace, d.Pods[i].Name, d.Pods[j].Namespace, d.Pods[j].Name)
	})
	sort.SliceStable(d.Networks, func(i, j int) bool { return naturalLess(d.Networks[i].Name, d.Networks[j].Name) })
	sort.SliceStable(d.Claims, func(i, j int) bool {
		return NamespacedLess(d.Claims[i].Namespace, d.Claims[i].Name, d.Claims[j].Namespace, d.Claims[j].Name)
	})
}
