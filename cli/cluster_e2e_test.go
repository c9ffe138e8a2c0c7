package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// The cluster end-to-end test's network: a bridge in the root namespace
// holding clusterE2EGateway, and one network namespace per host, joined to
// the bridge by a veth pair, with the address 10.231.0.1N. Gossip and the
// agents' HTTP endpoints use these addresses only. Each host's pods live on
// a bridge inside its namespace, on a subnet of its own (10.231.1N.0/24).
const (
	clusterE2EBridge    = "kce2ebr"
	clusterE2EGateway   = "10.231.0.1"
	clusterE2ENetns     = "kelpie-ce2e-" // + the host's letter
	clusterE2EVeth      = "kce2e"        // + the host's letter: the root side
	clusterE2EPort      = 7946           // gossip
	clusterE2EListen    = 7070           // HTTP
	clusterE2EKubeNS    = "clustertest"  // the Deployment's namespace
	clusterE2EApp       = "sleeper"      // the Deployment's name
	clusterE2EEnvRuns   = "CLUSTER_E2E_HOSTLOSS_RUNS"
	clusterE2EEnvDef    = "CLUSTER_E2E_DEFAULTS"
	clusterE2EEnvVictim = "CLUSTER_E2E_VICTIM"
)

// clusterE2E is the whole test cluster.
type clusterE2E struct {
	t        *testing.T
	bin      string
	addr     string // containerd's socket
	images   string
	bare     string
	key      string
	defaults bool // agents run with the default --reschedule-after and --interval
	// killLeader makes the host loss benchmark kill the leader rather
	// than a follower.
	killLeader bool
	cd         *containerd.Client
	hosts      []*clusterHost
}

// clusterHost is one host: a network namespace, a containerd namespace, a
// state dir and the `kelpie agent` process running in the namespace.
type clusterHost struct {
	c        *clusterE2E
	name     string // node name: kc-a, kc-b, kc-c
	letter   string
	net      nethost.Netns
	ip       string
	ctrNS    string
	stateDir string
	podNet   string
	bridge   string
	cmd      *exec.Cmd
	log      *lockedBuffer
	done     chan error
	runs     int
	// listen overrides the agent's --listen (default IP:clusterE2EListen);
	// port is its API port.
	listen string
	port   int
}

// apiBase is the base URL of the host's agent API.
func (h *clusterHost) apiBase() string {
	port := h.port
	if port == 0 {
		port = clusterE2EListen
	}
	return fmt.Sprintf("http://%s:%d", h.ip, port)
}

// newClusterE2E prepares the bridge, the binary, the images and the
// repository; hosts are added with addHost.
func newClusterE2E(t *testing.T) *clusterE2E {
	t.Helper()
	addr := testenv.ContainerdAddress(t)
	testenv.Root(t)
	testenv.Binary(t, "git", "git")
	testenv.Binary(t, "ip", "iproute2")
	testenv.Binary(t, "iptables", "iptables")
	testenv.Binary(t, "nsenter", "util-linux")
	clearEnv(t)
	// One run at a time on the machine: the names and subnets are fixed.
	testenv.Lock(t, "cluster-e2e-10.231", 10*time.Minute)
	c := &clusterE2E{t: t, addr: addr, bin: nethost.BuildKelpie(t), images: t.TempDir(),
		bare: filepath.Join(t.TempDir(), "site.git")}
	if err := testimage.WriteLayout(c.images, testimage.Standard()...); err != nil {
		t.Fatal(err)
	}
	key, err := gossip.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c.key = key
	cd, err := containerd.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.cd = cd
	t.Cleanup(func() { cd.Close() })

	// Leftovers of a run that ended without its cleanup.
	for i := range 3 {
		clusterE2EHostNet(i).Unplug()
	}
	nethost.NewBridge(t, clusterE2EBridge, clusterE2EGateway+"/24")
	return c
}

// addHost prepares host number i (0, 1, 2): its network namespace and
// flags. The process starts with start.
func (c *clusterE2E) addHost(i int) *clusterHost {
	t := c.t
	t.Helper()
	letter := string(rune('a' + i))
	h := &clusterHost{c: c, name: "kc-" + letter, letter: letter,
		net:      clusterE2EHostNet(i),
		ip:       fmt.Sprintf("10.231.0.%d", 11+i),
		ctrNS:    fmt.Sprintf("kelpie-ce2e-%s-%d", letter, os.Getpid()),
		stateDir: t.TempDir(),
		podNet:   fmt.Sprintf("10.231.%d.0/24", 11+i),
		bridge:   "kce2p" + letter,
		log:      &lockedBuffer{},
	}
	c.hosts = append(c.hosts, h)
	h.plug()
	t.Cleanup(h.destroy)
	return h
}

