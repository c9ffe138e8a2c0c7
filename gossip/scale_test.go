package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// scaleTimers are fastTimers eased for 50 nodes sharing two cores with
// other work: probes that time out in 100 ms made members flap when the
// machine's load reached 7.
func scaleTimers(mc *memberlist.Config) {
	fastTimers(mc)
	mc.ProbeInterval = 500 * time.Millisecond
	mc.ProbeTimeout = 400 * time.Millisecond
	mc.GossipInterval = 100 * time.Millisecond
	mc.PushPullInterval = 5 * time.Second
	mc.SuspicionMult = 4
}

// trafficPerNode returns the mean bytes sent per node per second over d.
func trafficPerNode(nodes []*Node, d time.Duration) (bytesPerSec, packetsPerSec float64) {
	before := make([]Stats, len(nodes))
	for i, n := range nodes {
		before[i] = n.Stats()
	}
	time.Sleep(d) // measuring a rate: the window is the point
	var bytes, pkts uint64
	for i, n := range nodes {
		s := n.Stats()
		bytes += s.BytesSent - before[i].BytesSent
		pkts += s.PacketsSent - before[i].PacketsSent
	}
	sec := d.Seconds() * float64(len(nodes))
	return float64(bytes) / sec, float64(pkts) / sec
}

// Test50Nodes runs 50 in-process nodes on loopback: membership converges,
// one leader is elected, a 1 MB placement reaches every node, and killing
// the leader elects a new one with a higher term. It logs the times and
// the idle gossip rate; it asserts none of them (bounded waits only).
func Test50Nodes(t *testing.T) {
	if testing.Short() || raceEnabled {
		// Deliberate: long, and memberlist is ~100x slower under -race (PITFALLS.md).
		t.Skip("50 nodes: not in -short nor under -race")
	}
	const size = 50
	start := time.Now()
	cl := startCluster(t, size, func(i int, c *Config) {
		c.tune = scaleTimers
		c.SettlePeriod = 500 * time.Millisecond
	})
	waitFor(t, 60*time.Second, "50 members everywhere", func() (bool, string) { return converged(cl.nodes, size) })
	tMembers := time.Since(start)
	waitFor(t, 60*time.Second, "one leader", func() (bool, string) { return oneLeader(cl.nodes) })
	tLeader := time.Since(start)
	leader := cl.nodes[0].Leader()

	time.Sleep(2 * time.Second) // the claim's metadata broadcasts retransmit for a while: we measure idle
	bps, pps := trafficPerNode(cl.nodes, 3*time.Second)

	t1 := time.Now()
	p, err := cl.nodes[0].PublishPlacement("abc", bigBlob(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "1 MB placement on all 50", func() (bool, string) { return samePlacement(cl.nodes, p) })
	tPlace := time.Since(t1)

	t2 := time.Now()
	if err := cl.nodes[0].Shutdown(); err != nil {
		t.Fatal(err)
	}
	rest := cl.live()
	waitFor(t, 60*time.Second, "a new leader", func() (bool, string) {
		if ok, msg := oneLeader(rest); !ok {
			return false, msg
		}
		l := rest[0].Leader()
		return l.Term > leader.Term, fmt.Sprintf("term %d", l.Term)
	})
	tFailover := time.Since(t2)
	t.Logf("50 nodes (probe 500ms, gossip 100ms, push-pull 5s, settle 500ms): membership converged in %s, one leader at %s; "+
		"1 MB placement on all 50 in %s; leader killed -> new leader agreed by all 49 in %s; idle gossip %.0f B/s and %.1f packets/s sent per node",
		tMembers.Round(time.Millisecond), tLeader.Round(time.Millisecond), tPlace.Round(time.Millisecond),
		tFailover.Round(time.Millisecond), bps, pps)
}

// TestIdleTrafficLAN measures, with the production LAN timers (1 s
// probes) and the default settle period on 10 nodes, the idle gossip rate
// and the time from killing the leader to a new leader agreed by all.
// Push-pull (every 30 s) falls outside the window; its size is logged.
func TestIdleTrafficLAN(t *testing.T) {
	if testing.Short() {
		// Deliberate: a measurement, kept out of -short on purpose.
		t.Skip("a 4 s measurement: not in -short")
	}
	cl := startCluster(t, 10, func(i int, c *Config) {
		c.tune = nil
		c.Profile = ProfileLAN
		c.SettlePeriod = DefaultSettlePeriod
	})
	waitFor(t, 30*time.Second, "10 members", func() (bool, string) { return converged(cl.nodes, 10) })
	for _, n := range cl.nodes {
		n.SetStatus(NodeStatus{Commit: "0123456789abcdef0123456789abcdef01234567", PodsRunning: 20, PodsReady: 20, Ready: true})
	}
	waitFor(t, 30*time.Second, "statuses everywhere", func() (bool, string) {
		for _, n := range cl.nodes {
			if len(n.Statuses()) != 10 {
				return false, n.Name()
			}
		}
		return true, ""
	})
	waitFor(t, 30*time.Second, "one leader", func() (bool, string) { return oneLeader(cl.nodes) })
	time.Sleep(2 * time.Second) // let the status and claim broadcasts finish retransmitting: we measure idle
	bps, pps := trafficPerNode(cl.nodes, 4*time.Second)
	state := (*delegate)(cl.nodes[0]).LocalState(false)
	leader := cl.nodes[0].Leader()
	start := time.Now()
	cl.nodes[0].Shutdown()
	rest := cl.live()
	waitFor(t, 40*time.Second, "a new leader", func() (bool, string) {
		ok, msg := oneLeader(rest)
		return ok && rest[0].Leader().Term > leader.Term, msg
	})
	t.Logf("10 nodes, LAN timers, idle: %.0f B/s and %.1f packets/s sent per node; push-pull user state %d bytes (+ memberlist's node list) every 30 s; "+
		"leader killed -> new leader agreed by all 9 in %s (settle %s)",
		bps, pps, len(state), time.Since(start).Round(time.Millisecond), DefaultSettlePeriod)
}
