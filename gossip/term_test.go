package gossip

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// TestForgedTermDoesNotWedge is the audit's reproduction: a holder of the
// gossip key sends a placement with Term = MaxUint64. Before the fence,
// every node adopted it, the next claim computed MaxUint64+1 = 0 and the
// cluster could never place again. Now the forged placement is refused
// and the cluster keeps electing and placing.
func TestForgedTermDoesNotWedge(t *testing.T) {
	cl := startCluster(t, 3, nil)
	waitFor(t, 10*time.Second, "3 members", func() (bool, string) { return converged(cl.nodes, 3) })
	waitFor(t, 10*time.Second, "one leader", func() (bool, string) { return oneLeader(cl.nodes) })
	lead := cl.nodes[0].Leader()

	forged := []Placement{
		{Term: math.MaxUint64, Seq: 1, Leader: "n02", Commit: "evil"},              // the wrap
		{Term: MaxTerm + 1, Seq: 1, Leader: "n02", Commit: "evil"},                 // above the cap
		{Term: lead.Term + MaxTermStep + 1, Seq: 1, Leader: "n02", Commit: "evil"}, // an absurd jump
		{Term: lead.Term, Seq: math.MaxUint64, Leader: "n00", Commit: "evil"},      // seq that ends the term
		{Term: lead.Term, Seq: 99, Leader: "n02", Commit: "evil"},                  // the term is n00's, not n02's
	}
	for _, p := range forged {
		(*delegate)(cl.nodes[1]).NotifyMsg(encodePlacementMsg(p))
		(*delegate)(cl.nodes[2]).NotifyMsg(encodeNotice(msgPlacementNotice, notice{Term: p.Term, Seq: p.Seq, Node: "n02"}))
	}
	for _, n := range cl.nodes {
		if got, ok := n.Placement(); ok && got.Commit == "evil" {
			t.Fatalf("%s adopted a forged placement: %s", n.Name(), got)
		}
		if h := n.HighestTerm(); h > lead.Term+1 {
			t.Fatalf("%s: highest term %d after forged placements (leader's term %d)", n.Name(), h, lead.Term)
		}
	}

	// The leader can still place, and everyone adopts it.
	p, err := cl.nodes[0].PublishPlacement("good", []byte("x"))
	if err != nil {
		t.Fatalf("publish after forged placements: %v", err)
	}
	waitFor(t, 10*time.Second, "the leader's placement everywhere", func() (bool, string) {
		for _, n := range cl.nodes {
			if got, _ := n.Placement(); got.Commit != "good" || got.Term != p.Term {
				return false, fmt.Sprintf("%s holds %s", n.Name(), got)
			}
		}
		return true, ""
	})

	// A failover still elects a leader above the old term.
	if err := cl.nodes[0].Shutdown(); err != nil {
		t.Fatal(err)
	}
	rest := cl.live()
	waitFor(t, 15*time.Second, "a new leader", func() (bool, string) {
		if ok, msg := oneLeader(rest); !ok {
			return false, msg
		}
		nl := rest[0].Leader()
		return nl.Term > lead.Term && nl.Term < lead.Term+10, fmt.Sprintf("leader %s term %d", nl.Leader, nl.Term)
	})
	if _, err := rest[0].PublishPlacement("after", []byte("y")); err != nil {
		t.Fatalf("the new leader cannot place: %v", err)
	}
}

// TestTermPlausible is the pure rule.
func TestTermPlausible(t *testing.T) {
	for _, c := range []struct {
		term, highest uint64
		ok            bool
	}{
		{1, 0, true},
		{MaxTerm, 0, true},
		{MaxTerm + 1, 0, false},
		{math.MaxUint64, 0, false},
		{57, 3, true},
		{3 + MaxTermStep, 3, true},
		{3 + MaxTermStep + 1, 3, false},
		{2, 900, true}, // old terms are harmless: fencing ignores them
	} {
		if got := termPlausible(c.term, c.highest); got != c.ok {
			t.Errorf("termPlausible(%d, %d) = %v, want %v", c.term, c.highest, got, c.ok)
		}
	}
}

// TestDecideNeverWraps: at the term limit, no node claims a term (which
// would be the limit plus one, or 0 after a wrap).
func TestDecideNeverWraps(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, v := range []ElectionView{
		{Self: "a", HighestTerm: MaxTerm, Now: now, Changed: now.Add(-time.Hour), Settle: time.Second,
			Members: []ElectionMember{{Name: "a", Alive: true, Eligible: true}}},
		{Self: "a", HighestTerm: MaxTerm, Now: now, Changed: now.Add(-time.Hour), Settle: time.Second,
			Members: []ElectionMember{{Name: "a", Alive: true, Eligible: true, Term: 5}}},
		{Self: "a", HighestTerm: math.MaxUint64, Now: now, Changed: now.Add(-time.Hour), Settle: time.Second,
			Members: []ElectionMember{{Name: "a", Alive: true, Eligible: true}}},
	} {
		if d := Decide(v); d.Action == Claim {
			t.Errorf("Decide(highest %d, self term %d) claims term %d: %s", v.HighestTerm, v.Members[0].Term, d.Term, d.Reason)
		}
	}
}
