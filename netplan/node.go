package netplan

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/kelpie-dev/kelpie/scheduler"
)

// Node is a cluster member as the leader's view has it, with what
// networking needs from it. The caller keeps dead members in the list while
// its gossip layer remembers them: a node missing from the list counts as
// gone (see Allocate for what that does to its slice).
type Node struct {
	// Name identifies the node; slices are kept by name.
	Name string
	// State is the node's membership state. Alive and suspect nodes hold
	// their slice and their pods are endpoints; dead and left nodes keep
	// their slice for a while but their pods are not endpoints.
	State scheduler.NodeState
	// DownSince is when the node was first seen dead; zero means now.
	DownSince time.Time
	// PodSubnet is the slice the host pins with --pod-subnet; invalid (the
	// zero Prefix) when the leader chooses.
	PodSubnet netip.Prefix
}

// up reports whether the node counts as running: alive or suspect
// (memberlist suspects nodes that may well be alive; dropping their
// endpoints on suspicion would make traffic flap).
func (n *Node) up() bool {
	return n.State == scheduler.NodeAlive || n.State == scheduler.NodeSuspect
}

// indexNodes maps names to nodes, rejecting unnamed and duplicate nodes.
func indexNodes(nodes []Node) (map[string]*Node, error) {
	idx := make(map[string]*Node, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		if n.Name == "" {
			return nil, fmt.Errorf("node %d of %d has no name", i+1, len(nodes))
		}
		if idx[n.Name] != nil {
			return nil, fmt.Errorf("node %s is listed twice", n.Name)
		}
		idx[n.Name] = n
	}
	return idx, nil
}
