package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// DataPath programs this host's Service data path, kelpie's nftables
// table (nft.Loader, with nft.Conntrack for the UDP flows a change leaves
// stale). The agent calls it from its loop only, one call at a time. Tests
// leave it nil: nothing is programmed, Services are still resolved for
// status and DNS.
type DataPath interface {
	// Load replaces the table with r (the first time: the data path is
	// rebuilt from the cluster state at start).
	Load(ctx context.Context, r *netplan.Ruleset) error
	// ApplyChange programs a change the agent planned (netplan.Planner)
	// with one transaction; table returns the whole ruleset it leads to,
	// for a full load when the change fails or the table's state is
	// unknown.
	ApplyChange(ctx context.Context, ch netplan.Change, table func() *netplan.Ruleset) error
	// DeleteStaleUDP deletes the UDP conntrack entries of flows, returning
	// how many it deleted.
	DeleteStaleUDP(flows []netplan.StaleFlow) (int, error)
}

// NameServer is a running DNS server answering the cluster's names
// (dnsserver.Server). SetNames may be called at any time; Close stops it.
type NameServer interface {
	SetNames(n *netplan.Names)
	Close() error
}

// DNSConfig is what a DNS server is started with.
type DNSConfig struct {
	// Addr is where it listens: the pod bridge's gateway, port 53.
	Addr netip.AddrPort
	// Clients are the source ranges it answers: the cluster pod range.
	Clients []netip.Prefix
	// Namespace returns the namespace of the pod at an address; it is
	// safe for concurrent use.
	Namespace func(netip.Addr) string
	// Names are the names it answers until SetNames.
	Names *netplan.Names
}

// StartDNS starts a DNS server (Deps.DNS): Open's starts a dnsserver.Server.
type StartDNS func(DNSConfig) (NameServer, error)

// dnsPort is where the cluster DNS listens, on the pod bridge's gateway.
const dnsPort = 53

// servicing is the agent's Service data path and DNS, owned by the loop
// but for the fields marked otherwise.
type servicing struct {
	dp       DataPath
	startDNS StartDNS

	resolved   []netplan.Service // as last resolved, for status and DNS
	programmed []netplan.Service // as last programmed, for StaleUDP
	planner    *netplan.Planner  // the ruleset as last planned, per Service; nil before the first
	loaded     bool              // the table was loaded since start
	failed     string            // the last failure logged at warn
	stats      netplan.RulesetStats

	dns     NameServer
	dnsAddr netip.AddrPort
	dnsErr  string

	podNS atomic.Pointer[map[netip.Addr]string] // pod IP → namespace; read by the DNS server's goroutines

	mu      sync.Mutex // guards current, read by /metrics
	current NameServer

	rules     *prometheus.GaugeVec
	endpoints *prometheus.GaugeVec
}

// initServices takes the data path and DNS from deps and registers the
// Service metrics.
func (a *Agent) initServices(deps Deps) {
	s := &a.svc
	s.dp, s.startDNS = deps.DataPath, deps.DNS
	s.rules = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kelpie_service_rules",
		Help: "What kelpie's nftables table programs on this host, by object: sets, chains, rules, elements.",
	}, []string{"object"})
	s.endpoints = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kelpie_service_endpoints",
		Help: "Ready endpoints (distinct pod addresses) of each Service, anywhere in the cluster.",
	}, []string{"service"})
	a.metrics.reg.MustRegister(s.rules, s.endpoints, dnsCollector{s})
}

// dnsCollector is the metrics of the DNS server running now, if any: a
// server replaced (the slice changed) takes its counts with it.
type dnsCollector struct{ s *servicing }

// Describe sends nothing: the collector is unchecked, as the server it
// reports changes.
func (dnsCollector) Describe(chan<- *prometheus.Desc) {}

// Collect collects the current server's metrics.
func (c dnsCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	cur := c.s.current
	c.s.mu.Unlock()
	if col, ok := cur.(prometheus.Collector); ok {
		col.Collect(ch)
	}
}

// endpointReady is a pod's Ready condition as Services see it: it runs
// and is Ready (its readiness probes passed, or it has none and its app
// containers run). It is the one place that decides it.
func endpointReady(p PodStatus) bool {
	return p.State == "Running" && p.PodReady
}

