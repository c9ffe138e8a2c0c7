package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// pickNaive is the baseline the benchmarks compare pickSpread with, and
// the reference the property tests hold it to: for every replica, scan
// every node, test its state, selector and room, and keep the best key.
// O(replicas × nodes), no candidate groups, no heaps.
func pickNaive(p *placer, w *workload, reps []*replica) int {
	p.beginWorkload(w)
	defer p.endWorkload(w)
	for i, r := range reps {
		best := -1
		var bestKey heapEntry
		for ni := range p.nodes {
			n := &p.nodes[ni]
			if !n.accepts() || !selectorMatches(w.selector, n.labels) || !n.fits(w) {
				continue
			}
			if k := p.entry(ni); best < 0 || k.less(bestKey) {
				best, bestKey = ni, k
			}
		}
		if best < 0 {
			return i
		}
		p.assign(r, best)
		p.wcount[best]++
	}
	return len(reps)
}

// BenchmarkPlace measures Place (indexed: candidate cache and a heap per
// workload) against the naive scan, cold (no previous placement) and
// sticky (the previous placement is the answer: nothing changes), on
// Deployments of 1–40 replicas and on single Pods.
//
//	go test -run '^$' -bench BenchmarkPlace -benchmem ./scheduler/
func BenchmarkPlace(b *testing.B) {
	for _, size := range []struct {
		nodes, replicas, maxReplicas int
		shape                        string
	}{
		{50, 1000, 40, "deployments"},
		{500, 10000, 40, "deployments"},
		{1000, 10000, 40, "deployments"},
		{500, 10000, 1, "pods"},
	} {
		d, nodes := genCluster(rand.New(rand.NewPCG(1, 1)), benchConfig(size.nodes, size.replicas, size.maxReplicas))
		o := opts()
		cold, rep, err := Place(d, nodes, nil, o)
		if err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("nodes=%d/replicas=%d/%s", size.nodes, len(cold.Assignments)+len(rep.Unplaceable), size.shape)
		for _, mode := range []struct {
			name string
			prev *Placement
		}{{"cold", nil}, {"sticky", &cold}} {
			for _, pick := range []struct {
				name string
				f    pickFunc
			}{{"indexed", pickSpread}, {"naive", pickNaive}} {
				b.Run(name+"/"+mode.name+"/"+pick.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, _, err := place(d, nodes, mode.prev, o, pick.f); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
