package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// TestClusterMetrics: the cluster gauges follow the view at scrape time.
func TestClusterMetrics(t *testing.T) {
	c := &viewCluster{name: "a",
		members: []gossip.Member{{Name: "a", Self: true, State: gossip.StateAlive}, {Name: "b", State: gossip.StateAlive}, {Name: "c", State: gossip.StateAlive}},
		leader:  gossip.Leadership{Leader: "a", Self: true}, quorum: gossip.Quorum{OK: true, Expect: 3, Alive: 3, Needed: 2}}
	a := alertAgent(t, c)
	const names = "kelpie_cluster_members kelpie_cluster_quorum kelpie_cluster_leader kelpie_cluster_leader_known"
	want := func(step, text string) {
		t.Helper()
		if err := testutil.GatherAndCompare(a.metrics.reg, strings.NewReader(text), strings.Fields(names)...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	head := `# HELP kelpie_cluster_leader 1 when this host is the cluster's leader, 0 when it is not.
# TYPE kelpie_cluster_leader gauge
kelpie_cluster_leader %s
# HELP kelpie_cluster_leader_known 1 when this host follows a leader (itself included), 0 while it knows none.
# TYPE kelpie_cluster_leader_known gauge
kelpie_cluster_leader_known %s
# HELP kelpie_cluster_members Members of the cluster as this host sees them, this host included, by state: alive, dead or left.
# TYPE kelpie_cluster_members gauge
kelpie_cluster_members{state="alive"} %s
kelpie_cluster_members{state="dead"} %s
kelpie_cluster_members{state="left"} 0
# HELP kelpie_cluster_quorum 1 when this host sees a quorum of the expected hosts alive (placement changes may be made), 0 when not.
# TYPE kelpie_cluster_quorum gauge
kelpie_cluster_quorum %s
`
	fill := func(vals ...string) string {
		s := head
		for _, v := range vals {
			s = strings.Replace(s, "%s", v, 1)
		}
		return s
	}
	want("all well", fill("1", "1", "3", "0", "1"))
	c.member("b").State = gossip.StateDead
	c.member("c").State = gossip.StateDead
	c.quorum = gossip.Quorum{Expect: 3, Alive: 1, Needed: 2}
	c.leader = gossip.Leadership{}
	want("two lost", fill("0", "0", "1", "2", "0"))
}

// TestCrashLoopingMetric: kelpie_containers_crashlooping counts what the
// crash-loop alert fires for.
func TestCrashLoopingMetric(t *testing.T) {
	a := alertAgent(t, nil)
	now := a.clock.Now()
	for _, s := range []struct {
		streak int
		want   float64
	}{{2, 0}, {3, 1}, {0, 0}} {
		c := reconciler.ActualContainer{Name: "main", State: reconciler.Exited, ExitCode: 1, Streak: s.streak, StartedAt: now.Add(-time.Minute)}
		a.observed(reconciler.Actual{Pods: []reconciler.ActualPod{{Namespace: "ns", Name: "web-0", Containers: []reconciler.ActualContainer{c}}}}, now)
		if got := testutil.ToFloat64(a.ops.met.crashLooping); got != s.want {
			t.Fatalf("streak %d: kelpie_containers_crashlooping %v, want %v", s.streak, got, s.want)
		}
	}
	if n, err := testutil.GatherAndCount(a.metrics.reg, "kelpie_cluster_members"); err != nil || n != 0 {
		t.Fatalf("an agent on its own reports kelpie_cluster_members: %d series, %v", n, err)
	}
}
