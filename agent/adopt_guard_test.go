package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/scheduler"
)

// TestClusterFollowerRefusesRollback: a leader (a holder of the gossip key
// who won a term, or a buggy one) publishes a placement naming an older
// commit. Followers refuse to roll back to it: they keep running the
// commit they applied and say why.
func TestClusterFollowerRefusesRollback(t *testing.T) {
	src := newFakeSource()
	v1 := src.push("v1", map[string]string{"web.yaml": deployment("web", 2, "busybox")})
	v2 := src.push("v2", map[string]string{"web.yaml": deployment("web", 4, "busybox")})
	tc := newTestCluster(t, src)
	for _, name := range []string{"a", "b"} {
		tc.start(name, 0, func(c *Config) { c.Interval = time.Hour })
	}
	tc.waitPods("4 replicas of v2", replicaNames("web", 4))
	lead := tc.leader()
	follower := tc.members[0]
	if follower == lead {
		follower = tc.members[1]
	}
	cur, ok := lead.node.Placement()
	if !ok || cur.Commit != v2.Hash {
		t.Fatalf("placement in force %+v, want commit %s", cur, v2.Hash)
	}
	pub, err := scheduler.Decode(cur.Data)
	if err != nil {
		t.Fatal(err)
	}
	data, err := pub.Encode() // the network allocation too: only the commit is forged
	if err != nil {
		t.Fatal(err)
	}
	// The same assignments, but at v1: published straight through gossip,
	// past the leader's own policy.
	if _, err := lead.node.PublishPlacement(v1.Hash, data); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := follower.agent.Status()
		if e := st.LastError; e != nil && e.Kind == KindNotFastForward && strings.Contains(e.Message, "does not descend") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follower did not refuse the rollback; last error %+v", st.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := follower.agent.Status(); st.Applied == nil || st.Applied.Hash != v2.Hash {
		t.Errorf("follower applied %+v, want v2 %s still", st.Applied, v2.Hash)
	}
	if got := tc.pods()[follower.name]; len(got) != 2 {
		t.Errorf("follower runs %v after the forged placement, want its 2 replicas of v2", got)
	}
}
