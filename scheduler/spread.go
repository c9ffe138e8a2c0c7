package scheduler

// The spread rule picks, for each replica, the candidate node (alive,
// eligible, matching the nodeSelector, with room) that minimises
// (replicas of the same workload, utilisation, replicas, name).
//
// Done naively that is a scan of every node for every replica. Instead,
// every distinct nodeSelector gets a group: an indexed min-heap of its
// candidate nodes ordered by (utilisation, replicas, name), kept up to
// date as replicas are assigned (a node is in as many heaps as there are
// distinct selectors it matches). A replica then takes the top node that
// runs no replica of its workload yet and has room, popping the few that
// do not qualify and pushing them back afterwards: O(log m) a replica.
// Only once every candidate runs a replica of the workload (more replicas
// than candidates, or sticky replicas everywhere) does a workload fall back
// to a heap of its own over the candidates: O(m + k log m) for k replicas,
// and then k is at least about m.

// group is the candidate nodes of one nodeSelector.
type group struct {
	// members are the candidate node indexes, in name order.
	members []int
	// heap holds members ordered by groupLess; pos[ni] is ni's index in
	// heap, or -1 when ni is not in it.
	heap []int
	pos  []int
}

// group returns w's candidate group, building it on first use.
func (p *placer) group(w *workload) *group {
	if gi, ok := p.groupOf[w.selKey]; ok {
		return p.groups[gi]
	}
	gi := len(p.groups)
	g := &group{pos: make([]int, len(p.nodes))}
	for i := range p.nodes {
		g.pos[i] = -1
		if n := &p.nodes[i]; n.accepts() && selectorMatches(w.selector, n.labels) {
			g.members = append(g.members, i)
			n.groups = append(n.groups, gi)
		}
	}
	g.heap = append([]int(nil), g.members...)
	for i, ni := range g.heap {
		g.pos[ni] = i
	}
	for i := len(g.heap)/2 - 1; i >= 0; i-- {
		p.groupDown(g, i)
	}
	p.groups = append(p.groups, g)
	p.groupOf[w.selKey] = gi
	return g
}

// groupLess orders nodes a and b by utilisation, replicas, then name.
func (p *placer) groupLess(a, b int) bool {
	na, nb := &p.nodes[a], &p.nodes[b]
	if na.util != nb.util {
		return na.util < nb.util
	}
	if na.count != nb.count {
		return na.count < nb.count
	}
	return a < b
}

// groupSwap swaps heap entries i and j.
func (g *group) swap(i, j int) {
	g.heap[i], g.heap[j] = g.heap[j], g.heap[i]
	g.pos[g.heap[i]] = i
	g.pos[g.heap[j]] = j
}

// groupDown moves entry i down to its place.
func (p *placer) groupDown(g *group, i int) {
	for {
		l := 2*i + 1
		if l >= len(g.heap) {
			return
		}
		m := l
		if r := l + 1; r < len(g.heap) && p.groupLess(g.heap[r], g.heap[l]) {
			m = r
		}
		if !p.groupLess(g.heap[m], g.heap[i]) {
			return
		}
		g.swap(i, m)
		i = m
	}
}

// groupUp moves entry i up to its place.
func (p *placer) groupUp(g *group, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !p.groupLess(g.heap[i], g.heap[parent]) {
			return
		}
		g.swap(i, parent)
		i = parent
	}
}

// groupPop removes the top node.
func (p *placer) groupPop(g *group) {
	last := len(g.heap) - 1
	g.swap(0, last)
	g.pos[g.heap[last]] = -1
	g.heap = g.heap[:last]
	p.groupDown(g, 0)
}

// groupPush inserts node ni.
func (p *placer) groupPush(g *group, ni int) {
	g.heap = append(g.heap, ni)
	g.pos[ni] = len(g.heap) - 1
	p.groupUp(g, len(g.heap)-1)
}