// clusterE2ECIDR is the cluster pod range the hosts' pinned pod subnets
// (10.231.11-13.0/24) are slices of; it leaves out the hosts' own network,
// 10.231.0.0/24, which the hosts share as their link.
const clusterE2ECIDR = "10.231.8.0/21"

// clusterE2EHostNet is the network namespace of host number i, joined to
// the test's bridge, with the address 10.231.0.1N.
func clusterE2EHostNet(i int) nethost.Netns {
	letter := string(rune('a' + i))
	return nethost.Netns{Name: clusterE2ENetns + letter, Veth: clusterE2EVeth + letter,
		Bridge: clusterE2EBridge, Addr: fmt.Sprintf("10.231.0.%d/24", 11+i)}
}

// plug creates the host's network namespace and joins it to the bridge.
func (h *clusterHost) plug() { h.net.Plug(h.c.t) }

// unplug deletes the host's network namespace: the host is gone from the
// network, its pod bridge with it.
func (h *clusterHost) unplug() { h.net.Unplug() }

// runtimeFlags are the host's runtime flags, for the agent and for apply.
func (h *clusterHost) runtimeFlags() []string {
	return []string{
		"--containerd-address", h.c.addr,
		"--containerd-namespace", h.ctrNS,
		"--state-dir", h.stateDir,
		"--pod-subnet", h.podNet,
		"--bridge", h.bridge,
		"--image-dir", h.c.images,
		"--node-name", h.name,
	}
}

// start runs `kelpie agent` in the host's network namespace (through
// nsenter: see nethost.Netns.Command), so the process's pid is the agent's.
func (h *clusterHost) start() {
	c := h.c
	c.t.Helper()
	var join []string
	for _, o := range c.hosts {
		if o != h {
			join = append(join, fmt.Sprintf("%s:%d", o.ip, clusterE2EPort))
		}
	}
	listen := h.listen
	if listen == "" {
		listen = fmt.Sprintf("%s:%d", h.ip, clusterE2EListen)
	}
	args := []string{"agent",
		"--repo", c.bare, "--ref", "main", "--path", "apps",
		"--listen", listen,
		"--bind", fmt.Sprintf("%s:%d", h.ip, clusterE2EPort),
		"--join", strings.Join(join, ","),
		"--expect", "3",
		"--api-token", e2eAPIToken, // the listen address is not loopback: reads need it too
		"--cluster-cidr", clusterE2ECIDR,
	}
	if !c.defaults {
		args = append(args, "--reschedule-after", "5s", "--interval", "5s")
	}
	// bench/cluster.sh compares settings through CLUSTER_E2E_ARGS, e.g.
	// "--gossip-profile lan"; later flags win.
	args = append(args, strings.Fields(os.Getenv("CLUSTER_E2E_ARGS"))...)
	args = append(args, h.runtimeFlags()...)
	h.cmd = h.net.Command(c.bin, args...)
	h.cmd.Env = append(os.Environ(), "KELPIE_GOSSIP_KEY="+c.key)
	h.runs++
	fmt.Fprintf(h.log, "=== start %d of %s\n", h.runs, h.name)
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	if err := h.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	h.done = done
	cmd := h.cmd
	go func() { done <- cmd.Wait() }()
}

// kill SIGKILLs the agent by its pid and waits for it.
func (h *clusterHost) kill() {
	if h.cmd == nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.done
	h.cmd = nil
}

// killTasks SIGKILLs every task of the host's containerd namespace: the
// host died, its containers with it.
func (h *clusterHost) killTasks() int {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), h.ctrNS), 30*time.Second)
	defer cancel()
	ctrs, err := h.c.cd.Containers(ctx)
	if err != nil {
		h.c.t.Logf("%s: list containers: %v", h.name, err)
		return 0
	}
	n := 0
	for _, ctr := range ctrs {
		task, err := ctr.Task(ctx, nil)
		if err != nil {
			continue
		}
		if err := task.Kill(ctx, syscall.SIGKILL); err == nil {
			n++
		}
	}
	return n
}

// loseMounts unmounts the pod network namespaces under the host's state
// dir, as the host's death does: they are bind mounts in the machine's
// mount table, which a real host loses when it dies; in the rig they would
// outlive the host's network namespace, each with no interface left (its
// veth died with the host's end). It returns how many it unmounted.
func (h *clusterHost) loseMounts() int {
	ents, err := os.ReadDir(filepath.Join(h.stateDir, "netns"))
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if syscall.Unmount(filepath.Join(h.stateDir, "netns", e.Name()), syscall.MNT_DETACH) == nil {
			n++
		}
	}
	return n
}

