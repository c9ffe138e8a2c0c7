package scheduler

import (
	"fmt"
	"strings"
	"time"

	"github.com/kelpie-dev/kelpie/specs"
)

// Report says what Place could not do, and what it is waiting for. Every
// desired replica is either in Placement.Assignments or in Unplaceable;
// lists are sorted by replica.
type Report struct {
	// Unplaceable lists the replicas no node can take, with the reason.
	Unplaceable []Unplaceable `json:"unplaceable,omitempty"`
	// Waiting lists the replicas kept on a dead node until it has been down
	// for RescheduleAfter.
	Waiting []Waiting `json:"waiting,omitempty"`
	// Skipped lists the workloads (or single pods) Place does not place:
	// Jobs and CronJobs, and pods whose name another workload took first.
	Skipped []Skipped `json:"skipped,omitempty"`
	// Warnings are facts the operator should know that do not stop
	// placement, such as a claim whose data several nodes report.
	Warnings []string `json:"warnings,omitempty"`
	// RecheckAt is the earliest time at which Place, given the same input,
	// would decide differently (a dead node's grace period ends); zero when
	// no such time is known. The caller places again then.
	RecheckAt time.Time `json:"recheckAt,omitzero"`
}

// Unplaceable is a desired replica that no node can take.
type Unplaceable struct {
	Replica  string    `json:"replica"`
	Workload specs.Key `json:"workload"`
	// Reason says why, in the manner of Nomad's placement failures:
	// "nodeSelector {disk=ssd} matched 0 of 5 nodes; Dimension memory
	// exhausted on 2 nodes", or "volume claim default/data is on node n3,
	// which is dead".
	Reason string `json:"reason"`
}

// String formats the entry as "REPLICA: REASON".
func (u Unplaceable) String() string { return u.Replica + ": " + u.Reason }

// Waiting is a replica kept on a dead node: during its grace period, or,
// bound to a claim the node holds, until the node returns.
type Waiting struct {
	Replica string `json:"replica"`
	Node    string `json:"node"`
	// MoveAt is when the replica moves if the node is still dead; zero
	// for a replica bound to a claim, which never moves.
	MoveAt time.Time `json:"moveAt"`
}

// Skipped is a workload, or one replica of it, that Place does not place.
type Skipped struct {
	Workload specs.Key `json:"workload"`
	// Replica is set when only that replica is skipped.
	Replica string `json:"replica,omitempty"`
	Reason  string `json:"reason"`
}

// String formats the entry as "KEY: REASON" (or "KEY REPLICA: REASON").
func (s Skipped) String() string {
	if s.Replica != "" {
		return s.Workload.String() + " " + s.Replica + ": " + s.Reason
	}
	return s.Workload.String() + ": " + s.Reason
}

// unplaceable records that the replicas rs cannot be placed, for reason.
func (p *placer) unplaceable(rs []*replica, reason string) {
	for _, r := range rs {
		p.report.Unplaceable = append(p.report.Unplaceable, Unplaceable{Replica: r.id, Workload: r.w.key, Reason: reason})
	}
}

// pendingUnplaceable are replicas no node could take, whose reason is
// worked out once every replica is placed: the reason then describes the
// final placement, so it does not depend on the order replicas were placed
// in (nodes only fill up, so what did not fit still does not).
type pendingUnplaceable struct {
	rs []*replica
	w  *workload
	// node is the index of the node holding claim, or -1 for the spread rule.
	node  int
	claim string
}

// unplaceableLater records replicas whose reason resolveUnplaceable gives.
func (p *placer) unplaceableLater(rs []*replica, w *workload, node int, claim string) {
	p.pending = append(p.pending, pendingUnplaceable{rs: rs, w: w, node: node, claim: claim})
}