// localPods are this host's pods as endpoints need them: the observed
// pods (address, readiness) joined with the desired ones (labels, ports,
// host name). A pod the commit in force no longer names is left out.
func (a *Agent) localPods() []netplan.Pod {
	if a.target == nil {
		return nil
	}
	desired := make(map[string]*reconciler.Pod, len(a.target.desired.Pods))
	for i := range a.target.desired.Pods {
		p := &a.target.desired.Pods[i]
		desired[reconciler.JoinName(p.Namespace, p.Name)] = p
	}
	var nodeIP netip.Addr
	out := make([]netplan.Pod, 0, len(a.pods))
	for _, ps := range a.pods {
		d := desired[reconciler.JoinName(ps.Namespace, ps.Name)]
		if slot, ok := reconciler.SlotOf(ps.Name); ok && d == nil {
			d = desired[reconciler.JoinName(ps.Namespace, slot)] // a pod started beside its slot's (maxSurge)
		}
		if d == nil {
			continue
		}
		ip, err := netip.ParseAddr(ps.IP)
		if d.HostNetwork {
			if !nodeIP.IsValid() {
				if ips := a.nodeIPs(); len(ips) > 0 {
					nodeIP = ips[0]
				}
			}
			ip, err = nodeIP, nil
		}
		if err != nil || !ip.Is4() {
			continue
		}
		p := netplan.Pod{Namespace: ps.Namespace, Name: ps.Name, Node: a.cfg.Host.Name, IP: ip,
			Labels: d.Labels, Ready: endpointReady(ps), Hostname: d.Hostname, Subdomain: d.Subdomain}
		for _, c := range d.Containers {
			for _, cp := range c.Ports {
				p.Ports = append(p.Ports, containerPort(cp))
			}
		}
		out = append(out, p)
	}
	return out
}

// clusterPods are the pods of every host: this one's, and the others' from
// their gossiped status.
func (a *Agent) clusterPods() []netplan.Pod {
	pods := a.localPods()
	if a.cluster == nil {
		return pods
	}
	for _, m := range a.cluster.Members() {
		if m.Self || !m.HasStatus {
			continue
		}
		var d nodeDetail
		if json.Unmarshal(m.Status.Data, &d) != nil {
			continue
		}
		for _, p := range d.Pods {
			p.Node = m.Name
			pods = append(pods, p)
		}
	}
	return pods
}

// serviceNodes is the view endpoints follow: alive and suspect hosts keep
// their pods as endpoints, dead and departed ones do not.
func (a *Agent) serviceNodes() []netplan.Node {
	if a.cluster == nil {
		return []netplan.Node{{Name: a.cfg.Host.Name, State: scheduler.NodeAlive}}
	}
	return a.netNodes()
}