// running returns the replicas ("namespace/name") whose every container
// runs in the host's containerd namespace, read from containerd.
func (h *clusterHost) running() map[string]bool {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), h.ctrNS), 30*time.Second)
	defer cancel()
	out := map[string]bool{}
	ctrs, err := h.c.cd.Containers(ctx)
	if err != nil {
		h.c.t.Logf("%s: list containers: %v", h.name, err)
		return out
	}
	stopped := map[string]bool{}
	for _, ctr := range ctrs {
		labels, err := ctr.Labels(ctx)
		if err != nil || labels[reconciler.LabelPod] == "" || labels[reconciler.LabelContainer] == "" {
			continue
		}
		pod := labels[reconciler.LabelPod]
		task, err := ctr.Task(ctx, nil)
		if err != nil {
			stopped[pod] = true
			continue
		}
		st, err := task.Status(ctx)
		if err != nil || st.Status != containerd.Running {
			stopped[pod] = true
			continue
		}
		out[pod] = true
	}
	for pod := range stopped {
		delete(out, pod)
	}
	return out
}

// status reads the agent's /api/v1/status; ok is false when it does not
// answer.
func (h *clusterHost) status() (agent.Status, bool) {
	var s agent.Status
	if h.cmd == nil {
		return s, false
	}
	req, err := http.NewRequest(http.MethodGet, h.apiBase()+"/api/v1/status", nil)
	if err != nil {
		return s, false
	}
	req.Header.Set("Authorization", "Bearer "+e2eAPIToken)
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return s, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&s) != nil {
		return s, false
	}
	return s, true
}

// statusOK is the host's status, asked until it answers, for at most
// 30 s: one request may time out on a loaded machine.
func (h *clusterHost) statusOK(t *testing.T) agent.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s, ok := h.status(); ok {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no status for 30 s", h.name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// destroy is the host's cleanup: the agent is killed, every pod removed by
// `kelpie apply --prune --allow-empty` inside the host's network
// namespace (made again when the test deleted it), what is left reaped,
// and the namespace deleted.
func (h *clusterHost) destroy() {
	t := h.c.t
	h.kill()
	if !h.net.Exists() {
		nethost.RunQuiet("ip", "netns", "add", h.net.Name)
	}
	empty := t.TempDir()
	args := append([]string{"apply", "-f", empty, "--prune", "--allow-empty"}, h.runtimeFlags()...)
	if out, err := h.net.Command(h.c.bin, args...).CombinedOutput(); err != nil {
		t.Errorf("cleanup of %s: kelpie apply --prune: %v\n%s", h.name, err, out)
	}
	// What apply could not remove.
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), h.ctrNS), 30*time.Second)
	defer cancel()
	if ctrs, err := h.c.cd.Containers(ctx); err == nil {
		for _, ctr := range ctrs {
			t.Errorf("cleanup of %s: container %s left after the empty apply; deleting it", h.name, ctr.ID())
			if task, err := ctr.Task(ctx, nil); err == nil {
				_ = task.Kill(ctx, syscall.SIGKILL)
				_, _ = task.Delete(ctx, containerd.WithProcessKill)
			}
			_ = ctr.Delete(ctx, containerd.WithSnapshotCleanup)
		}
	}
	// The images the agent imported, then the namespace itself, so that
	// runs leave no namespace behind.
	if imgs, err := h.c.cd.ImageService().List(ctx); err == nil {
		for _, img := range imgs {
			_ = h.c.cd.ImageService().Delete(ctx, img.Name, images.SynchronousDelete())
		}
	}
	if err := h.c.cd.NamespaceService().Delete(context.Background(), h.ctrNS); err != nil {
		t.Logf("cleanup of %s: delete containerd namespace %s: %v", h.name, h.ctrNS, err)
	}
	// Pod network namespaces are bind mounts under the state dir: the
	// temporary dir cannot be removed while one is mounted.
	if ents, err := os.ReadDir(filepath.Join(h.stateDir, "netns")); err == nil {
		for _, e := range ents {
			p := filepath.Join(h.stateDir, "netns", e.Name())
			if err := syscall.Unmount(p, syscall.MNT_DETACH); err == nil {
				t.Errorf("cleanup of %s: pod network namespace %s left mounted", h.name, e.Name())
			}
		}
	}
	h.unplug()
}

