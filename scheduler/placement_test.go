package scheduler

import (
	"slices"
	"testing"
)

// TestDiff checks the moves between two placements and their log lines.
func TestDiff(t *testing.T) {
	from := &Placement{Assignments: assignments("default/web-0", "n1", "default/web-2", "n1", "default/web-10", "n2", "default/old", "n3")}
	to := &Placement{Assignments: assignments("default/web-0", "n1", "default/web-2", "n3", "default/web-10", "n2", "default/web-11", "n1")}
	var got []string
	for _, m := range Diff(from, to) {
		got = append(got, m.String())
	}
	want := []string{"default/old removed from n3", "default/web-2 n1 -> n3", "default/web-11 added on n1"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if len(Diff(nil, nil)) != 0 || len(Diff(to, to)) != 0 {
		t.Error("want no moves between equal placements")
	}
	if n := len(Diff(nil, to)); n != 4 {
		t.Errorf("from nil: %d moves, want 4", n)
	}
}

// TestOnNode lists a node's replicas in natural order.
func TestOnNode(t *testing.T) {
	p := &Placement{Assignments: assignments("default/web-10", "n1", "default/web-9", "n1", "default/web-1", "n2", "default/api-0", "n1")}
	got := p.OnNode("n1")
	want := []string{"default/api-0", "default/web-9", "default/web-10"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if (*Placement)(nil).OnNode("n1") != nil {
		t.Error("nil placement: want nothing")
	}
}

// TestNewer checks the (term, seq) order agents adopt placements by.
func TestNewer(t *testing.T) {
	p := func(term, seq uint64) *Placement { return &Placement{Term: term, Seq: seq} }
	for _, tt := range []struct {
		a, b *Placement
		want bool
	}{
		{p(1, 2), p(1, 1), true},
		{p(1, 1), p(1, 2), false},
		{p(2, 1), p(1, 9), true},
		{p(1, 9), p(2, 1), false},
		{p(1, 1), p(1, 1), false},
		{p(1, 1), nil, true},
		{nil, p(1, 1), false},
	} {
		if got := tt.a.Newer(tt.b); got != tt.want {
			t.Errorf("%v.Newer(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestNaturalLess checks the order of replica names.
func TestNaturalLess(t *testing.T) {
	names := []string{"web-10", "web-2", "web-002", "api", "web-1", "web-01a"}
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case naturalLess(a, b):
			return -1
		case naturalLess(b, a):
			return 1
		}
		return 0
	})
	want := []string{"api", "web-1", "web-01a", "web-2", "web-002", "web-10"}
	if !slices.Equal(names, want) {
		t.Errorf("got %q, want %q", names, want)
	}
}

// TestNodeStateString names the states.
func TestNodeStateString(t *testing.T) {
	for s, want := range map[NodeState]string{NodeAlive: "alive", NodeSuspect: "suspect", NodeDead: "dead", NodeLeft: "left", 9: "NodeState(9)"} {
		if s.String() != want {
			t.Errorf("%d: got %s, want %s", int(s), s, want)
		}
	}
}
