package scheduler

import appsv1 "k8s.io/api/apps/v1"

// DaemonSetRunsOn reports whether a DaemonSet runs a pod on node: whether
// its pod template's nodeSelector matches the node's labels (with the
// implicit kubernetes.io/hostname). DaemonSets need no leader: each host
// calls this with its own Node and decides for itself. Membership state,
// eligibility and capacity do not count, as for Kubernetes DaemonSets.
func DaemonSetRunsOn(ds *appsv1.DaemonSet, node Node) bool {
	if ds == nil {
		return false
	}
	return selectorMatches(ds.Spec.Template.Spec.NodeSelector, node.selectorLabels())
}
