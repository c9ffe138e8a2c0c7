package faults

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// The cluster of TestClusterCrashLoop: a bridge in the machine's network
// namespace holding faultNetGateway, and one network namespace per host
// joined to it, with the address 10.236.0.1N, where the host's agent runs
// (gossip and HTTP on that address; its pod bridge and rules inside). Each
// host's pod subnet is the one nethost.New claimed, a slice of
// faultClusterCIDR.
const (
	faultNetBridge   = "kfltcbr"
	faultNetGateway  = "10.236.0.1"
	faultNetns       = "kelpie-fltc-" // + the host's letter
	faultVeth        = "kfltc"        // + the host's letter: the root side
	faultGossipPort  = 7946
	faultListenPort  = 7070
	faultClusterCIDR = "10.248.0.0/16" // holds every subnet nethost.New claims
)

// faultCluster is a cluster of rigs, each in a network namespace of its
// own, following the bare repository of the first.
type faultCluster struct {
	t     *testing.T
	key   string // the gossip key
	ns    string // the Kubernetes namespace of the Deployments
	hosts []*rig
}

// newFaultCluster makes n hosts (n ≤ 3) on the containerd at addr. Their
// agents are started with startAll. When the test ends every agent is
// killed before any host is emptied and checked.
func newFaultCluster(t *testing.T, addr string, n int) *faultCluster {
	t.Helper()
	testenv.Root(t)
	testenv.Binary(t, "nsenter", "util-linux")
	testenv.Binary(t, "ip", "iproute2")
	// One run at a time on the machine: the names and addresses are fixed.
	testenv.Lock(t, "faults-cluster-10.236", 10*time.Minute)
	key, err := gossip.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c := &faultCluster{t: t, key: key}
	for i := range 3 { // leftovers of a run that ended without its cleanup
		faultHostNet(i).Unplug()
	}
	nethost.NewBridge(t, faultNetBridge, faultNetGateway+"/24")
	bin := nethost.BuildKelpie(t)
	for i := range n {
		netns := faultHostNet(i)
		netns.Plug(t)
		t.Cleanup(netns.Unplug) // after the host's cleanup, registered below
		ip, _, _ := strings.Cut(netns.Addr, "/")
		r := newHostRig(t, addr, bin, &netns, "flt-"+string(rune('a'+i)), fmt.Sprintf("%s:%d", ip, faultListenPort))
		c.hosts = append(c.hosts, r)
	}
	c.ns = c.hosts[0].ns
	for _, r := range c.hosts {
		r.ns = c.ns
	}
	t.Cleanup(func() {
		for _, r := range c.hosts {
			if r.agent != nil {
				r.kill()
			}
		}
	})
	return c
}

// faultHostNet is the network namespace of host number i.
func faultHostNet(i int) nethost.Netns {
	letter := string(rune('a' + i))
	return nethost.Netns{Name: faultNetns + letter, Veth: faultVeth + letter,
		Bridge: faultNetBridge, Addr: fmt.Sprintf("10.236.0.%d/24", 11+i)}
}

// start runs host i's agent, a member of the cluster.
func (c *faultCluster) start(i int) {
	c.t.Helper()
	r := c.hosts[i]
	ip, _, _ := strings.Cut(r.listen, ":")
	var join []string
	for j, o := range c.hosts {
		if j != i {
			oip, _, _ := strings.Cut(o.listen, ":")
			join = append(join, fmt.Sprintf("%s:%d", oip, faultGossipPort))
		}
	}
	r.start(c.hosts[0].bare, "--interval", "5s",
		"--bind", fmt.Sprintf("%s:%d", ip, faultGossipPort),
		"--join", strings.Join(join, ","),
		"--expect", strconv.Itoa(len(c.hosts)),
		"--gossip-key", c.key,
		"--gossip-profile", "fast",
		"--reschedule-after", "3s",
		// Replicas that moved off a host while it was down stay where
		// they are: a returning host is given replicas back one at a
		// time, steps this test cannot tell from the end of a sync.
		"--rebalance=false",
		"--cluster-cidr", faultClusterCIDR)
}

