package scheduler

import (
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/kelpie-dev/kelpie/specs"
)

// Place decides which node runs each replica of desired's Deployments and
// Pods, following the rules of the package documentation, starting from
// previous (nil for the first placement). nodes is the caller's view of
// the members, dead ones included; their order does not matter.
//
// The returned placement has opts.Term (or previous's when 0) and the next
// Seq of that term, unless nothing changed: then it is equal to previous,
// Seq included, so placing again with the output as previous and the same
// input is a no-op. The report lists what could not be placed and why.
//
// Place fails only on invalid input: a missing Now, nodes without a name
// or listed twice, negative capacities, or a term lower than previous's
// (ErrStaleTerm).
func Place(desired *specs.DesiredState, nodes []Node, previous *Placement, opts Options) (Placement, Report, error) {
	return place(desired, nodes, previous, opts, pickSpread)
}

// pickFunc places as many of reps (unassigned replicas of w, in ordinal
// order) as some node can take, the first ones first, and returns how many
// it placed. Place uses pickSpread; the benchmarks compare it with a naive
// scan that must choose the same nodes.
type pickFunc func(p *placer, w *workload, reps []*replica) int

// placer holds the state of one Place.
type placer struct {
	opts  Options
	pick  pickFunc
	nodes []nodeState // sorted by name
	index map[string]int
	// groups are the candidate groups of the spread rule, one per distinct
	// nodeSelector, built on first use; groupOf indexes them by selector.
	groups  []*group
	groupOf map[string]int
	// wcount counts the replicas of the workload being placed, per node;
	// all zero between workloads.
	wcount []int
	// heap and aside are buffers reused across workloads.
	heap  []heapEntry
	aside []int
	// reasons caches diagnose by workload shape.
	reasons map[string]string
	// volumes maps claim "NAMESPACE/NAME" to the name of the node holding it.
	volumes map[string]string
	// pending are the unplaceable replicas whose reason is worked out last.
	pending []pendingUnplaceable
	report  Report
}

// nodeState is a node with what has been placed on it so far.
type nodeState struct {
	Node
	labels   map[string]string
	cpu, mem int64 // sum of requests
	count    int   // replicas
	util     float64
	ports    map[string]bool
	// groups are the candidate groups the node is in.
	groups []int
}

// place is Place with the node choice injected.
func place(desired *specs.DesiredState, nodes []Node, previous *Placement, opts Options, pick pickFunc) (Placement, Report, error) {
	if err := opts.validate(); err != nil {
		return Placement{}, Report{}, fmt.Errorf("place: %w", err)
	}
	term := opts.Term
	if previous != nil {
		if term == 0 {
			term = previous.Term
		}
		if term < previous.Term {
			return Placement{}, Report{}, fmt.Errorf("place for term %d: the previous placement has term %d: %w", term, previous.Term, ErrStaleTerm)
		}
	}
	p, err := newPlacer(nodes, opts, pick)
	if err != nil {
		return Placement{}, Report{}, fmt.Errorf("place: %w", err)
	}
	ws, skipped := workloads(desired)
	p.report.Skipped = skipped
	p.bindVolumes(claimsOf(desired), previous)
	if previous != nil {
		p.keepSticky(ws, previous.Assignments)
		p.rebalance(ws)
	}
	// Replicas pinned by their volumes go first: they have one node only.
	done := make([]bool, len(ws))
	for i, w := range ws {
		if node, claim, conflict := p.pin(w); node != "" || conflict != "" {
			p.placePinned(w, node, claim, conflict, unassigned(w))
			done[i] = true
		}
	}
	for i, w := range ws {
		if !done[i] {
			p.placeSpread(w)
		}
	}
	out := p.placement(ws, term, opts.Commit)
	switch {
	case previous == nil || term > previous.Term:
		out.Seq = 1
	case out.Equal(previous):
		out.Seq = previous.Seq
	default:
		out.Seq = previous.Seq + 1
	}
	p.resolveUnplaceable()
	sortReport(&p.report)
	return out, p.report, nil
}

