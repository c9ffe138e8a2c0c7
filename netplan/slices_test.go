package netplan

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/scheduler"
)

// slicesOf renders the slices of st as node → "PREFIX[ pinned][ idle]".
func slicesOf(st State) map[string]string {
	out := map[string]string{}
	for n, s := range st.Slices {
		v := s.Prefix.String()
		if s.Pinned {
			v += " pinned"
		}
		if !s.IdleSince.IsZero() {
			v += " idle"
		}
		out[n] = v
	}
	return out
}

// lease builds a previous slice, idle for the given time (0: alive).
func lease(prefix string, idle time.Duration, pinned bool) Slice {
	s := Slice{Prefix: pfx(prefix), Pinned: pinned}
	if idle > 0 {
		s.IdleSince = t0.Add(-idle)
	}
	return s
}

func TestSlices(t *testing.T) {
	small := Config{ClusterCIDR: pfx("10.244.0.0/23")} // two /24 slices
	tests := []struct {
		name     string
		cfg      Config
		prev     map[string]Slice
		nodes    []Node
		want     map[string]string
		problems []string // substrings, in order
		notes    []string
	}{
		{name: "a single host takes the first slice", nodes: []Node{alive("a")},
			want: map[string]string{"a": "10.244.0.0/24"}},
		{name: "new hosts in name order, lowest slice first", nodes: []Node{alive("c"), alive("a"), alive("b")},
			want: map[string]string{"a": "10.244.0.0/24", "b": "10.244.1.0/24", "c": "10.244.2.0/24"}},
		{name: "sticky whatever the names", prev: map[string]Slice{"b": lease("10.244.0.0/24", 0, false)},
			nodes: []Node{alive("a"), alive("b")},
			want:  map[string]string{"a": "10.244.1.0/24", "b": "10.244.0.0/24"}},
		{name: "a freed gap is filled first", prev: map[string]Slice{"a": lease("10.244.0.0/24", 0, false), "c": lease("10.244.2.0/24", 0, false)},
			nodes: []Node{alive("a"), alive("b"), alive("c"), alive("d")},
			want:  map[string]string{"a": "10.244.0.0/24", "b": "10.244.1.0/24", "c": "10.244.2.0/24", "d": "10.244.3.0/24"}},
		{name: "suspect hosts keep their slice but get no new one", prev: map[string]Slice{"a": lease("10.244.0.0/24", 0, false)},
			nodes: []Node{suspect("a"), suspect("b")},
			want:  map[string]string{"a": "10.244.0.0/24"}},
		{name: "a dead host keeps its slice, idle", prev: map[string]Slice{"a": lease("10.244.0.0/24", 0, false)},
			nodes: []Node{dead("a", t0.Add(-time.Hour)), alive("b")},
			want:  map[string]string{"a": "10.244.0.0/24 idle", "b": "10.244.1.0/24"}},
		{name: "a dead host without a slice gets none", nodes: []Node{dead("a", t0)}, want: map[string]string{}},
		{name: "a host that left keeps its slice", prev: map[string]Slice{"a": lease("10.244.0.0/24", 0, false)},
			nodes: []Node{left("a")}, want: map[string]string{"a": "10.244.0.0/24 idle"}},
		{name: "a host back alive is no longer idle", prev: map[string]Slice{"a": lease("10.244.0.0/24", 2*time.Hour, false)},
			nodes: []Node{alive("a")}, want: map[string]string{"a": "10.244.0.0/24"}},
		{name: "a missing host keeps its slice within the retention", prev: map[string]Slice{"a": lease("10.244.0.0/24", time.Hour, false)},
			nodes: []Node{alive("b")}, want: map[string]string{"a": "10.244.0.0/24 idle", "b": "10.244.1.0/24"}},
		{name: "a missing host past the retention loses its slice", prev: map[string]Slice{"a": lease("10.244.0.0/24", 25*time.Hour, false)},
			nodes: []Node{alive("b")}, want: map[string]string{"b": "10.244.0.0/24"},
			notes: []string{"node a: slice 10.244.0.0/24 released: gone since 2026-01-01T02:04:05Z"}},
		{name: "a listed dead host past the retention keeps its slice while others are free",
			prev:  map[string]Slice{"a": lease("10.244.0.0/24", 48*time.Hour, false)},
			nodes: []Node{dead("a", t0.Add(-48*time.Hour)), alive("b")},
			want:  map[string]string{"a": "10.244.0.0/24 idle", "b": "10.244.1.0/24"}},
		{name: "an exhausted range reclaims the longest idle slice past the retention", cfg: small,
			prev:  map[string]Slice{"a": lease("10.244.0.0/24", 30*time.Hour, false), "b": lease("10.244.1.0/24", 48*time.Hour, false)},
			nodes: []Node{dead("a", time.Time{}), dead("b", time.Time{}), alive("c")},
			want:  map[string]string{"a": "10.244.0.0/24 idle", "c": "10.244.1.0/24"},
			notes: []string{"node b: slice 10.244.1.0/24 reclaimed: cluster-cidr exhausted, down since 2025-12-31T03:04:05Z"}},
		{name: "an exhausted range reclaims nothing within the retention", cfg: small,
			prev:     map[string]Slice{"a": lease("10.244.0.0/24", time.Hour, false), "b": lease("10.244.1.0/24", 0, false)},
			nodes:    []Node{dead("a", t0.Add(-time.Hour)), alive("b"), alive("c")},
			want:     map[string]string{"a": "10.244.0.0/24 idle", "b": "10.244.1.0/24"},
			problems: []string{"node c: no slice: cluster-cidr 10.244.0.0/23 exhausted (2 slices of /24, all held)"}},
		{name: "every host past the end of the range is told", cfg: small,
			nodes: []Node{alive("a"), alive("b"), alive("c"), alive("d")},
			want:  map[string]string{"a": "10.244.0.0/24", "b": "10.244.1.0/24"},
			problems: []string{"node c: no slice: cluster-cidr 10.244.0.0/23 exhausted",
				"node d: no slice: cluster-cidr 10.244.0.0/23 exhausted"}},
		{name: "a pin is honoured and skipped by others", nodes: []Node{pinned("a", "10.244.0.0/24"), alive("b")},
			want: map[string]string{"a": "10.244.0.0/24 pinned", "b": "10.244.1.0/24"}},
		{name: "a smaller pin leaves the rest of its /24 unused", nodes: []Node{pinned("a", "10.244.0.128/25"), alive("b")},
			want: map[string]string{"a": "10.244.0.128/25 pinned", "b": "10.244.1.0/24"}},
		{name: "a pin never takes a held slice", prev: map[string]Slice{"b": lease("10.244.0.0/24", 0, false)},
			nodes:    []Node{pinned("a", "10.244.0.0/23"), alive("b")},
			want:     map[string]string{"b": "10.244.0.0/24"},
			problems: []string{"node a: no slice: pod-subnet 10.244.0.0/23 overlaps the slice 10.244.0.0/24 of node b"}},
		{name: "of two new conflicting pins the first name wins", nodes: []Node{pinned("b", "10.244.5.0/24"), pinned("a", "10.244.5.0/24")},
			want:     map[string]string{"a": "10.244.5.0/24 pinned"},
			problems: []string{"node b: no slice: pod-subnet 10.244.5.0/24 overlaps the slice 10.244.5.0/24 of node a"}},
		{name: "a pin outside the cluster-cidr is refused", nodes: []Node{pinned("a", "192.168.0.0/24")},
			want:     map[string]string{},
			problems: []string{"node a: no slice: pod-subnet 192.168.0.0/24 is outside the cluster-cidr 10.244.0.0/16"}},
		{name: "a pin with host bits is refused", nodes: []Node{pinned("a", "10.244.1.1/24"), pinned("b", "10.244.2.0/31")},
			want: map[string]string{},
			problems: []string{"node a: pod-subnet 10.244.1.1/24: want an IPv4 network address of at most /30",
				"node b: pod-subnet 10.244.2.0/31: want an IPv4 network address of at most /30"}},
		{name: "a pin reclaims an overlapping slice past the retention",
			prev:  map[string]Slice{"b": lease("10.244.3.0/24", 48*time.Hour, false)},
			nodes: []Node{pinned("a", "10.244.3.0/24"), dead("b", time.Time{})},
			want:  map[string]string{"a": "10.244.3.0/24 pinned"},
			notes: []string{"node b: slice 10.244.3.0/24 reclaimed for the pod-subnet of node a"}},
		{name: "a pin equal to the held slice marks it pinned", prev: map[string]Slice{"a": lease("10.244.2.0/24", 0, false)},
			nodes: []Node{pinned("a", "10.244.2.0/24")}, want: map[string]string{"a": "10.244.2.0/24 pinned"}},
		{name: "a changed pin replaces the slice", prev: map[string]Slice{"a": lease("10.244.2.0/24", 0, true)},
			nodes: []Node{pinned("a", "10.244.9.0/24")}, want: map[string]string{"a": "10.244.9.0/24 pinned"},
			notes: []string{"node a: slice 10.244.2.0/24 replaced by its pod-subnet 10.244.9.0/24"}},
		{name: "a dropped pin keeps the slice", prev: map[string]Slice{"a": lease("10.244.9.0/24", 0, true)},
			nodes: []Node{alive("a")}, want: map[string]string{"a": "10.244.9.0/24"}},
		{name: "a gone host keeps its pinned slice", prev: map[string]Slice{"a": lease("10.244.9.0/24", 0, true)},
			want: map[string]string{"a": "10.244.9.0/24 pinned idle"}},
		{name: "a changed cluster-cidr moves the slices outside it", cfg: Config{ClusterCIDR: pfx("10.50.0.0/16")},
			prev:  map[string]Slice{"a": lease("10.244.0.0/24", 0, false)},
			nodes: []Node{alive("a")}, want: map[string]string{"a": "10.50.0.0/24"},
			notes: []string{"node a: slice 10.244.0.0/24 is outside the cluster-cidr 10.50.0.0/16: given up"}},
		{name: "a changed slice size keeps the held slices", cfg: Config{SliceBits: 26},
			prev:  map[string]Slice{"a": lease("10.244.0.0/24", 0, false)},
			nodes: []Node{alive("a"), alive("b")}, want: map[string]string{"a": "10.244.0.0/24", "b": "10.244.1.0/26"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := &State{Term: 1, Seq: 1, Slices: tt.prev}
			st, rep, err := Allocate(prev, tt.nodes, nil, Options{Term: 1, Now: t0, Config: tt.cfg})
			if err != nil {
				t.Fatal(err)
			}
			got := slicesOf(st)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("slices:\n got %v\nwant %v", got, tt.want)
			}
			checkFindings(t, "problems", rep.Problems, tt.problems)
			checkFindings(t, "notes", rep.Notes, tt.notes)
		})
	}
}