// push commits the Deployments of want to the repository the cluster
// follows.
func (c *faultCluster) push(msg string, want fleet) string {
	c.t.Helper()
	files := map[string]string{}
	for name, d := range want {
		files[name+".yaml"] = testenv.Deployment{Name: name, Namespace: c.ns, Replicas: d.replicas,
			Container: testenv.Container{Command: `"sleep", "3600"`, Version: d.version, Grace: new(0)}}.YAML()
	}
	return c.hosts[0].push(msg, files)
}

// fleet is one desired state of a cluster test: Deployments of busybox
// pods that sleep, by name.
type fleet map[string]deployment

// deployment is a Deployment of a fleet: its replicas and the version that
// makes its template.
type deployment struct {
	replicas int
	version  string
}

// clusterView is what the agents of a cluster say at one moment.
type clusterView struct {
	status map[string]agent.Status // by node, the agents that answered
	errs   map[string]error        // by node, the agents that did not
}

// view reads every agent's status.
func (c *faultCluster) view() clusterView {
	v := clusterView{status: map[string]agent.Status{}, errs: map[string]error{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range c.hosts {
		wg.Go(func() {
			s, err := r.status()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				v.errs[r.listen] = err
				return
			}
			v.status[s.Node] = s
		})
	}
	wg.Wait()
	return v
}

// leader is the leader every agent follows; "" when they do not agree.
func (v clusterView) leader() string {
	leader := ""
	for _, s := range v.status {
		if s.Cluster == nil || s.Cluster.Leader == "" || (leader != "" && s.Cluster.Leader != leader) {
			return ""
		}
		leader = s.Cluster.Leader
	}
	return leader
}

// converged returns "" when every one of n agents answers, sees all n
// members alive, follows one leader and one placement of commit, has
// applied commit without an error, and the pods they run (each Running
// with an address of its host's subnet) are exactly want's replicas, none
// twice; else what is not so yet.
func (c *faultCluster) converged(v clusterView, commit string, want fleet) string {
	if len(v.status) != len(c.hosts) {
		return fmt.Sprintf("%d of %d agents answer (%v)", len(v.status), len(c.hosts), v.errs)
	}
	var place *agent.PlacementStatus
	running := map[string][]string{} // pod name → nodes
	for node, s := range v.status {
		switch {
		case s.Applied == nil || s.Applied.Hash != commit:
			return fmt.Sprintf("%s has not applied %.12s (applied %v, pending %v)", node, commit, s.Applied, s.Pending)
		case s.LastError != nil:
			return fmt.Sprintf("%s: last error %s: %s", node, s.LastError.Kind, s.LastError.Message)
		case s.Pending != nil:
			return fmt.Sprintf("%s: pending %v", node, s.Pending)
		case s.Cluster == nil || s.Cluster.Placement == nil:
			return fmt.Sprintf("%s has no placement", node)
		}
		alive := 0
		for _, m := range s.Cluster.Members {
			if m.State == string(gossip.StateAlive) {
				alive++
			}
		}
		if alive != len(c.hosts) {
			return fmt.Sprintf("%s sees %d members alive", node, alive)
		}
		p := s.Cluster.Placement
		if p.Commit != commit || len(p.Waiting) > 0 || len(p.Unplaceable) > 0 {
			return fmt.Sprintf("%s: placement %d.%d of %.12s, waiting %v, unplaceable %v", node, p.Term, p.Seq, p.Commit, p.Waiting, p.Unplaceable)
		}
		if place != nil && (place.Term != p.Term || place.Seq != p.Seq) {
			return fmt.Sprintf("placements differ: %d.%d and %d.%d", place.Term, place.Seq, p.Term, p.Seq)
		}
		place = p
		r := c.host(node)
		for _, pod := range s.Pods {
			if pod.State != "Running" || !strings.HasPrefix(pod.IP, r.hc.SubnetPrefix()) {
				return fmt.Sprintf("%s: pod %s is %s at %q", node, pod.Name, pod.State, pod.IP)
			}
			running[slotOf(pod.Name)] = append(running[slotOf(pod.Name)], node)
		}
	}
	if v.leader() == "" {
		return "the agents follow different leaders"
	}
	count := map[string]int{}
	for name, nodes := range running {
		if len(nodes) > 1 {
			return fmt.Sprintf("pod %s (or its surge pod) runs %d times, on %v", name, len(nodes), nodes)
		}
		count[deploymentOf(name)]++
	}
	for name, d := range want {
		if count[name] != d.replicas {
			return fmt.Sprintf("%d replicas of %s run, want %d", count[name], name, d.replicas)
		}
	}
	for name, n := range count {
		if _, ok := want[name]; !ok {
			return fmt.Sprintf("%d pods of %s run, which is not desired", n, name)
		}
	}
	// The leader paces a rollout: until it ends, replicas of the previous
	// template run, as the placement says.
	for node, s := range v.status {
		r := c.host(node)
		for _, p := range s.Pods {
			got, err := version(r, p.Namespace, p.Name)
			if want := want[deploymentOf(p.Name)].version; err != nil || got != want {
				return fmt.Sprintf("pod %s on %s runs version %q (%v), not yet %q", p.Name, node, got, err, want)
			}
		}
	}
	return ""
}

// version is the VERSION variable of the container of pod namespace/name
// on the host of r, as containerd holds it.
func version(r *rig, namespace, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := r.hc.CD.LoadContainer(ctx, nethost.StateName(namespace, name)+"_main")
	if err != nil {
		return "", err
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return "", err
	}
	for _, kv := range spec.Process.Env {
		if v, ok := strings.CutPrefix(kv, "VERSION="); ok {
			return v, nil
		}
	}
	return "", nil
}

// deploymentOf is the Deployment a replica's name ("NAME-INDEX") belongs to.
func deploymentOf(pod string) string {
	pod = slotOf(pod)
	if i := strings.LastIndex(pod, "-"); i > 0 {
		return pod[:i]
	}
	return pod
}

// slotOf is the replica a pod holds: its own name, or for a pod started
// beside a Deployment's replica by maxSurge (NAME-i-HASH), NAME-i.
func slotOf(pod string) string {
	if slot, ok := reconciler.SlotOf(pod); ok {
		return slot
	}
	return pod
}

// host is the rig of node.
func (c *faultCluster) host(node string) *rig {
	for _, r := range c.hosts {
		if r.node == node {
			return r
		}
	}
	c.t.Fatalf("no host %s", node)
	return nil
}

// waitConverged waits until the cluster converged on commit running want,
// then checks every host from outside kelpie: exactly the pods its agent
// says it runs, each container of the version its Deployment has now,
// nothing leaked. Converged means so for a second on one placement. It
// returns the last view.
func (c *faultCluster) waitConverged(what string, timeout time.Duration, commit string, want fleet) clusterView {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var since time.Time // when the cluster was first seen converged on placement last
	var last [2]uint64  // term, seq
	for {
		v := c.view()
		why := c.converged(v, commit, want)
		switch {
		case why != "":
			since = time.Time{}
		case since.IsZero() || last != v.placement():
			since, last = time.Now(), v.placement()
		case time.Since(since) >= time.Second:
			// Converged on one placement for a second: no other step was
			// under way.
			c.check(what, v)
			return v
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, r := range c.hosts {
				fmt.Fprintf(&logs, "----- agent %s log:\n%s\n", r.node, r.log())
			}
			c.t.Fatalf("timed out after %v waiting for %s: %s\n%s", timeout, what, why, logs.String())
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}
}

// placement is the term and sequence number of one of the agents'
// placements (converged: all follow the same).
func (v clusterView) placement() [2]uint64 {
	for _, s := range v.status {
		if s.Cluster != nil && s.Cluster.Placement != nil {
			return [2]uint64{s.Cluster.Placement.Term, s.Cluster.Placement.Seq}
		}
	}
	return [2]uint64{}
}

// check compares each host with the pods its agent reports.
func (c *faultCluster) check(what string, v clusterView) {
	c.t.Helper()
	for node, s := range v.status {
		r := c.host(node)
		w := nethost.Want{Pods: map[string]nethost.WantPod{}}
		var names []string
		for _, p := range s.Pods {
			w.Pods[p.Namespace+"/"+p.Name] = nethost.WantPod{Containers: []string{"main"}}
			names = append(names, p.Name)
		}
		sort.Strings(names)
		if problems := r.hc.Settle(w); len(problems) > 0 {
			c.t.Errorf("%s: host %s (running %v) differs from what its agent says:\n- %s", what, node, names, strings.Join(problems, "\n- "))
		}
	}
}

// clusterCrashRounds is the number of kill points of TestClusterCrashLoop:
// 3, KELPIE_FAULTS_LONG makes it 20, KELPIE_CRASH_ITERATIONS sets it.
func clusterCrashRounds(t *testing.T) int {
	if os.Getenv("KELPIE_CRASH_ITERATIONS") == "" && os.Getenv("KELPIE_FAULTS_LONG") == "" {
		return 3
	}
	if os.Getenv("KELPIE_CRASH_ITERATIONS") == "" {
		return 20
	}
	return crashIterations(t)
}

// TestClusterCrashLoop is TestAgentCrashLoop with placement in the loop:
// three agents, each in a network namespace of its own, form a cluster
// and follow one repository. Commits that create, update and delete
// Deployments are pushed in turn; after each push one agent (the leader
// at the first kill point and every third, else one drawn at random) is
// SIGKILLed at a random moment of the sync, stays down for a random time
// (long enough, at times, for its replicas to move) and is restarted.
// After each round every agent must follow one leader and one placement
// of the pushed commit, every desired replica must run exactly once across
// the cluster with the current template, and no host may hold anything
// else. The seed, each victim and kill point are logged; KELPIE_CRASH_SEED
// replays a run.
func TestClusterCrashLoop(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	rng := crashRand(t)
	c := newFaultCluster(t, addr, 3)

	// A → B updates web, deletes extra and creates more; B → A undoes it.
	a := fleet{"keep": {2, "1"}, "web": {3, "a"}, "extra": {2, "a"}}
	b := fleet{"keep": {2, "1"}, "web": {3, "b"}, "more": {1, "b"}}
	targets := []fleet{a, b}

	commit := c.push("A", a)
	began := time.Now()
	for i := range c.hosts {
		c.start(i)
	}
	v := c.waitConverged("A, cold", 3*time.Minute, commit, a)
	t.Logf("the cluster converged on A %v after the agents started; leader %s", time.Since(began).Round(time.Millisecond), v.leader())

	// Without kills: how long a sync of a change takes.
	began = time.Now()
	commit = c.push("probe", b)
	v = c.waitConverged("probe", 2*time.Minute, commit, b)
	full := time.Since(began)
	t.Logf("a change without kills converges %v after the push", full.Round(time.Millisecond))

	const maxDown = 8 * time.Second // beyond ~6 s (3 s to be seen dead, 3 s --reschedule-after) its replicas move
	for i := range clusterCrashRounds(t) {
		target := targets[i%2]
		leader := v.leader()
		victim := rng.IntN(len(c.hosts))
		if i%3 == 0 {
			victim = slices.IndexFunc(c.hosts, func(r *rig) bool { return r.node == leader })
		}
		delay := time.Duration(rng.Float64() * float64(full))
		down := time.Duration(rng.Float64() * float64(maxDown))
		name := c.hosts[victim].node
		commit = c.push("round "+strconv.Itoa(i), target)
		time.Sleep(delay) // the kill point, drawn from the seed
		c.hosts[victim].kill()
		time.Sleep(down) // the time the agent stays down, drawn from the seed
		c.start(victim)
		began := time.Now()
		t.Logf("kill point %d: %s (leader: %v) killed %v after the push of %.12s, down %v", i, name, name == leader,
			delay.Round(time.Millisecond), commit, down.Round(time.Millisecond))
		v = c.waitConverged("round "+strconv.Itoa(i), 2*time.Minute, commit, target)
		t.Logf("kill point %d: converged %v after the restart; leader %s", i, time.Since(began).Round(time.Millisecond), v.leader())
	}
	for _, r := range c.hosts {
		r.stop()
	}
}
