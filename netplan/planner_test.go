package netplan

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// mutate makes one random change to in's Services (or, rarely, to what
// every Service depends on), of the kinds the agent sees: an endpoint
// replaced, added or removed, a Service added or deleted, its node port,
// affinity, traffic policy, LoadBalancer flag or source ranges changed,
// two Services given the same VIP, the node IPs changed.
func mutate(rng *rand.Rand, in *RulesetInput, next *int) string {
	svcs := in.Services
	if len(svcs) == 0 {
		svcs = append(svcs, Service{Namespace: "r", Name: "first", ClusterIP: ip("10.96.50.1"), Ports: []Port{tcp(80, 0)}})
	}
	i := rng.IntN(len(svcs))
	s := cloneService(&svcs[i])
	randEp := func() Endpoint {
		return ep(fmt.Sprintf("10.244.%d.%d", rng.IntN(3), 2+rng.IntN(12)), int32(8080+rng.IntN(2)), fmt.Sprint("n", 1+rng.IntN(3)))
	}
	var what string
	switch k := rng.IntN(14); {
	case k < 5 && len(s.Ports) > 0: // endpoint replaced, the usual change
		p := &s.Ports[rng.IntN(len(s.Ports))]
		if len(p.Endpoints) > 0 {
			p.Endpoints[rng.IntN(len(p.Endpoints))] = randEp()
		} else {
			p.Endpoints = append(p.Endpoints, randEp())
		}
		what = "endpoint replaced"
	case k < 7 && len(s.Ports) > 0:
		p := &s.Ports[rng.IntN(len(s.Ports))]
		if len(p.Endpoints) > 0 && rng.IntN(2) == 0 {
			p.Endpoints = slices.Delete(p.Endpoints, 0, 1)
			what = "endpoint removed"
		} else {
			p.Endpoints = append(p.Endpoints, randEp())
			what = "endpoint added"
		}
	case k == 7:
		*next++
		n := Service{Namespace: "r", Name: fmt.Sprint("s", *next), ClusterIP: addr4(u32(ip("10.96.60.0")) + uint32(*next)),
			Ports: []Port{tcp(int32(80+rng.IntN(2)), 0, randEp(), randEp())}}
		if rng.IntN(3) == 0 {
			n.Ports = append(n.Ports, udp(53, randEp()))
		}
		svcs = slices.Insert(svcs, rng.IntN(len(svcs)+1), n)
		in.Services = svcs
		return "service added"
	case k == 8 && len(svcs) > 1:
		in.Services = slices.Delete(svcs, i, i+1)
		return "service deleted"
	case k == 9 && len(s.Ports) > 0:
		s.Ports[0].NodePort = []int32{0, 30100, 30101, 30102}[rng.IntN(4)]
		what = "node port"
	case k == 10:
		s.AffinityTimeout = []int32{0, 0, 60, 600}[rng.IntN(4)]
		what = "affinity"
	case k == 11:
		s.ExternalLocal = !s.ExternalLocal
		what = "traffic policy"
	case k == 12:
		s.LoadBalancer = !s.LoadBalancer
		if rng.IntN(2) == 0 {
			s.SourceRanges = []netip.Prefix{pfx(fmt.Sprintf("192.0.%d.0/24", rng.IntN(3)))}
		} else {
			s.SourceRanges = nil
		}
		what = "load balancer"
	case k == 13 && rng.IntN(4) == 0:
		in.NodeIPs = []netip.Addr{ip(fmt.Sprintf("192.168.1.%d", 10+rng.IntN(3)))}
		return "node IPs"
	case k == 13:
		s.ClusterIP = svcs[rng.IntN(len(svcs))].ClusterIP // maybe another's: a collision
		what = "cluster IP"
	default:
		return "nothing"
	}
	svcs[i] = s
	in.Services = svcs
	return what
}

// TestPlannerEqualsFullBuild applies random sequences of changes and
// checks, at every step, that the Planner's change is the one Diff makes
// between the full builds (text, commands, stale chains) and that its
// table is the full build's.
func TestPlannerEqualsFullBuild(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 13))
			in := rulesetScenario()
			if seed%2 == 1 {
				in = bigInput(30, 3)
			}
			in.Services = slices.Clone(in.Services)
			p := NewPlanner()
			p.CheckEvery = -1 // the full path must not hide a difference
			ch, err := p.Plan(in)
			if err != nil || !ch.Full {
				t.Fatalf("first plan: full %v, err %v", ch.Full, err)
			}
			prev := mustBuild(t, in)
			next := 0
			for step := range 150 {
				what := mutate(rng, &in, &next)
				want := mustBuild(t, in)
				wantCh := Diff(prev, want)
				got, err := p.Plan(in)
				if err != nil {
					t.Fatal(err)
				}
				if got.Text != wantCh.Text || got.Full != wantCh.Full || !slices.Equal(got.Ops, wantCh.Ops) || !slices.Equal(got.Stale, wantCh.Stale) {
					t.Fatalf("step %d (%s): planned change differs from Diff of full builds\n%s", step, what, lineDiff(wantCh.Text, got.Text))
				}
				if !p.Ruleset().Equal(want) {
					t.Fatalf("step %d (%s): planned table differs from the full build\n%s", step, what, lineDiff(want.Text(), p.Ruleset().Text()))
				}
				prev = want
			}
			st := p.Stats()
			if st.Incremental == 0 {
				t.Errorf("no incremental plan: %+v", st)
			}
		})
	}
}

// TestPlannerCheck runs the periodic full build and checks it finds the
// incremental table right.
func TestPlannerCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	in := bigInput(20, 3)
	p := &Planner{CheckEvery: 5}
	if _, err := p.Plan(in); err != nil {
		t.Fatal(err)
	}
	next := 0
	for range 60 {
		mutate(rng, &in, &next)
		if _, err := p.Plan(in); err != nil {
			t.Fatal(err)
		}
	}
	st := p.Stats()
	if st.Mismatches != 0 || st.Full < 12 || st.Incremental == 0 {
		t.Errorf("stats %+v: want checks without mismatches", st)
	}
	p.Reset()
	if ch, err := p.Plan(in); err != nil || !ch.Full || !p.Ruleset().Equal(mustBuild(t, in)) {
		t.Errorf("after Reset: full %v, err %v", ch.Full, err)
	}
}

// TestPlannerNoChange: the same input again plans nothing.
func TestPlannerNoChange(t *testing.T) {
	in := rulesetScenario()
	p := NewPlanner()
	for i := range 3 {
		ch, err := p.Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		if (ch.Text == "") != (i > 0) {
			t.Errorf("plan %d: text %q", i, ch.Text)
		}
	}
}
