package agent

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// fakeDataPath records what the agent programs.
type fakeDataPath struct {
	mu      sync.Mutex
	loads   int
	applies int
	current *netplan.Ruleset
	stale   []netplan.StaleFlow
	// failApplies makes that many ApplyChange calls fail, programming
	// nothing.
	failApplies int
}

func (f *fakeDataPath) Load(_ context.Context, r *netplan.Ruleset) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
	f.current = r
	return nil
}

func (f *fakeDataPath) ApplyChange(_ context.Context, _ netplan.Change, table func() *netplan.Ruleset) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	if f.failApplies > 0 {
		f.failApplies--
		return errors.New("injected failure")
	}
	f.current = table()
	return nil
}

func (f *fakeDataPath) DeleteStaleUDP(flows []netplan.StaleFlow) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stale = append(f.stale, flows...)
	return len(flows), nil
}

// text is the ruleset last programmed, "" before one.
func (f *fakeDataPath) text() (string, int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == nil {
		return "", f.loads, f.applies
	}
	return f.current.Text(), f.loads, f.applies
}

// fakeDNS records the DNS servers the agent starts and their names.
type fakeDNS struct {
	mu      sync.Mutex
	started []DNSConfig
	names   *netplan.Names
	running int
}

func (f *fakeDNS) start(c DNSConfig) (NameServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, c)
	f.names = c.Names
	f.running++
	return (*fakeNameServer)(f), nil
}

// fakeNameServer is a started fakeDNS.
type fakeNameServer fakeDNS

func (s *fakeNameServer) SetNames(n *netplan.Names) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names = n
}

func (s *fakeNameServer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	return nil
}

// lookup answers a query from the names last given, with the config the
// server was started with.
func (f *fakeDNS) lookup(name string, qtype uint16, ns string) (netplan.Answer, DNSConfig, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.names == nil || len(f.started) == 0 {
		return netplan.Answer{}, DNSConfig{}, false
	}
	return f.names.Lookup(name, qtype, ns), f.started[len(f.started)-1], true
}

// sliceFake is a fake runtime that numbers pods in the slice it is told,
// as host.Containerd does: the fake's own addresses (10.244.0.N) are moved
// into the slice, so that pods on different hosts have distinct addresses.
type sliceFake struct {
	*reconcilertest.Fake
	mu  sync.Mutex
	sub netip.Prefix
}

func (f *sliceFake) PodSubnet() netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sub
}

func (f *sliceFake) SetPodSubnet(p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sub = p
	return nil
}

func (f *sliceFake) Observe(ctx context.Context) (reconciler.Actual, error) {
	a, err := f.Fake.Observe(ctx)
	sub := f.PodSubnet()
	for i := range a.Pods {
		ip, perr := netip.ParseAddr(a.Pods[i].IP)
		if perr != nil || !sub.IsValid() {
			continue
		}
		b, s := ip.As4(), sub.Addr().As4()
		s[3] = b[3]
		a.Pods[i].IP = netip.AddrFrom4(s).String()
	}
	return a, err
}

