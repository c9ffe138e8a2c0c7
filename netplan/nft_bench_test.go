package netplan

import (
	"slices"
	"testing"
)

// BenchmarkEndpointChange is the Go side of one endpoint change among
// 1,000 Services × 10 endpoints, as the agent does it: build the ruleset,
// compare it with the one programmed, diff (bench/services.sh times the
// whole path, nft included).
func BenchmarkEndpointChange(b *testing.B) {
	in := bigInput(1000, 10)
	old := mustBuild(b, in)
	svc := &in.Services[500]
	svc.Ports[0].Endpoints = append(slices.Clone(svc.Ports[0].Endpoints[1:]), ep("10.245.0.1", 8080, "n9"))
	b.ResetTimer()
	for range b.N {
		r, err := BuildRuleset(in)
		if err != nil || r.Equal(old) {
			b.Fatal("no change", err)
		}
		if ch := Diff(old, r); ch.Text == "" {
			b.Fatal("empty diff")
		}
	}
}

// BenchmarkEndpointChangePlanner is the same change through a Planner:
// only the changed Service is rebuilt and diffed (the periodic full check
// off, as between two checks). The change alternates between two
// endpoints so that every plan has work.
func BenchmarkEndpointChangePlanner(b *testing.B) {
	in := bigInput(1000, 10)
	p := &Planner{CheckEvery: -1}
	if _, err := p.Plan(in); err != nil {
		b.Fatal(err)
	}
	svc := &in.Services[500]
	eps := [2][]Endpoint{svc.Ports[0].Endpoints,
		append(slices.Clone(svc.Ports[0].Endpoints[1:]), ep("10.245.0.1", 8080, "n9"))}
	b.ResetTimer()
	for i := range b.N {
		svc.Ports[0].Endpoints = eps[(i+1)%2]
		ch, err := p.Plan(in)
		if err != nil || ch.Text == "" || ch.Full {
			b.Fatal("no incremental change", err)
		}
	}
}