// nodeChanged restores the order of every group heap holding node ni,
// whose load just grew.
func (p *placer) nodeChanged(ni int) {
	for _, gi := range p.nodes[ni].groups {
		if g := p.groups[gi]; g.pos[ni] >= 0 {
			p.groupDown(g, g.pos[ni])
		}
	}
}

// utilisation is the node's load: the larger of its cpu and memory
// fractions, over the dimensions it limits.
func (n *nodeState) utilisation() float64 {
	u := 0.0
	if c := n.Capacity.CPUMilli; c > 0 {
		u = float64(n.cpu) / float64(c)
	}
	if m := n.Capacity.MemoryBytes; m > 0 {
		u = max(u, float64(n.mem)/float64(m))
	}
	return u
}

// heapEntry is a candidate node with its full spread key.
type heapEntry struct {
	ni    int     // node index; nodes are sorted by name
	same  int     // replicas of the workload on the node
	util  float64 // utilisation
	count int     // replicas on the node
}

// less orders candidates: fewest replicas of the workload, then least
// utilised, then fewest replicas, then first by name.
func (a heapEntry) less(b heapEntry) bool {
	if a.same != b.same {
		return a.same < b.same
	}
	if a.util != b.util {
		return a.util < b.util
	}
	if a.count != b.count {
		return a.count < b.count
	}
	return a.ni < b.ni
}

// entry computes node ni's key for the workload being placed.
func (p *placer) entry(ni int) heapEntry {
	n := &p.nodes[ni]
	return heapEntry{ni: ni, same: p.wcount[ni], util: n.util, count: n.count}
}

// beginWorkload counts w's placed replicas per node in p.wcount.
func (p *placer) beginWorkload(w *workload) {
	for _, r := range w.replicas {
		if r.node >= 0 {
			p.wcount[r.node]++
		}
	}
}

// endWorkload zeroes p.wcount again.
func (p *placer) endWorkload(w *workload) {
	for _, r := range w.replicas {
		if r.node >= 0 {
			p.wcount[r.node] = 0
		}
	}
}

// pickSpread places replicas on the top nodes of w's group that run none
// of w yet, then, if replicas remain, with pickFallback.
func pickSpread(p *placer, w *workload, reps []*replica) int {
	g := p.group(w)
	p.beginWorkload(w)
	defer p.endWorkload(w)
	aside := p.aside[:0]
	placed := 0
	for placed < len(reps) && len(g.heap) > 0 {
		ni := g.heap[0]
		if p.wcount[ni] > 0 || !p.nodes[ni].fits(w) {
			p.groupPop(g)
			aside = append(aside, ni)
			continue
		}
		p.assign(reps[placed], ni)
		p.wcount[ni]++
		placed++
	}
	if placed < len(reps) {
		placed += p.pickFallback(w, reps[placed:], g.members)
	}
	for _, ni := range aside {
		p.groupPush(g, ni)
	}
	p.aside = aside[:0]
	return placed
}

// pickFallback places replicas with a heap of w's own over its candidates,
// keyed by the full spread key: O(m + k log m). A node that cannot fit a
// replica of w is dropped for good, since placing w only fills nodes.
func (p *placer) pickFallback(w *workload, reps []*replica, cands []int) int {
	h := p.heap[:0]
	for _, ni := range cands {
		if p.nodes[ni].fits(w) {
			h = append(h, p.entry(ni))
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	placed := 0
	for placed < len(reps) && len(h) > 0 {
		ni := h[0].ni
		if !p.nodes[ni].fits(w) {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
			siftDown(h, 0)
			continue
		}
		p.assign(reps[placed], ni)
		placed++
		p.wcount[ni]++
		h[0] = p.entry(ni)
		siftDown(h, 0)
	}
	p.heap = h[:0]
	return placed
}

// siftDown restores the order of h below i.
func siftDown(h []heapEntry, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].less(h[l]) {
			m = r
		}
		if !h[m].less(h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