// webService is a NodePort Service over the Deployment "web" (agenttest),
// and a headless one over the same pods.
const webService = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: agenttest}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: web-pods, namespace: agenttest}
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {name: http, port: 8080}
`

// webDeployment is the Deployment behind webService.
func webDeployment(replicas int) string {
	return testenv.Deployment{Name: "web", Namespace: "agenttest", Replicas: replicas, Container: testenv.Container{Image: "busybox", Ports: []int{8080}}}.YAML()
}

// serviceOf finds a Service in a status.
func serviceOf(s Status, name string) (ServiceStatus, bool) {
	for _, sv := range s.Services {
		if sv.Name == name {
			return sv, true
		}
	}
	return ServiceStatus{}, false
}

// TestServicesCluster: every host of a cluster resolves a Service to the
// ready pods of every host, programs them (one full load, then
// incremental changes), serves the names on its slice's gateway, and drops
// a dead host's pods as soon as the cluster declares it dead.
func TestServicesCluster(t *testing.T) {
	src := newFakeSource()
	src.push("v1", map[string]string{"web.yaml": webDeployment(3) + "---\n" + webService})
	tc := newTestCluster(t, src)
	var mu sync.Mutex
	slices := map[*reconcilertest.Fake]*sliceFake{}
	tc.runtime = func(f *reconcilertest.Fake) reconciler.Runtime {
		mu.Lock()
		defer mu.Unlock()
		sf := &sliceFake{Fake: f}
		slices[f] = sf
		return sf
	}
	dps := map[string]*fakeDataPath{}
	dnss := map[string]*fakeDNS{}
	tc.deps = func(name string, d *Deps) {
		dps[name], dnss[name] = &fakeDataPath{}, &fakeDNS{}
		d.DataPath, d.DNS = dps[name], dnss[name].start
	}
	a := tc.start("a", 0, func(c *Config) { c.RescheduleAfter = time.Hour })
	b := tc.start("b", 0, func(c *Config) { c.RescheduleAfter = time.Hour })
	c := tc.start("c", 0, func(c *Config) { c.RescheduleAfter = time.Hour })
	tc.waitPodsSpread("3 replicas", replicaNames("web", 3), 3)

	// Every host sees three endpoints, one on each host's slice.
	endpoints := func(m *clusterMember) []string {
		sv, ok := serviceOf(m.agent.Status(), "web")
		if !ok || len(sv.Ports) != 1 {
			return nil
		}
		return sv.Ports[0].Endpoints
	}
	var vip string
	waitUntil(t, "every host resolves web to three endpoints on three slices", 30*time.Second, func() bool {
		for _, m := range []*clusterMember{a, b, c} {
			st := m.agent.Status()
			sv, ok := serviceOf(st, "web")
			if !ok || sv.ClusterIP == "" || sv.Endpoints != 3 || sv.Ports[0].NodePort == 0 {
				return false
			}
			vip = sv.ClusterIP
			nets := map[string]bool{}
			for _, e := range sv.Ports[0].Endpoints {
				nets[e[:strings.LastIndex(e, ".")]] = true
				if !strings.HasSuffix(e, ":8080") {
					return false
				}
			}
			if len(nets) != 3 {
				return false
			}
			if h, ok := serviceOf(st, "web-pods"); !ok || h.ClusterIP != "None" || h.Endpoints != 3 {
				return false
			}
		}
		return true
	})
	for _, m := range []*clusterMember{a, b, c} {
		text, loads, _ := dps[m.name].text()
		if loads != 1 {
			t.Errorf("%s: the table was loaded %d times; want once, then changes", m.name, loads)
		}
		for _, e := range endpoints(m) {
			if !dnatsTo(text, e) {
				t.Errorf("%s: the programmed ruleset has no DNAT to %s:\n%s", m.name, e, text)
			}
		}
		if !strings.Contains(text, vip) {
			t.Errorf("%s: the programmed ruleset lacks the VIP %s", m.name, vip)
		}
		st := m.agent.Status()
		if !strings.HasPrefix(st.DataPath, "programmed") || !strings.HasPrefix(st.DNS, "listening on ") {
			t.Errorf("%s: status says data path %q, DNS %q", m.name, st.DataPath, st.DNS)
		}
		// The DNS server listens on the gateway of the host's slice and
		// answers web with the VIP, web-pods with the three pods.
		ans, cfg, ok := dnss[m.name].lookup("web.agenttest.svc.cluster.local.", dns.TypeA, "agenttest")
		sub := netip.MustParsePrefix(st.PodRange)
		if !ok || cfg.Addr != netip.AddrPortFrom(sub.Addr().Next(), 53) {
			t.Errorf("%s: DNS started with %+v; want it on the gateway of %s, port 53", m.name, cfg, sub)
			continue
		}
		if len(ans.A) != 1 || ans.A[0].String() != vip {
			t.Errorf("%s: web.agenttest.svc.cluster.local is %v; want %s", m.name, ans.A, vip)
		}
		if ans, _, _ := dnss[m.name].lookup("web-pods.agenttest.svc.cluster.local.", dns.TypeA, "agenttest"); len(ans.A) != 3 {
			t.Errorf("%s: headless web-pods answers %v; want the three pods", m.name, ans.A)
		}
		for _, e := range endpoints(m) {
			ip := netip.MustParseAddr(e[:strings.Index(e, ":")])
			if ns := cfg.Namespace(ip); ns != "agenttest" {
				t.Errorf("%s: the DNS server places pod %s in namespace %q", m.name, ip, ns)
			}
		}
	}

	// c dies: a and b stop sending traffic to its pod once they see it dead.
	cSlice := c.agent.Status().PodRange
	cNet := strings.TrimSuffix(cSlice, ".0/24")
	tc.kill(c)
	for _, m := range []*clusterMember{a, b} {
		waitUntil(t, m.name+" drops the dead host's endpoint", 30*time.Second, func() bool {
			eps := endpoints(m)
			for _, e := range eps {
				if strings.HasPrefix(e, cNet+".") {
					return false
				}
			}
			return len(eps) == 2
		})
		text, loads, applies := dps[m.name].text()
		if loads != 1 || applies == 0 {
			t.Errorf("%s: %d loads, %d applies; want one load and incremental changes", m.name, loads, applies)
		}
		if dnatsTo(text, cNet+".") {
			t.Errorf("%s: the ruleset still sends traffic to the dead host's pod:\n%s", m.name, text)
		}
	}
}

// TestServicesAlone: an agent on its own allocates its Services' addresses
// itself, programs them with the node ports on --node-ip, and runs its DNS
// server on its slice's gateway; the server stops with the agent.
func TestServicesAlone(t *testing.T) {
	h := newHarness(t)
	h.src.push("v1", map[string]string{"web.yaml": webDeployment(2) + "---\n" + webService})
	h.cfg.NodeIP = netip.MustParseAddr("192.0.2.10")
	dp, d := &fakeDataPath{}, &fakeDNS{}
	sf := &sliceFake{Fake: h.rt}
	a, err := New(h.cfg, Deps{Source: h.src, Runtime: sf, DataPath: dp, DNS: d.start})
	if err != nil {
		t.Fatal(err)
	}
	h.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.running != 0 {
			t.Errorf("%d DNS servers still run after the agent stopped", d.running)
		}
	}()
	st := h.waitFor("web with two endpoints", func(s Status) bool {
		sv, ok := serviceOf(s, "web")
		return ok && sv.ClusterIP != "" && sv.Endpoints == 2 && strings.HasPrefix(s.DNS, "listening")
	})
	sv, _ := serviceOf(st, "web")
	if !netplan.DefaultServiceCIDR.Contains(netip.MustParseAddr(sv.ClusterIP)) {
		t.Errorf("web has VIP %s, outside the service range", sv.ClusterIP)
	}
	text, loads, _ := dp.text()
	np := sv.Ports[0].NodePort
	if loads != 1 || !strings.Contains(text, "192.0.2.10") || np == 0 || !strings.Contains(text, " "+strconv.Itoa(int(np))+" ") {
		t.Errorf("loads %d, node port %d; the ruleset should hold the node IP 192.0.2.10 and the node port:\n%s", loads, np, text)
	}
	if st.DNS != "listening on 10.244.0.1:53" {
		t.Errorf("DNS: %q; want it on the gateway of the first slice", st.DNS)
	}
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue()
		}
	}
	if got["kelpie_service_endpoints,agenttest/web"] != 2 || got["kelpie_service_rules,rules"] == 0 {
		t.Errorf("metrics: endpoints of agenttest/web %v, rules %v; want 2 and some", got["kelpie_service_endpoints,agenttest/web"], got["kelpie_service_rules,rules"])
	}
	// The table masquerades pod traffic leaving the cluster (the bridge no
	// longer does).
	if !strings.Contains(text, "masquerade") || !strings.Contains(text, "10.244.0.0/16") {
		t.Errorf("the ruleset does not masquerade pod egress:\n%s", text)
	}
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dnatsTo reports whether a DNAT rule of text sends traffic to addr
// ("IP:PORT", or an address prefix "10.244.2."): `dnat to IP:PORT` for one
// endpoint, `dnat ip to numgen … map { 0 : IP . PORT, … }` for several.
func dnatsTo(text, addr string) bool {
	ip, port, _ := strings.Cut(addr, ":")
	for _, line := range strings.Split(text, "\n") {
		if !strings.Contains(line, "dnat") {
			continue
		}
		if port == "" && strings.Contains(line, " "+addr) ||
			strings.Contains(line, "dnat to "+addr) || strings.Contains(line, " "+ip+" . "+port) {
			return true
		}
	}
	return false
}

// TestServicesRetryAFailedChange: a change the data path failed to program
// is programmed at the next sync, though nothing changed since: the
// planner had already moved on to the new table, so the agent reloads the
// whole table rather than plan from a state the kernel does not have.
func TestServicesRetryAFailedChange(t *testing.T) {
	h := newHarness(t)
	h.src.push("v1", map[string]string{"web.yaml": webDeployment(2) + "---\n" + webService})
	dp, d := &fakeDataPath{}, &fakeDNS{}
	a, err := New(h.cfg, Deps{Source: h.src, Runtime: &sliceFake{Fake: h.rt}, DataPath: dp, DNS: d.start})
	if err != nil {
		t.Fatal(err)
	}
	h.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	h.waitFor("web with two endpoints", func(s Status) bool {
		sv, ok := serviceOf(s, "web")
		return ok && sv.Endpoints == 2
	})
	before, _, _ := dp.text()

	dp.mu.Lock()
	dp.failApplies = 1
	dp.mu.Unlock()
	h.src.push("v2", map[string]string{"web.yaml": webDeployment(3) + "---\n" + webService})
	a.Trigger("test")
	h.waitFor("web with three endpoints", func(s Status) bool {
		sv, ok := serviceOf(s, "web")
		return ok && sv.Endpoints == 3
	})
	waitUntil(t, "the failed change", 10*time.Second, func() bool {
		dp.mu.Lock()
		defer dp.mu.Unlock()
		return dp.failApplies == 0
	})
	if text, _, _ := dp.text(); text != before {
		t.Fatalf("the failed change programmed something")
	}

	h.src.push("v3", map[string]string{"web.yaml": webDeployment(3) + "---\n" + webService, "other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n"})
	a.Trigger("test")
	waitUntil(t, "the table programmed again after the failure", 10*time.Second, func() bool {
		text, _, _ := dp.text()
		return text != before
	})
	if _, loads, _ := dp.text(); loads != 2 {
		t.Errorf("%d full loads; want 2: the start, and the reload after the failed change", loads)
	}
}