// nodeIPs are this host's addresses where NodePorts answer: --node-ip, else
// the gossip address in a cluster, else the host's IPv4 addresses but
// loopback, link-local and those in the cluster pod range.
func (a *Agent) nodeIPs() []netip.Addr {
	if a.cfg.NodeIP.IsValid() {
		return []netip.Addr{a.cfg.NodeIP}
	}
	if a.cluster != nil {
		for _, m := range a.cluster.Members() {
			if ap, err := netip.ParseAddrPort(m.Addr); err == nil && m.Self {
				return []netip.Addr{ap.Addr()}
			}
		}
		return nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ad := range addrs {
		pfx, err := netip.ParsePrefix(ad.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr()
		if ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !a.cfg.Network.ClusterCIDR.Contains(ip) {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// syncServices resolves the Services of the commit in force against the
// allocation in force and the pods of every live host, programs the data
// path when the ruleset changed, and gives the DNS server the new names:
// on every cluster step, sync and drift check.
func (a *Agent) syncServices(ctx context.Context) {
	s := &a.svc
	var svcs = netplan.ServicesOf(nil)
	if a.target != nil {
		svcs = netplan.ServicesOf(a.target.state)
	}
	var alloc map[string]netplan.ServiceAlloc
	if a.net.state != nil {
		alloc = a.net.state.Services
	}
	pods := a.clusterPods()
	ns := make(map[netip.Addr]string, len(pods))
	for _, p := range pods {
		if p.IP.IsValid() {
			ns[p.IP] = p.Namespace
		}
	}
	s.podNS.Store(&ns)
	s.resolved = netplan.Resolve(svcs, alloc, pods, a.serviceNodes())
	a.claimLoadBalancers()
	a.serviceMetrics()
	a.programDataPath(ctx)
	a.serveNames()
}

// programDataPath plans this host's ruleset (netplan.Planner: only the
// Services that changed are rebuilt and diffed) and programs the change:
// the whole table the first time, one incremental transaction after.
func (a *Agent) programDataPath(ctx context.Context) {
	s := &a.svc
	if s.dp == nil {
		return
	}
	if s.planner == nil {
		s.planner = netplan.NewPlanner()
	}
	ch, err := s.planner.Plan(netplan.RulesetInput{
		Node: a.cfg.Host.Name, ClusterCIDR: a.cfg.Network.ClusterCIDR, ServiceCIDR: a.cfg.Network.ServiceCIDR,
		NodeIPs: a.nodeIPs(), Services: s.resolved,
	})
	if err != nil {
		a.dataPathFailed("services: build the ruleset", err)
		s.planner.Reset() // it may have moved on
		return
	}
	if s.loaded && ch.Text == "" {
		return
	}
	if !s.loaded {
		err = s.dp.Load(ctx, s.planner.Ruleset())
	} else {
		err = s.dp.ApplyChange(ctx, ch, s.planner.Ruleset)
	}
	if err != nil {
		a.dataPathFailed("services: program the data path", err)
		// The planner moved on to a table the kernel may not have: the
		// next sync plans from nothing and loads the whole table.
		s.planner.Reset()
		s.loaded = false
		return
	}
	st := s.planner.RulesetStats()
	a.log.Debug("services: data path programmed", "full", !s.loaded, "services", len(s.resolved), "chains", st.Chains, "rules", st.Rules, "elements", st.Elements)
	stale := netplan.StaleUDP(s.programmed, s.resolved)
	s.loaded, s.stats, s.failed = true, st, ""
	s.programmed = s.resolved
	for k, v := range map[string]int{"sets": st.Sets, "chains": st.Chains, "rules": st.Rules, "elements": st.Elements} {
		s.rules.WithLabelValues(k).Set(float64(v))
	}
	if len(stale) > 0 {
		n, err := s.dp.DeleteStaleUDP(stale)
		if err != nil {
			a.dataPathFailed("services: delete stale UDP flows", err)
			return
		}
		a.log.Debug("services: stale UDP flows deleted", "flows", n)
	}
}

// dataPathFailed logs a data path failure at warn once for as long as it
// repeats, and keeps it for status.
func (a *Agent) dataPathFailed(what string, err error) {
	msg := what + ": " + err.Error()
	if msg != a.svc.failed {
		a.log.Warn(what, "err", err)
	}
	a.svc.failed = msg
}

// serveNames gives the DNS server the names of the Services just
// resolved, starting it on the pod bridge's gateway once the host has a
// slice, and again on the new gateway when the slice changes.
func (a *Agent) serveNames() {
	s := &a.svc
	if s.startDNS == nil {
		return
	}
	names := netplan.NewNames(s.resolved, a.cfg.Network.ClusterDomain)
	if !a.net.subnet.IsValid() {
		return
	}
	addr := netip.AddrPortFrom(a.net.subnet.Addr().Next(), dnsPort)
	if s.dns != nil && s.dnsAddr == addr {
		s.dns.SetNames(names)
		return
	}
	a.stopDNS()
	srv, err := s.startDNS(DNSConfig{Addr: addr, Clients: []netip.Prefix{a.cfg.Network.ClusterCIDR}, Namespace: s.namespaceOf, Names: names})
	if err != nil {
		if msg := err.Error(); msg != s.dnsErr {
			a.log.Warn("cluster DNS: start", "addr", addr.String(), "err", err)
			s.dnsErr = msg
		}
		return
	}
	s.dnsErr = ""
	s.dns, s.dnsAddr = srv, addr
	s.mu.Lock()
	s.current = srv
	s.mu.Unlock()
	a.log.Info("cluster DNS listening", "addr", addr.String(), "domain", a.cfg.Network.ClusterDomain)
}

// namespaceOf returns the namespace of the pod at ip ("" when unknown): the
// DNS server's short names are looked up in it.
func (s *servicing) namespaceOf(ip netip.Addr) string {
	if m := s.podNS.Load(); m != nil {
		return (*m)[ip]
	}
	return ""
}

// stopDNS stops the DNS server, if one runs.
func (a *Agent) stopDNS() {
	s := &a.svc
	if s.dns == nil {
		return
	}
	if err := s.dns.Close(); err != nil {
		a.log.Warn("cluster DNS: stop", "addr", s.dnsAddr.String(), "err", err)
	}
	s.mu.Lock()
	s.current = nil
	s.mu.Unlock()
	s.dns, s.dnsAddr = nil, netip.AddrPort{}
}

// serviceMetrics sets kelpie_service_endpoints from the Services just
// resolved.
func (a *Agent) serviceMetrics() {
	a.svc.endpoints.Reset()
	for i := range a.svc.resolved {
		sv := &a.svc.resolved[i]
		a.svc.endpoints.WithLabelValues(sv.Key()).Set(float64(endpointCount(sv)))
	}
}

// endpointCount counts the distinct pod addresses behind a Service.
func endpointCount(s *netplan.Service) int {
	seen := map[netip.Addr]bool{}
	for _, p := range s.Ports {
		for _, e := range p.Endpoints {
			seen[e.IP] = true
		}
	}
	return len(seen)
}

// containerPort converts a desired container port for endpoints.
func containerPort(p reconciler.Port) corev1.ContainerPort {
	proto := corev1.Protocol(p.Protocol)
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return corev1.ContainerPort{Name: p.Name, ContainerPort: p.ContainerPort, Protocol: proto}
}

// servicesStatus is the Services part of the status.
func (a *Agent) servicesStatus() ([]ServiceStatus, string, string) {
	s := &a.svc
	out := make([]ServiceStatus, 0, len(s.resolved))
	for i := range s.resolved {
		out = append(out, serviceStatus(&s.resolved[i]))
	}
	a.lbStatus(out)
	dp := ""
	switch {
	case s.dp == nil:
	case s.failed != "":
		dp = s.failed
	case s.loaded:
		dp = fmt.Sprintf("programmed: %d chains, %d rules, %d map and set elements", s.stats.Chains, s.stats.Rules, s.stats.Elements)
	default:
		dp = "not programmed yet"
	}
	dns := ""
	switch {
	case s.startDNS == nil:
	case s.dns != nil:
		dns = "listening on " + s.dnsAddr.String()
	case s.dnsErr != "":
		dns = s.dnsErr
	default:
		dns = "waiting for this host's pod range"
	}
	return out, dp, dns
}
