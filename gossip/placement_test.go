package gossip

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestAdoptable(t *testing.T) {
	cur := Placement{Term: 3, Seq: 5}
	for _, tc := range []struct {
		name    string
		highest uint64
		p       Placement
		want    bool
	}{
		{"next seq", 3, Placement{Term: 3, Seq: 6}, true},
		{"same", 3, Placement{Term: 3, Seq: 5}, false},
		{"older seq", 3, Placement{Term: 3, Seq: 4}, false},
		{"older term, higher seq", 3, Placement{Term: 2, Seq: 99}, false},
		{"new term", 3, Placement{Term: 4, Seq: 1}, true},
		{"deposed leader after a newer term is known", 4, Placement{Term: 3, Seq: 6}, false},
		{"newer term than any seen", 3, Placement{Term: 9, Seq: 1}, true},
		{"zero", 0, Placement{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Adoptable(cur, tc.highest, tc.p); got != tc.want {
				t.Fatalf("Adoptable(%v, %d, %v) = %v, want %v", cur, tc.highest, tc.p, got, tc.want)
			}
		})
	}
}

// TestNodeAdoptsOnlyHigher offers placements to a node in every order: it
// ends holding the highest, whatever came after.
func TestNodeAdoptsOnlyHigher(t *testing.T) {
	cl := startCluster(t, 1, func(i int, c *Config) { c.Eligible = false }) // no claims: terms come from the placements alone
	n := cl.nodes[0]
	n.mu.Lock()
	n.highest = 0
	n.mu.Unlock()
	ps := []Placement{{Term: 1, Seq: 1}, {Term: 1, Seq: 2}, {Term: 2, Seq: 1}, {Term: 2, Seq: 7}, {Term: 1, Seq: 9}}
	for i := range 20 {
		r := rand.New(rand.NewPCG(uint64(i), 1))
		r.Shuffle(len(ps), func(a, b int) { ps[a], ps[b] = ps[b], ps[a] })
		n.mu.Lock()
		n.placement, n.placementEnc = Placement{}, nil
		n.mu.Unlock()
		for _, p := range ps {
			p.Data = []byte(fmt.Sprintf("%d.%d", p.Term, p.Seq))
			n.offerPlacement(p, "test")
		}
		got, _ := n.Placement()
		if got.Term != 2 || got.Seq != 7 || string(got.Data) != "2.7" {
			t.Fatalf("order %v: holds %v, want 2.7", ps, got)
		}
	}
}

// samePlacement holds when every node holds p (version and bytes).
func samePlacement(nodes []*Node, p Placement) (bool, string) {
	for _, n := range nodes {
		got, ok := n.Placement()
		if !ok || got.Term != p.Term || got.Seq != p.Seq {
			return false, fmt.Sprintf("%s holds %d.%d", n.Name(), got.Term, got.Seq)
		}
		if got.Commit != p.Commit || !bytes.Equal(got.Data, p.Data) {
			return false, fmt.Sprintf("%s holds %d.%d with other content", n.Name(), got.Term, got.Seq)
		}
	}
	return true, ""
}