// checkFindings checks that got holds one finding per wanted prefix, in order.
func checkFindings(t *testing.T, what string, got []Finding, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
		return
	}
	for i := range want {
		if !strings.HasPrefix(got[i].String(), want[i]) {
			t.Errorf("%s[%d]: got %q, want it to start with %q", what, i, got[i], want[i])
		}
	}
}

func TestSlicesDeadSinceIsRecordedOnce(t *testing.T) {
	down := t0.Add(-10 * time.Minute)
	st, _, err := Allocate(nil, []Node{alive("a")}, nil, Options{Term: 1, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	st2, _, err := Allocate(&st, []Node{dead("a", down)}, nil, Options{Now: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if got := st2.Slices["a"].IdleSince; !got.Equal(down) {
		t.Errorf("IdleSince = %s, want the node's DownSince %s", got, down)
	}
	st3, _, err := Allocate(&st2, []Node{dead("a", down)}, nil, Options{Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if st3.Seq != st2.Seq || !st3.Slices["a"].IdleSince.Equal(down) {
		t.Errorf("a later round changed the state: seq %d → %d, IdleSince %s", st2.Seq, st3.Seq, st3.Slices["a"].IdleSince)
	}
}

// TestSlicesProperties runs random rounds of membership changes against a
// small range and checks the allocator's promises after every round.
func TestSlicesProperties(t *testing.T) {
	cfg := Config{ClusterCIDR: pfx("10.244.0.0/26"), SliceBits: 29, SliceRetention: time.Hour} // 8 slices
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}
	pins := []string{"", "", "", "", "10.244.0.0/29", "10.244.0.8/29", "10.244.0.32/28", "10.244.0.60/30", "192.168.0.0/24"}
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		var prev *State
		now := t0
		states := map[string]Node{}
		for round := 0; round < 60; round++ {
			now = now.Add(time.Duration(rng.IntN(40)) * time.Minute)
			// Change a few nodes: join, die, leave, vanish, pin, unpin.
			for k := rng.IntN(4); k >= 0; k-- {
				name := names[rng.IntN(len(names))]
				n := Node{Name: name, State: scheduler.NodeState(rng.IntN(4))}
				if n.State == scheduler.NodeDead {
					n.DownSince = now.Add(-time.Duration(rng.IntN(30)) * time.Minute)
				}
				if old, ok := states[name]; ok && rng.IntN(3) > 0 {
					n.PodSubnet = old.PodSubnet
				} else if p := pins[rng.IntN(len(pins))]; p != "" {
					n.PodSubnet = pfx(p)
				}
				if rng.IntN(8) == 0 {
					delete(states, name)
				} else {
					states[name] = n
				}
			}
			var nodes []Node
			for _, name := range sortedKeys(states) {
				nodes = append(nodes, states[name])
			}
			st, rep, err := Allocate(prev, nodes, nil, Options{Term: 1, Now: now, Config: cfg})
			if err != nil {
				t.Fatalf("seed %d round %d: %v", seed, round, err)
			}
			ctx := fmt.Sprintf("seed %d round %d", seed, round)
			checkSliceInvariants(t, ctx, cfg, prev, &st, rep, states, now)
			again, _, err := Allocate(&st, nodes, nil, Options{Term: 1, Now: now, Config: cfg})
			if err != nil || !again.Equal(&st) || again.Seq != st.Seq {
				t.Fatalf("%s: allocating again changed the state (err %v): %v → %v", ctx, err, slicesOf(st), slicesOf(again))
			}
			prev = &st
		}
	}
}

// checkSliceInvariants checks one round's promises.
func checkSliceInvariants(t *testing.T, ctx string, cfg Config, prev, st *State, rep Report, nodes map[string]Node, now time.Time) {
	t.Helper()
	if a, b, ok := overlappingSlices(st.Slices); ok {
		t.Fatalf("%s: nodes %s and %s overlap: %v", ctx, a, b, slicesOf(*st))
	}
	if err := st.check(); err != nil {
		t.Fatalf("%s: %v", ctx, err)
	}
	for name, s := range st.Slices {
		n, known := nodes[name]
		if !within(s.Prefix, cfg.ClusterCIDR) {
			t.Fatalf("%s: node %s has %s, outside the range", ctx, name, s.Prefix)
		}
		if known && n.PodSubnet.IsValid() && s.Prefix != n.PodSubnet {
			t.Fatalf("%s: node %s pins %s but has %s", ctx, name, n.PodSubnet, s.Prefix)
		}
		if up := known && n.up(); up != s.IdleSince.IsZero() {
			t.Fatalf("%s: node %s (known %v, %v) has IdleSince %v", ctx, name, known, n.State, s.IdleSince)
		}
	}
	for name, n := range nodes {
		_, has := st.Slices[name]
		if n.State == scheduler.NodeAlive && !has && len(rep.For("node "+name)) == 0 {
			t.Fatalf("%s: alive node %s has no slice and no reason: %v", ctx, name, rep)
		}
	}
	if prev == nil {
		return
	}
	for name, old := range prev.Slices {
		n, known := nodes[name]
		cur, has := st.Slices[name]
		switch {
		case has && cur.Prefix == old.Prefix:
		case known && n.PodSubnet.IsValid():
			// The host's own pin decides, or conflicts.
		case !old.IdleSince.IsZero() && now.Sub(old.IdleSince) >= cfg.SliceRetention && !(known && n.up()):
			// Released or reclaimed after the retention.
		case old.Pinned && known && !n.PodSubnet.IsValid() && !has:
			t.Fatalf("%s: node %s dropped its pin and lost its slice %s", ctx, name, old.Prefix)
		default:
			t.Fatalf("%s: node %s (%+v) lost its slice %s (now %v); notes %v", ctx, name, n, old.String(), cur, rep.Notes)
		}
	}
}

func TestSliceFreeSearchSkipsLargeHeldRanges(t *testing.T) {
	cfg := Config{ClusterCIDR: pfx("10.0.0.0/8"), SliceBits: 24, ServiceCIDR: pfx("172.16.0.0/16")}
	prev := &State{Slices: map[string]Slice{"big": lease("10.0.0.0/9", 0, true)}}
	nodes := []Node{pinned("big", "10.0.0.0/9"), alive("x"), alive("y")}
	st, rep, err := Allocate(prev, nodes, nil, Options{Term: 1, Now: t0, Config: cfg})
	if err != nil || len(rep.Problems) > 0 {
		t.Fatal(err, rep)
	}
	got := []netip.Prefix{st.Slices["x"].Prefix, st.Slices["y"].Prefix}
	want := []netip.Prefix{pfx("10.128.0.0/24"), pfx("10.128.1.0/24")}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