// newPlacer indexes the nodes, sorted by name.
func newPlacer(nodes []Node, opts Options, pick pickFunc) (*placer, error) {
	p := &placer{opts: opts, pick: pick, index: make(map[string]int, len(nodes)), groupOf: map[string]int{}, reasons: map[string]string{}, volumes: map[string]string{}}
	p.nodes = make([]nodeState, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		switch {
		case n.Name == "":
			return nil, fmt.Errorf("node %d of %d has no name", i+1, len(nodes))
		case n.Capacity.CPUMilli < 0 || n.Capacity.MemoryBytes < 0:
			return nil, fmt.Errorf("node %s: negative capacity (cpu %dm, memory %d bytes)", n.Name, n.Capacity.CPUMilli, n.Capacity.MemoryBytes)
		}
		p.nodes[i] = nodeState{Node: *n}
	}
	sort.Slice(p.nodes, func(i, j int) bool { return p.nodes[i].Name < p.nodes[j].Name })
	for i := range p.nodes {
		n := &p.nodes[i]
		if i > 0 && p.nodes[i-1].Name == n.Name {
			return nil, fmt.Errorf("node %s is listed twice", n.Name)
		}
		n.labels = n.selectorLabels()
		p.index[n.Name] = i
	}
	p.wcount = make([]int, len(p.nodes))
	return p, nil
}

// keepSticky keeps each replica on its previous node when the node still
// holds replicas (up, or dead within its grace period), matches the
// replica's nodeSelector and has room for it. Replicas are kept in order,
// so when a node can no longer hold all of its replicas, the later ones
// are placed again. A replica with a volume is kept only on the node
// holding its claim: while that node is up, or dead for however long
// (it waits for the node, reported Waiting with a zero MoveAt).
func (p *placer) keepSticky(ws []*workload, prev map[string]string) {
	for _, w := range ws {
		for _, r := range w.replicas {
			name, ok := prev[r.id]
			if !ok {
				continue
			}
			ni, ok := p.index[name]
			if !ok {
				continue // not a member any more: gone
			}
			n := &p.nodes[ni]
			keeps, inGrace, moveAt := p.holds(n)
			if len(w.claims) > 0 {
				node, _, conflict := p.pin(w)
				switch {
				case conflict != "" || (node != "" && node != n.Name):
					continue
				case node == n.Name && n.State == NodeDead:
					// Bound to the claim the node holds, the replica
					// never moves: it waits for the node however long
					// it is dead, so that the node, back, finds it
					// still its own and does not stop it.
					keeps, inGrace, moveAt = true, true, time.Time{}
				case inGrace:
					continue
				}
			}
			if !keeps || !selectorMatches(w.selector, n.labels) || !n.fits(w) {
				continue
			}
			p.assign(r, ni)
			if inGrace {
				p.report.Waiting = append(p.report.Waiting, Waiting{Replica: r.id, Node: n.Name, MoveAt: moveAt})
				if !moveAt.IsZero() && (p.report.RecheckAt.IsZero() || moveAt.Before(p.report.RecheckAt)) {
					p.report.RecheckAt = moveAt
				}
			}
		}
	}
}

// holds reports whether node n keeps the replicas it has: it is up, or it
// is dead and its grace period, ending at moveAt, has not.
func (p *placer) holds(n *nodeState) (keeps, inGrace bool, moveAt time.Time) {
	switch n.State {
	case NodeAlive, NodeSuspect:
		return true, false, time.Time{}
	case NodeDead:
		if n.DownSince.IsZero() {
			return false, false, time.Time{}
		}
		moveAt = n.DownSince.Add(p.opts.RescheduleAfter)
		if p.opts.Now.Before(moveAt) {
			return true, true, moveAt
		}
	}
	return false, false, time.Time{}
}