// resolveUnplaceable reports the pending unplaceable replicas with their reasons.
func (p *placer) resolveUnplaceable() {
	for _, u := range p.pending {
		if u.node < 0 && len(u.w.claims) > 0 {
			// A later workload may have bound a claim this one shares: the
			// replicas are pinned now, and the reason says so.
			node, claim, conflict := p.pin(u.w)
			if conflict != "" {
				p.unplaceable(u.rs, conflict)
				continue
			}
			if ni, ok := p.index[node]; ok {
				u.node, u.claim = ni, claim
			} else if node != "" {
				p.unplaceable(u.rs, fmt.Sprintf("volume claim %s is on node %s, which is not a member of the cluster", claim, node))
				continue
			}
		}
		if u.node < 0 {
			// The reason depends on the workload's shape only: cache it.
			shape := fmt.Sprintf("%s|%d|%d|%s", u.w.selKey, u.w.cpu, u.w.mem, strings.Join(u.w.ports, ","))
			reason, ok := p.reasons[shape]
			if !ok {
				reason = p.diagnose(u.w)
				p.reasons[shape] = reason
			}
			p.unplaceable(u.rs, reason)
			continue
		}
		reason := p.pinnedReason(u.w, u.claim, &p.nodes[u.node])
		if reason == "" { // unreachable: nodes only fill up
			reason = fmt.Sprintf("volume claim %s is on node %s, which has no room", u.claim, p.nodes[u.node].Name)
		}
		p.unplaceable(u.rs, reason)
	}
}

// diagnose explains why no node can take another replica of w, counting
// the nodes each constraint filters out, as Nomad's AllocMetric does. Each
// node is counted once, under the first constraint it fails.
func (p *placer) diagnose(w *workload) string {
	if len(p.nodes) == 0 {
		return "no nodes in the cluster"
	}
	var matched, down, suspect, ineligible, cpu, mem, ports int
	busyPort := ""
	for i := range p.nodes {
		n := &p.nodes[i]
		if !selectorMatches(w.selector, n.labels) {
			continue
		}
		matched++
		switch {
		case n.State == NodeDead || n.State == NodeLeft:
			down++
		case n.State == NodeSuspect:
			suspect++
		case n.Ineligible:
			ineligible++
		case n.Capacity.CPUMilli > 0 && n.cpu+w.cpu > n.Capacity.CPUMilli:
			cpu++
		case n.Capacity.MemoryBytes > 0 && n.mem+w.mem > n.Capacity.MemoryBytes:
			mem++
		default:
			if port := n.busyPort(w); port != "" {
				ports++
				if busyPort == "" {
					busyPort = port
				}
			}
		}
	}
	var parts []string
	if len(w.selector) > 0 && matched < len(p.nodes) {
		parts = append(parts, fmt.Sprintf("nodeSelector {%s} matched %d of %s", w.selKey, matched, nodes(len(p.nodes))))
	}
	if down > 0 {
		parts = append(parts, nodes(down)+" dead or left")
	}
	if suspect > 0 {
		parts = append(parts, nodes(suspect)+" suspect (no new replicas)")
	}
	if ineligible > 0 {
		parts = append(parts, nodes(ineligible)+" ineligible")
	}
	if cpu > 0 {
		parts = append(parts, "Dimension cpu exhausted on "+nodes(cpu))
	}
	if mem > 0 {
		parts = append(parts, "Dimension memory exhausted on "+nodes(mem))
	}
	if ports > 0 {
		parts = append(parts, fmt.Sprintf("Dimension ports exhausted on %s (host port %s in use)", nodes(ports), busyPort))
	}
	if len(parts) == 0 {
		// Unreachable while the pick functions agree with this one.
		return fmt.Sprintf("no node fits (%d evaluated)", len(p.nodes))
	}
	return strings.Join(parts, "; ")
}

// pinnedReason explains why node n, which holds claim, cannot take another
// replica of w; "" when it can.
func (p *placer) pinnedReason(w *workload, claim string, n *nodeState) string {
	where := fmt.Sprintf("volume claim %s is on node %s", claim, n.Name)
	switch {
	case n.State == NodeDead:
		return where + ", which is dead"
	case n.State == NodeLeft:
		return where + ", which has left the cluster"
	case n.State == NodeSuspect:
		return where + ", which is suspect"
	case n.Ineligible:
		return where + ", which is ineligible"
	case !selectorMatches(w.selector, n.labels):
		return fmt.Sprintf("%s, which nodeSelector {%s} does not match", where, w.selKey)
	case n.Capacity.CPUMilli > 0 && n.cpu+w.cpu > n.Capacity.CPUMilli:
		return where + ", where Dimension cpu is exhausted"
	case n.Capacity.MemoryBytes > 0 && n.mem+w.mem > n.Capacity.MemoryBytes:
		return where + ", where Dimension memory is exhausted"
	}
	if port := n.busyPort(w); port != "" {
		return fmt.Sprintf("%s, where host port %s is in use", where, port)
	}
	return ""
}

// nodes formats "1 node" or "N nodes".
func nodes(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}