// partition cuts the host's gossip (both ways) with iptables in its
// namespace; the HTTP endpoint stays reachable for the test.
func (h *clusterHost) partition(on bool) {
	op := "-A"
	if !on {
		op = "-D"
	}
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		for _, proto := range []string{"udp", "tcp"} {
			h.net.Run(h.c.t, "iptables", op, chain, "-p", proto, "--dport", strconv.Itoa(clusterE2EPort), "-j", "DROP")
		}
	}
}

// push commits apps/app.yaml and pushes it to the bare repository.
func (c *clusterE2E) push(repo *testenv.GitRepo, msg, text string) string {
	c.t.Helper()
	repo.Write("apps/app.yaml", text)
	sha := repo.Commit(msg)
	repo.Git("push", "-q", c.bare, "main")
	return sha
}

// view is what the test sees of the cluster at one moment.
type view struct {
	status  map[string]agent.Status // by host, hosts that answered
	running map[string][]string     // by host, from containerd (live hosts only)
}

// snapshot reads every host the test considers alive.
func (c *clusterE2E) snapshot(alive ...*clusterHost) view {
	v := view{status: map[string]agent.Status{}, running: map[string][]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range alive {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, ok := h.status()
			r := h.running()
			names := make([]string, 0, len(r))
			for p := range r {
				names = append(names, p)
			}
			sort.Strings(names)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				v.status[h.name] = s
			}
			v.running[h.name] = names
		}()
	}
	wg.Wait()
	return v
}

// replicas counts the running replicas by name across the hosts; dups
// lists those running on more than one.
func (v view) replicas() (total int, distinct int, dups []string) {
	seen := map[string]int{}
	for _, names := range v.running {
		for _, n := range names {
			seen[n]++
			total++
		}
	}
	for n, k := range seen {
		if k > 1 {
			dups = append(dups, n)
		}
	}
	sort.Strings(dups)
	return total, len(seen), dups
}

// spread is the number of running replicas per host, in host order.
func (v view) spread(hosts ...*clusterHost) []int {
	out := make([]int, len(hosts))
	for i, h := range hosts {
		out[i] = len(v.running[h.name])
	}
	return out
}

// statusPods is the number of Running pods the agent reports.
func statusPods(s agent.Status) int {
	n := 0
	for _, p := range s.Pods {
		if p.State == "Running" {
			n++
		}
	}
	return n
}

// oneLeader reports the leader every answering host follows, "" when they
// disagree or none has one, and whether all see the same placement.
func (v view) oneLeader() (string, bool) {
	leader, term, seq := "", uint64(0), uint64(0)
	first := true
	for _, s := range v.status {
		if s.Cluster == nil || s.Cluster.Leader == "" || s.Cluster.Placement == nil {
			return "", false
		}
		if first {
			leader, term, seq = s.Cluster.Leader, s.Cluster.Placement.Term, s.Cluster.Placement.Seq
			first = false
			continue
		}
		if s.Cluster.Leader != leader {
			return "", false
		}
		if s.Cluster.Placement.Term != term || s.Cluster.Placement.Seq != seq {
			return leader, false
		}
	}
	return leader, !first
}

// membersAlive reports whether every answering host sees exactly names
// alive.
func (v view) membersAlive(names ...string) bool {
	for _, s := range v.status {
		if s.Cluster == nil {
			return false
		}
		var alive []string
		for _, m := range s.Cluster.Members {
			if m.State == string(gossip.StateAlive) {
				alive = append(alive, m.Name)
			}
		}
		sort.Strings(alive)
		if !slices.Equal(alive, names) {
			return false
		}
	}
	return len(v.status) > 0
}

// seesDead reports whether every answering host sees name as not alive.
func (v view) seesDead(name string) bool {
	for _, s := range v.status {
		if s.Cluster == nil {
			return false
		}
		for _, m := range s.Cluster.Members {
			if m.Name == name && m.State == string(gossip.StateAlive) {
				return false
			}
		}
	}
	return len(v.status) > 0
}