// bigBlob is n bytes that compress poorly, as an encoded placement of
// 10,000 replicas with hashes in it would; a sixteenth of that under the
// race detector (see race_on_test.go).
func bigBlob(n int) []byte {
	if raceEnabled {
		n /= 16
	}
	r := rand.New(rand.NewPCG(42, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestBigPlacementSpreads publishes a 2 MB placement (more than 500 nodes
// x 10,000 replicas need) on a 3-node cluster: it must reach every node
// over TCP (pulls and push-pull), never in one UDP packet.
func TestBigPlacementSpreads(t *testing.T) {
	cl := startCluster(t, 3, func(i int, c *Config) { c.tune = relaxedTimers })
	waitFor(t, 10*time.Second, "one leader", func() (bool, string) { return oneLeader(cl.nodes) })
	p, err := cl.nodes[0].PublishPlacement("deadbeef", bigBlob(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "2 MB placement everywhere", func() (bool, string) { return samePlacement(cl.nodes, p) })
	p2, err := cl.nodes[0].PublishPlacement("deadbeef2", bigBlob(2<<20+1))
	if err != nil {
		t.Fatal(err)
	}
	if p2.Term != p.Term || p2.Seq != p.Seq+1 {
		t.Fatalf("second placement = %d.%d, want %d.%d", p2.Term, p2.Seq, p.Term, p.Seq+1)
	}
	waitFor(t, 60*time.Second, "second placement everywhere", func() (bool, string) { return samePlacement(cl.nodes, p2) })
	if _, err := cl.nodes[1].PublishPlacement("x", nil); err == nil {
		t.Fatal("a follower published a placement")
	}
}

// TestPushPullCarriesBigState: with no broadcast at all, a push-pull
// tells a peer of a newer 2 MB placement and the peer pulls it over TCP
// (what a joining node, or one that missed every notice, relies on);
// statuses ride the push-pull itself.
func TestPushPullCarriesBigState(t *testing.T) {
	cl := startCluster(t, 2, func(i int, c *Config) { c.tune = relaxedTimers })
	a, b := cl.nodes[0], cl.nodes[1]
	waitFor(t, 10*time.Second, "one leader", func() (bool, string) { return oneLeader(cl.nodes) })
	p := Placement{Term: a.Leader().Term, Seq: 2, Leader: "n00", Commit: "c0ffee", Data: bigBlob(2 << 20)}
	a.mu.Lock()
	a.setPlacementLocked(p) // adopted without a notice
	a.statuses["n00"] = NodeStatus{Node: "n00", Version: 1, Commit: "c0ffee", PodsRunning: 7, PodsReady: 6, Ready: true}
	a.mu.Unlock()
	state := (*delegate)(a).LocalState(false)
	if len(state) > 1024 {
		t.Fatalf("push-pull state is %d bytes: the placement must not ride it", len(state))
	}
	(*delegate)(b).MergeRemoteState(state, false)
	s, ok := b.Statuses()["n00"]
	if !ok || s.PodsRunning != 7 || s.PodsReady != 6 || !s.Ready || s.Commit != "c0ffee" {
		t.Fatalf("status after merge = %+v, %v", s, ok)
	}
	waitFor(t, 60*time.Second, "the 2 MB placement pulled", func() (bool, string) { return samePlacement([]*Node{b}, p) })
}

func TestStatusSpreads(t *testing.T) {
	cl := startCluster(t, 4, nil)
	waitFor(t, 10*time.Second, "4 members", func() (bool, string) { return converged(cl.nodes, 4) })
	for i, n := range cl.nodes {
		if err := n.SetStatus(NodeStatus{Commit: "abc", PodsRunning: i, PodsReady: i, Ready: true}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "every status everywhere", func() (bool, string) {
		for _, n := range cl.nodes {
			st := n.Statuses()
			for i, o := range cl.nodes {
				s, ok := st[o.Name()]
				if !ok || s.PodsRunning != i || s.Commit != "abc" {
					return false, fmt.Sprintf("%s lacks %s's status", n.Name(), o.Name())
				}
			}
		}
		return true, ""
	})
}

// TestBigStatusSpreads: a status too big for a UDP packet (a host listing
// hundreds of pods) reaches every node through its notice and a pull, not
// only at the next push-pull (which this test puts an hour away), and a
// newer big status replaces it.
func TestBigStatusSpreads(t *testing.T) {
	cl := startCluster(t, 4, func(i int, c *Config) {
		c.tune = func(mc *memberlist.Config) {
			fastTimers(mc)
			mc.PushPullInterval = time.Hour
		}
	})
	waitFor(t, 10*time.Second, "4 members", func() (bool, string) { return converged(cl.nodes, 4) })
	for round := range 2 {
		data := bytes.Repeat([]byte{byte('a' + round)}, 8*maxBroadcastStatus)
		if err := cl.nodes[3].SetStatus(NodeStatus{Commit: "abc", PodsRunning: 300 + round, Data: data}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, fmt.Sprintf("big status %d everywhere", round), func() (bool, string) {
			for _, n := range cl.nodes[:3] {
				s, ok := n.Statuses()[cl.nodes[3].Name()]
				if !ok || s.PodsRunning != 300+round || !bytes.Equal(s.Data, data) {
					return false, fmt.Sprintf("%s has %d pods, %d bytes", n.Name(), s.PodsRunning, len(s.Data))
				}
			}
			return true, ""
		})
	}
}
