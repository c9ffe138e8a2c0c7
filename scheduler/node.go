package scheduler

import (
	"fmt"
	"maps"
	"time"
)

// HostnameLabel is the label every node carries implicitly, as in
// Kubernetes (and as reconciler.Expand gives it): nodeSelector
// {kubernetes.io/hostname: n3} pins a workload to node n3.
const HostnameLabel = "kubernetes.io/hostname"

// NodeState is a node's membership state as the caller's view has it. The
// values follow memberlist's: alive, suspect, dead, left.
type NodeState int

const (
	// NodeAlive nodes keep their replicas and take new ones.
	NodeAlive NodeState = iota
	// NodeSuspect nodes (memberlist suspects them; they may be alive) keep
	// their replicas but take no new ones.
	NodeSuspect
	// NodeDead nodes keep their replicas for Options.RescheduleAfter from
	// Node.DownSince; then their replicas move.
	NodeDead
	// NodeLeft nodes left the cluster gracefully: their replicas move at once.
	NodeLeft
)

// String returns "alive", "suspect", "dead" or "left".
func (s NodeState) String() string {
	switch s {
	case NodeAlive:
		return "alive"
	case NodeSuspect:
		return "suspect"
	case NodeDead:
		return "dead"
	case NodeLeft:
		return "left"
	}
	return fmt.Sprintf("NodeState(%d)", int(s))
}

// Capacity is what a node offers to the replicas placed on it. A zero
// dimension means the node does not advertise it: that dimension is not
// limited on that node.
type Capacity struct {
	// CPUMilli is the allocatable CPU in millicores (1000 = one core).
	CPUMilli int64 `json:"cpuMilli,omitempty"`
	// MemoryBytes is the allocatable memory in bytes.
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
}

// Node is one cluster member as the caller (the leader's gossip view) sees
// it. The caller keeps dead members in the list, with DownSince, at least
// until RescheduleAfter has passed: a node missing from the list counts as
// gone for good, and its replicas move at once.
type Node struct {
	// Name identifies the node; placements name nodes by it.
	Name string `json:"name"`
	// Labels are matched by nodeSelector, together with the implicit
	// kubernetes.io/hostname=Name unless Labels sets that label.
	Labels map[string]string `json:"labels,omitempty"`
	// Capacity bounds the sum of the requests of the replicas on the node.
	Capacity Capacity `json:"capacity"`
	// State is the node's membership state.
	State NodeState `json:"state"`
	// DownSince is when the node was first seen dead; used with NodeDead.
	// A zero DownSince counts as dead long ago.
	DownSince time.Time `json:"downSince,omitzero"`
	// Ineligible nodes keep the replicas they have but take no new ones
	// (Nomad's node eligibility: a drain or a cordon). This is not leader
	// eligibility, which package gossip owns.
	Ineligible bool `json:"ineligible,omitempty"`
	// Volumes lists the PersistentVolumeClaims whose data the node holds,
	// as "NAMESPACE/NAME". They pin the replicas that use them.
	Volumes []string `json:"volumes,omitempty"`
}

// selectorLabels returns the labels nodeSelector matches: Labels plus the
// implicit hostname label.
func (n *Node) selectorLabels() map[string]string {
	if _, ok := n.Labels[HostnameLabel]; ok {
		return n.Labels
	}
	labels := make(map[string]string, len(n.Labels)+1)
	maps.Copy(labels, n.Labels)
	labels[HostnameLabel] = n.Name
	return labels
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