// describe renders the view for a failure message.
func (v view) describe() string {
	var b strings.Builder
	names := make([]string, 0, len(v.running))
	for n := range v.running {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s: running %v", n, v.running[n])
		if s, ok := v.status[n]; ok && s.Cluster != nil {
			cs := s.Cluster
			fmt.Fprintf(&b, "; leader %q term %d quorum %v (%s)", cs.Leader, cs.Term, cs.Quorum.OK, cs.Quorum.Reason)
			if cs.Placement != nil {
				fmt.Fprintf(&b, "; placement %d.%d by %s, %d replicas, waiting %v", cs.Placement.Term, cs.Placement.Seq, cs.Placement.Leader, cs.Placement.Replicas, cs.Placement.Waiting)
			}
			if cs.Note != "" {
				fmt.Fprintf(&b, "; note %q", cs.Note)
			}
			var ms []string
			for _, m := range cs.Members {
				ms = append(ms, fmt.Sprintf("%s=%s%v", m.Name, m.State, m.Pods))
			}
			fmt.Fprintf(&b, "; members %v", ms)
			if s.LastError != nil {
				fmt.Fprintf(&b, "; lastError %s", s.LastError.Message)
			}
		} else if !ok {
			b.WriteString("; status not answering")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// waitView polls the hosts until cond holds, failing the test (with every
// agent's log) after timeout.
func (c *clusterE2E) waitView(what string, timeout time.Duration, alive []*clusterHost, cond func(view) bool) view {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := c.snapshot(alive...)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s\n%s\n%s", timeout, what, v.describe(), c.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// logs are every agent's log, for a failure.
func (c *clusterE2E) logs() string {
	var b strings.Builder
	for _, h := range c.hosts {
		fmt.Fprintf(&b, "----- agent %s log:\n%s\n", h.name, h.log.String())
	}
	return b.String()
}

// settledSix reports whether the hosts run exactly six distinct replicas
// of the Deployment and every answering agent agrees on one leader and
// placement.
func settledSix(v view) bool {
	total, distinct, dups := v.replicas()
	if total != 6 || distinct != 6 || len(dups) > 0 {
		return false
	}
	_, same := v.oneLeader()
	if !same {
		return false
	}
	for _, s := range v.status {
		if s.Cluster.Placement.Replicas != 6 || len(s.Cluster.Placement.Waiting) > 0 {
			return false
		}
	}
	return true
}

// clusterE2EDeployment is the Deployment the cluster runs.
func clusterE2EDeployment(replicas int) string {
	return strings.ReplaceAll(e2eDeployment(clusterE2EApp, replicas, "busybox:1.36", `["sleep", "3600"]`),
		"namespace: agenttest", "namespace: "+clusterE2EKubeNS)
}

// hostLoss kills victim as a host dies (agent SIGKILLed, its containers
// killed, its network namespace deleted) and waits until the survivors run
// all six replicas. It returns the time from the kill to the survivors
// seeing the host dead, to the new placement, and to all six running.
func (c *clusterE2E) hostLoss(victim *clusterHost, survivors []*clusterHost, timeout time.Duration) (dead, placed, running time.Duration) {
	c.t.Helper()
	before := c.snapshot(survivors...)
	var seq0 [2]uint64
	for _, s := range before.status {
		if s.Cluster != nil && s.Cluster.Placement != nil {
			seq0 = [2]uint64{s.Cluster.Placement.Term, s.Cluster.Placement.Seq}
		}
	}
	start := time.Now()
	victim.kill()
	n := victim.killTasks()
	victim.unplug()
	c.t.Logf("host %s lost: agent SIGKILLed, %d tasks killed, network namespace deleted (%.2fs)", victim.name, n, time.Since(start).Seconds())
	names := make([]string, len(survivors))
	for i, h := range survivors {
		names[i] = h.name
	}
	c.waitView("the survivors to run all six replicas", timeout, survivors, func(v view) bool {
		now := time.Since(start)
		if dead == 0 && v.seesDead(victim.name) && len(v.status) == len(survivors) {
			dead = now
		}
		if placed == 0 {
			for _, s := range v.status {
				if s.Cluster == nil {
					continue
				}
				if p := s.Cluster.Placement; p != nil && (p.Term > seq0[0] || (p.Term == seq0[0] && p.Seq > seq0[1])) {
					for _, m := range s.Cluster.Members {
						if m.Name == victim.name && len(m.Pods) == 0 {
							placed = now
						}
					}
				}
			}
		}
		if !settledSix(v) {
			return false
		}
		for _, s := range v.status {
			if statusPods(s) != len(v.running[s.Node]) {
				return false
			}
		}
		running = now
		return true
	})
	return dead, placed, running
}

// TestClusterEndToEnd runs three `kelpie agent` processes, each in a
// network namespace of its own with its own containerd namespace and state
// dir, following one bare repository: a Deployment of six spreads 2/2/2;
// a host that dies has its replicas run on the other two; it comes back
// and rejoins; a host partitioned away with --expect 3 changes nothing
// while the majority moves its replicas; when the partition heals there is
// one leader and exactly six replicas, none twice.
//
// With CLUSTER_E2E_HOSTLOSS_RUNS=N it measures host loss N times instead
// (with CLUSTER_E2E_DEFAULTS=1 with the default --reschedule-after and
// --interval; with CLUSTER_E2E_VICTIM=leader killing the leader rather than
// a follower): bench/cluster.sh.
func TestClusterEndToEnd(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv(clusterE2EEnvRuns))
	defaults := os.Getenv(clusterE2EEnvDef) == "1"
	if testing.Short() {
		// Deliberate: minutes long, kept out of -short on purpose.
		t.Skip("end-to-end cluster test: not in -short")
	}
	c := newClusterE2E(t)
	c.defaults = defaults
	c.killLeader = os.Getenv(clusterE2EEnvVictim) == "leader"
	repo := testenv.NewGitRepo(t)
	repo.Git("init", "-q", "--bare", "-b", "main", c.bare)
	v1 := c.push(repo, "v1: six sleepers", clusterE2EDeployment(6))

	a, b, cc := c.addHost(0), c.addHost(1), c.addHost(2)
	all := []*clusterHost{a, b, cc}
	start := time.Now()
	for _, h := range all {
		h.start()
	}

	// (1) All three up: 2/2/2.
	v := c.waitView("six replicas spread 2/2/2", 3*time.Minute, all, func(v view) bool {
		return v.membersAlive(a.name, b.name, cc.name) && settledSix(v) && slices.Equal(v.spread(all...), []int{2, 2, 2})
	})
	leader, _ := v.oneLeader()
	t.Logf("(1) 2/2/2 running %.1fs after the agents started; leader %s, commit %.12s\n%s", time.Since(start).Seconds(), leader, v1, v.describe())
	c.checkPodRoutes(all)

	if runs > 0 {
		c.benchHostLoss(runs)
		return
	}

	reschedule := 5 * time.Second
	// (2) A host dies: its replicas run on the other two, 3/3.
	dead, placed, running := c.hostLoss(cc, []*clusterHost{a, b}, 3*time.Minute)
	v = c.snapshot(a, b)
	t.Logf("(2) host loss of %s (--reschedule-after %s): seen dead %.1fs, replicas placed elsewhere %.1fs, all six running %.1fs after the kill; spread %v\n%s",
		cc.name, reschedule, dead.Seconds(), placed.Seconds(), running.Seconds(), v.spread(a, b), v.describe())
	if sp := v.spread(a, b); !slices.Equal(sp, []int{3, 3}) {
		t.Errorf("after the loss of %s the survivors run %v replicas, want 3/3", cc.name, sp)
	}

	// (3) The host comes back: a new process, the same state dir. It
	// rejoins; what it ran before its death is removed, and the leader
	// moves replicas back to it one at a time (--rebalance, the default)
	// until the spread is even again.
	cc.plug()
	start = time.Now()
	cc.start()
	v = c.waitView("the restarted host to rejoin and get its share back", 3*time.Minute, all, func(v view) bool {
		return v.membersAlive(a.name, b.name, cc.name) && settledSix(v) && len(v.status) == 3 && slices.Equal(v.spread(all...), []int{2, 2, 2})
	})
	t.Logf("(3) %s rejoined and the cluster rebalanced to 2/2/2 %.1fs after its restart\n%s", cc.name, time.Since(start).Seconds(), v.describe())

	// (4) Partition the leader away. The minority (one host of three)
	// keeps its pods and publishes nothing; the majority elects a leader
	// and moves the minority's replicas after --reschedule-after.
	leader, _ = v.oneLeader()
	var minority *clusterHost
	var majority []*clusterHost
	for _, h := range all {
		if h.name == leader {
			minority = h
		} else {
			majority = append(majority, h)
		}
	}
	if minority == nil {
		t.Fatalf("no leader among the hosts: %q", leader)
	}
	before := c.snapshot(all...)
	minPods := before.running[minority.name]
	minPlacement := *before.status[minority.name].Cluster.Placement
	if len(minPods) == 0 {
		t.Logf("the partitioned host %s runs no replica: the majority has nothing to move", minority.name)
	}
	start = time.Now()
	minority.partition(true)
	partitioned := true
	t.Cleanup(func() {
		if partitioned {
			minority.partition(false)
		}
	})
	t.Logf("(4) partitioned %s (leader, running %v) away", minority.name, minPods)
	// What the minority changed, each thing once: reported (not fatal)
	// after the majority settled, so that the heal is checked too.
	var changed []string
	minorityChanged := func(v view) {
		note := func(format string, args ...any) {
			if msg := fmt.Sprintf(format, args...); !slices.Contains(changed, msg) {
				changed = append(changed, msg)
				t.Logf("after %.1fs of partition: %s\n%s", time.Since(start).Seconds(), msg, v.describe())
			}
		}
		if s, ok := v.status[minority.name]; ok && s.Cluster != nil && s.Cluster.Placement != nil {
			if p := s.Cluster.Placement; p.Term != minPlacement.Term || p.Seq != minPlacement.Seq {
				note("the minority %s went from placement %d.%d to %d.%d (by %s) during the partition",
					minority.name, minPlacement.Term, minPlacement.Seq, p.Term, p.Seq, p.Leader)
			}
		}
		if !slices.Equal(v.running[minority.name], minPods) {
			note("the minority %s's pods changed during the partition: %v, were %v", minority.name, v.running[minority.name], minPods)
		}
	}
	moved := false
	v = c.waitView("the majority to run all six replicas without the minority", 3*time.Minute, all, func(v view) bool {
		// The minority changes nothing, all along.
		minorityChanged(v)
		// The majority: all six run on its two hosts.
		maj := view{status: map[string]agent.Status{}, running: map[string][]string{}}
		for _, h := range majority {
			if s, ok := v.status[h.name]; ok {
				maj.status[h.name] = s
			}
			maj.running[h.name] = v.running[h.name]
		}
		if len(maj.status) != 2 || !settledSix(maj) {
			return false
		}
		moved = true
		return true
	})
	t.Logf("(4) the majority runs all six %.1fs after the partition (the minority runs %v, was %v; its placement was %d.%d)\n%s",
		time.Since(start).Seconds(), v.running[minority.name], minPods, minPlacement.Term, minPlacement.Seq, v.describe())
	// The minority must not publish a placement: hold on a few seconds
	// more, then check it once again (a deliberate wait: nothing may
	// happen in it).
	time.Sleep(3 * time.Second)
	v = c.snapshot(all...)
	minorityChanged(v)
	if s, ok := v.status[minority.name]; ok && s.Cluster != nil {
		if s.Cluster.Quorum.OK {
			t.Errorf("the minority %s believes it has quorum: %+v", minority.name, s.Cluster.Quorum)
		}
		t.Logf("the minority's view: leader %q term %d, quorum %v (%s); guarantee %q", s.Cluster.Leader, s.Cluster.Term, s.Cluster.Quorum.OK, s.Cluster.Quorum.Reason, s.Cluster.Guarantee)
	} else {
		t.Errorf("the minority %s does not answer", minority.name)
	}
	if len(changed) > 0 {
		t.Errorf("the minority side changed things during the partition (--expect 3, it is 1 of 3):\n- %s\nagent logs:\n%s",
			strings.Join(changed, "\n- "), c.logs())
	}

	// Heal: one leader, exactly six replicas cluster-wide, none twice; the
	// minority dropped the replicas the majority moved.
	minority.partition(false)
	partitioned = false
	start = time.Now()
	v = c.waitView("one leader and exactly six replicas after the heal", 3*time.Minute, all, func(v view) bool {
		if !v.membersAlive(a.name, b.name, cc.name) || len(v.status) != 3 || !settledSix(v) {
			return false
		}
		for _, s := range v.status {
			if statusPods(s) != len(v.running[s.Node]) {
				return false
			}
		}
		return true
	})
	leader, _ = v.oneLeader()
	t.Logf("(4) healed: one leader %s, six replicas %v, %.1fs after the heal (majority had moved: %v)\n%s",
		leader, v.spread(all...), time.Since(start).Seconds(), moved, v.describe())
	if _, _, dups := v.replicas(); len(dups) > 0 {
		t.Errorf("replicas running twice after the heal: %v", dups)
	}
	// What `kelpie status` says must hold: no host with quorum may say
	// that a placement was not changed for the want of one.
	for name, s := range v.status {
		if s.Cluster.Quorum.OK && strings.Contains(s.Cluster.Note, "no quorum") {
			t.Errorf("after the heal %s has quorum (%s) but its status still notes %q", name, s.Cluster.Quorum.Reason, s.Cluster.Note)
		}
	}
	if testing.Verbose() {
		t.Logf("agent logs:\n%s", c.logs())
	}
}

// benchHostLoss measures host loss runs times: each time the host running
// replicas that sorts last and is not the leader (with killLeader: the
// leader, so that the number includes the election) dies, its replicas
// come back on the other two, and it is restarted and rejoins before the
// next run.
func (c *clusterE2E) benchHostLoss(runs int) {
	t := c.t
	t.Helper()
	timeout := 3 * time.Minute
	var deads, placeds, runnings []time.Duration
	for i := 0; i < runs; i++ {
		v := c.snapshot(c.hosts...)
		leader, _ := v.oneLeader()
		var victim *clusterHost
		for _, h := range c.hosts {
			if (h.name == leader) == c.killLeader && len(v.running[h.name]) > 0 {
				victim = h
			}
		}
		if victim == nil {
			t.Fatalf("run %d: no host to kill (leader: %v) runs a replica\n%s", i+1, c.killLeader, v.describe())
		}
		var survivors []*clusterHost
		for _, h := range c.hosts {
			if h != victim {
				survivors = append(survivors, h)
			}
		}
		dead, placed, running := c.hostLoss(victim, survivors, timeout)
		deads, placeds, runnings = append(deads, dead), append(placeds, placed), append(runnings, running)
		t.Logf("BENCH run %d: host %s lost (leader %s): seen dead %.2fs, placed elsewhere %.2fs, all six running %.2fs", i+1, victim.name, leader, dead.Seconds(), placed.Seconds(), running.Seconds())
		victim.plug()
		victim.start()
		c.waitView("the restarted host to rejoin", 2*time.Minute, c.hosts, func(v view) bool {
			return v.membersAlive(c.hosts[0].name, c.hosts[1].name, c.hosts[2].name) && settledSix(v) && len(v.status) == 3
		})
	}
	med := func(ds []time.Duration) (time.Duration, time.Duration) {
		s := slices.Clone(ds)
		slices.Sort(s)
		m := s[len(s)/2]
		if len(s)%2 == 0 {
			m = (s[len(s)/2-1] + s[len(s)/2]) / 2
		}
		return m, s[len(s)-1]
	}
	md, xd := med(deads)
	mp, xp := med(placeds)
	mr, xr := med(runnings)
	mode := "--reschedule-after 5s --interval 5s"
	if c.defaults {
		mode = "default --reschedule-after and --interval"
	}
	if extra := os.Getenv("CLUSTER_E2E_ARGS"); extra != "" {
		mode += ", " + extra
	}
	if c.killLeader {
		mode += ", the leader killed"
	} else {
		mode += ", a follower killed"
	}
	t.Logf("BENCH host loss, %d runs, %s: seen dead median %.2fs max %.2fs; placed median %.2fs max %.2fs; replacements running median %.2fs max %.2fs",
		runs, mode, md.Seconds(), xd.Seconds(), mp.Seconds(), xp.Seconds(), mr.Seconds(), xr.Seconds())
}

// checkPodRoutes checks that every host routes the other hosts' pod ranges:
// from inside a pod's network namespace on each host, a pod on every other
// host answers a ping (host-gw routes over the hosts' shared link), and
// status lists the routes.
func (c *clusterE2E) checkPodRoutes(hosts []*clusterHost) {
	t := c.t
	t.Helper()
	// podIP is the address of a running pod of h, asked until one answers
	// (a status request may time out on a loaded machine).
	podIP := func(h *clusterHost) string {
		deadline := time.Now().Add(30 * time.Second)
		for {
			s, _ := h.status()
			for _, p := range s.Pods {
				if p.IP != "" && p.State == "Running" {
					return p.IP
				}
			}
			if time.Now().After(deadline) {
				return ""
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, from := range hosts {
		ents, err := os.ReadDir(filepath.Join(from.stateDir, "netns"))
		if err != nil || len(ents) == 0 {
			t.Fatalf("%s: no pod network namespace under its state dir (%v)", from.name, err)
		}
		netns := filepath.Join(from.stateDir, "netns", ents[0].Name())
		for _, to := range hosts {
			if to == from {
				continue
			}
			ip := podIP(to)
			if ip == "" {
				t.Fatalf("%s runs no pod with an address (30 s of status requests)", to.name)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				out, err := exec.Command("nsenter", "--net="+netns, "busybox", "ping", "-c", "1", "-W", "1", ip).CombinedOutput()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					s, _ := from.status()
					t.Fatalf("a pod on %s does not reach pod %s on %s: %v\n%s\nroutes of %s: %q, unrouted %q", from.name, ip, to.name, err, out, from.name, s.Routes, s.Unrouted)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		s := from.statusOK(t)
		if len(s.Routes) != len(hosts)-1 {
			t.Errorf("%s lists routes %q, want one to each of the %d other hosts", from.name, s.Routes, len(hosts)-1)
		}
	}
	t.Logf("pods reach each other across the three hosts")
}