// placePinned places the replicas rs of w on node, which holds claim, or
// reports them unplaceable with the reason.
func (p *placer) placePinned(w *workload, node, claim, conflict string, rs []*replica) {
	if conflict != "" {
		p.unplaceable(rs, conflict)
		return
	}
	ni, ok := p.index[node]
	if !ok {
		p.unplaceable(rs, fmt.Sprintf("volume claim %s is on node %s, which is not a member of the cluster", claim, node))
		return
	}
	n := &p.nodes[ni]
	for i, r := range rs {
		if p.pinnedReason(w, claim, n) != "" {
			p.unplaceableLater(rs[i:], w, ni, claim)
			return
		}
		p.assign(r, ni)
	}
}

// placeSpread places the unassigned replicas of a workload by the spread
// rule. A workload with claims that are not bound yet places its first
// replica so, which binds them; the others follow it there.
func (p *placer) placeSpread(w *workload) {
	rs := unassigned(w)
	if len(rs) == 0 {
		return
	}
	if len(w.claims) > 0 {
		// An earlier workload may have bound a claim this one shares.
		if node, claim, conflict := p.pin(w); node != "" || conflict != "" {
			p.placePinned(w, node, claim, conflict, rs)
			return
		}
		if p.pick(p, w, rs[:1]) == 0 {
			p.unplaceableLater(rs, w, -1, "")
			return
		}
		node, claim, conflict := p.pin(w)
		p.placePinned(w, node, claim, conflict, rs[1:])
		return
	}
	if placed := p.pick(p, w, rs); placed < len(rs) {
		p.unplaceableLater(rs[placed:], w, -1, "")
	}
}

// assign places replica r on node ni, binding its unbound claims there.
func (p *placer) assign(r *replica, ni int) {
	n := &p.nodes[ni]
	w := r.w
	r.node = ni
	n.cpu += w.cpu
	n.mem += w.mem
	n.count++
	n.util = n.utilisation()
	if len(w.ports) > 0 {
		if n.ports == nil {
			n.ports = map[string]bool{}
		}
		for _, port := range w.ports {
			n.ports[port] = true
		}
	}
	for _, c := range w.claims {
		if _, bound := p.volumes[c]; !bound {
			p.volumes[c] = n.Name
		}
	}
	p.nodeChanged(ni)
}

// accepts reports whether the node takes new replicas.
func (n *nodeState) accepts() bool { return n.State == NodeAlive && !n.Ineligible }

// fits reports whether the node has room for one more replica of w.
func (n *nodeState) fits(w *workload) bool {
	if c := n.Capacity.CPUMilli; c > 0 && n.cpu+w.cpu > c {
		return false
	}
	if m := n.Capacity.MemoryBytes; m > 0 && n.mem+w.mem > m {
		return false
	}
	return n.busyPort(w) == ""
}

// busyPort returns the first host port of w already bound on the node, or "".
func (n *nodeState) busyPort(w *workload) string {
	if n.ports == nil {
		return ""
	}
	for _, port := range w.ports {
		if n.ports[port] {
			return port
		}
	}
	return ""
}

// unassigned returns the replicas of w not placed yet, in order.
func unassigned(w *workload) []*replica {
	var out []*replica
	for _, r := range w.replicas {
		if r.node < 0 {
			out = append(out, r)
		}
	}
	return out
}

// placement builds the result.
func (p *placer) placement(ws []*workload, term uint64, commit string) Placement {
	n := 0
	for _, w := range ws {
		n += len(w.replicas)
	}
	out := Placement{Term: term, Commit: commit, Assignments: make(map[string]string, n)}
	for _, w := range ws {
		for _, r := range w.replicas {
			if r.node >= 0 {
				out.Assignments[r.id] = p.nodes[r.node].Name
			}
		}
	}
	if len(p.volumes) > 0 {
		out.Volumes = maps.Clone(p.volumes)
	}
	return out
}

// sortReport orders the report's lists by replica.
func sortReport(r *Report) {
	sort.SliceStable(r.Unplaceable, func(i, j int) bool { return naturalLess(r.Unplaceable[i].Replica, r.Unplaceable[j].Replica) })
	sort.SliceStable(r.Waiting, func(i, j int) bool { return naturalLess(r.Waiting[i].Replica, r.Waiting[j].Replica) })
}
