package scheduler

import (
	"sort"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// A DaemonSet with updateStrategy RollingUpdate is paced like a rolling
// Deployment (PaceRollouts): its replicas are its pods, one on each host
// that runs it, and its budget is maxUnavailable of those hosts. The
// leader publishes the allowed pods under DaemonSetRolloutKey, apart from
// a Deployment of the same name.

// DaemonSetRolloutKey is the key of DaemonSet "NAMESPACE/NAME" in
// PaceRollouts' groups and Published.Rollouts.
func DaemonSetRolloutKey(key string) string { return "DaemonSet/" + key }

// DaemonSetMaxUnavailable resolves a DaemonSet's maxUnavailable (nil: the
// default 1) against hosts, the number of hosts that run it: a
// percentage rounds up, as Kubernetes' DaemonSet controller does. The
// result is at least 1: a host's new pod replaces its old one under the
// same name, so kelpie cannot surge (maxUnavailable 0 with a maxSurge) and
// replaces one host at a time instead.
func DaemonSetMaxUnavailable(v *intstr.IntOrString, hosts int) int {
	if v == nil {
		return 1
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, hosts, true)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// NodeSelectorMatches reports whether a pod template's nodeSelector sel
// matches node's labels (with the implicit kubernetes.io/hostname): whether
// a DaemonSet with that template runs on node.
func NodeSelectorMatches(sel map[string]string, node Node) bool {
	return selectorMatches(sel, node.selectorLabels())
}

// DaemonSetGroup is the rollout group of DaemonSet key ("NAMESPACE/NAME")
// whose pods are pods, one for each host that runs it: they are paced in
// the order of their IDs (which name the hosts), within maxUnavailable
// resolved against their number.
func DaemonSetGroup(key string, maxUnavailable *intstr.IntOrString, pods []RolloutReplica) RolloutGroup {
	g := RolloutGroup{Key: DaemonSetRolloutKey(key), MaxUnavailable: DaemonSetMaxUnavailable(maxUnavailable, len(pods))}
	g.Replicas = append(g.Replicas, pods...)
	sort.Slice(g.Replicas, func(i, j int) bool { return g.Replicas[i].ID < g.Replicas[j].ID })
	return g
}
