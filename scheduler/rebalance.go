package scheduler

// rebalance moves replicas back towards an even spread when a node returns
// or joins (Options.Rebalance): the spread rule places new replicas on the
// emptiest nodes, but sticky replicas stay where they run, so a returning
// host would otherwise stay empty until something new is placed.
//
// It runs after keepSticky, before anything new is placed, and for each
// workload that
//   - has no claims (a replica bound to its data never moves),
//   - is settled: every replica is placed and reported available where it
//     runs (Options.Settled), so no rollout or earlier move is under way,
//   - and whose replicas differ by two or more between the most loaded node
//     holding some and the least loaded candidate node (alive, eligible,
//     matching its nodeSelector, with room),
//
// it takes one replica (the highest ordinal) off the most loaded node; the
// spread rule then places it on the least loaded. One replica per workload
// per placement: the next moves once the moved replica is available again,
// which keeps a rebalance within any rolling-update budget.
func (p *placer) rebalance(ws []*workload) {
	if !p.opts.Rebalance {
		return
	}
	for _, w := range ws {
		if len(w.claims) > 0 || w.stateful || !p.settled(w) {
			continue
		}
		counts := make(map[int]int)
		for _, r := range w.replicas {
			counts[r.node]++
		}
		most, least := -1, -1
		for ni := range p.nodes {
			n := &p.nodes[ni]
			if c := counts[ni]; c > 0 && (most < 0 || c > counts[most]) {
				most = ni
			}
			if n.accepts() && selectorMatches(w.selector, n.labels) && n.fits(w) && (least < 0 || counts[ni] < counts[least]) {
				least = ni
			}
		}
		if most < 0 || least < 0 || counts[most]-counts[least] < 2 {
			continue
		}
		for i := len(w.replicas) - 1; i >= 0; i-- {
			if r := w.replicas[i]; r.node == most {
				p.unassign(r)
				break
			}
		}
	}
}

// settled reports whether every replica of w is placed and available
// where it runs.
func (p *placer) settled(w *workload) bool {
	for _, r := range w.replicas {
		if r.node < 0 || !p.opts.Settled[r.id] {
			return false
		}
	}
	return true
}

// unassign takes replica r off its node, undoing assign (the replica's
// claims stay bound: only replicas without claims are unassigned).
func (p *placer) unassign(r *replica) {
	ni := r.node
	if ni < 0 {
		return
	}
	n := &p.nodes[ni]
	w := r.w
	r.node = -1
	n.cpu -= w.cpu
	n.mem -= w.mem
	n.count--
	n.util = n.utilisation()
	for _, port := range w.ports {
		delete(n.ports, port)
	}
	for _, gi := range n.groups {
		if g := p.groups[gi]; g.pos[ni] >= 0 {
			p.groupUp(g, g.pos[ni])
		}
	}
}
