package gossip

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// testKey is a fixed gossip key for tests.
const testKey = "3mvNdwdKjAjC8/9uCYFnOUBf8VH1m/8hxJWYRGBbeLM="

// logBuf collects one node's logs; a failing test prints them.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		l.b.Reset()
	}
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fastTimers shortens memberlist's timers for loopback tests.
func fastTimers(mc *memberlist.Config) {
	mc.ProbeInterval = 100 * time.Millisecond
	mc.ProbeTimeout = 50 * time.Millisecond
	mc.GossipInterval = 20 * time.Millisecond
	mc.PushPullInterval = time.Second
	mc.SuspicionMult = 2
	mc.GossipToTheDeadTime = 2 * time.Second
	mc.TCPTimeout = 10 * time.Second // as on a LAN: a 2 MB placement under -race on a loaded machine needs seconds
	mc.DeadNodeReclaimTime = time.Millisecond
}

// relaxedTimers are for tests that move megabytes and need no fast
// failure detection: probes that survive a loaded machine under -race.
func relaxedTimers(mc *memberlist.Config) {
	fastTimers(mc)
	mc.ProbeInterval = 500 * time.Millisecond
	mc.ProbeTimeout = 400 * time.Millisecond
	mc.SuspicionMult = 4
}

// testConfig is a loopback node on a free port with fast timers.
func testConfig(t testing.TB, name string, logs *logBuf) Config {
	c := DefaultConfig()
	c.NodeName = name
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.Key = testKey
	c.Version = "test"
	c.Capacity = Capacity{CPU: 2000, Memory: 4 << 30}
	c.Labels = map[string]string{"zone": "a"}
	c.SettlePeriod = 300 * time.Millisecond
	c.RejoinInterval = 300 * time.Millisecond
	c.Profile = ProfileLocal
	c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c.tune = fastTimers
	return c
}

// cluster is a set of in-process nodes.
type cluster struct {
	t     testing.TB
	nodes []*Node
	logs  []*logBuf
}

// startCluster starts size nodes n00..; each joins the first.
func startCluster(t testing.TB, size int, adjust func(i int, c *Config)) *cluster {
	t.Helper()
	cl := &cluster{t: t}
	for i := range size {
		logs := &logBuf{}
		c := testConfig(t, fmt.Sprintf("n%02d", i), logs)
		if i > 0 {
			c.Join = []string{cl.nodes[0].Addr()}
		}
		if adjust != nil {
			adjust(i, &c)
		}
		n, err := New(c)
		if err != nil {
			t.Fatalf("start node %d: %v", i, err)
		}
		cl.nodes = append(cl.nodes, n)
		cl.logs = append(cl.logs, logs)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, l := range cl.logs {
				s := l.String()
				if len(s) > 4000 {
					s = s[len(s)-4000:]
				}
				t.Logf("--- logs of node %d (tail) ---\n%s", i, s)
			}
		}
		var wg sync.WaitGroup
		for _, n := range cl.nodes {
			wg.Add(1)
			go func() { defer wg.Done(); n.Shutdown() }()
		}
		wg.Wait()
	})
	return cl
}

// live returns the nodes not shut down.
func (cl *cluster) live() []*Node {
	var out []*Node
	for _, n := range cl.nodes {
		n.mu.Lock()
		stopped := n.stopped
		n.mu.Unlock()
		if !stopped {
			out = append(out, n)
		}
	}
	return out
}

// waitFor polls cond until it holds or timeout passes; msg says what was
// last seen.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// aliveCount counts the alive members a node sees.
func aliveCount(n *Node) int {
	k := 0
	for _, m := range n.Members() {
		if m.State == StateAlive {
			k++
		}
	}
	return k
}

// converged holds when every node sees want alive members.
func converged(nodes []*Node, want int) (bool, string) {
	for _, n := range nodes {
		if k := aliveCount(n); k != want {
			return false, fmt.Sprintf("%s sees %d alive, want %d", n.Name(), k, want)
		}
	}
	return true, ""
}

// oneLeader holds when every node follows the same leader and term, and
// exactly that node leads.
func oneLeader(nodes []*Node) (bool, string) {
	var first Leadership
	leaders := 0
	for i, n := range nodes {
		l := n.Leader()
		if l.Self {
			leaders++
		}
		if l.Leader == "" {
			return false, fmt.Sprintf("%s has no leader (%s)", n.Name(), l.Reason)
		}
		if i == 0 {
			first = l
		} else if l.Leader != first.Leader || l.Term != first.Term {
			return false, fmt.Sprintf("%s follows %s/%d, %s follows %s/%d", nodes[0].Name(), first.Leader, first.Term, n.Name(), l.Leader, l.Term)
		}
	}
	if leaders != 1 {
		return false, fmt.Sprintf("%d nodes lead", leaders)
	}
	return true, ""
}

func TestClusterFormsElectsAndFailsOver(t *testing.T) {
	cl := startCluster(t, 5, nil)
	waitFor(t, 10*time.Second, "5 members", func() (bool, string) { return converged(cl.nodes, 5) })
	waitFor(t, 10*time.Second, "one leader", func() (bool, string) { return oneLeader(cl.nodes) })
	l := cl.nodes[1].Leader()
	if l.Leader != "n00" {
		t.Fatalf("leader = %s, want n00 (the eligible member that sorts first)", l.Leader)
	}
	for _, m := range cl.nodes[3].Members() {
		if m.Meta.Version != "test" || m.Meta.Labels["zone"] != "a" || m.Meta.Capacity.CPU != 2000 || !m.Meta.Eligible {
			t.Fatalf("member %s metadata = %+v", m.Name, m.Meta)
		}
	}

	if err := cl.nodes[0].Shutdown(); err != nil { // the leader dies without a word
		t.Fatal(err)
	}
	rest := cl.live()
	waitFor(t, 15*time.Second, "a new leader above term "+fmt.Sprint(l.Term), func() (bool, string) {
		if ok, msg := oneLeader(rest); !ok {
			return false, msg
		}
		nl := rest[0].Leader()
		return nl.Term > l.Term && nl.Leader == "n01", fmt.Sprintf("leader %s term %d", nl.Leader, nl.Term)
	})
}
