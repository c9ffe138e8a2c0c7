package main

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/netplan"
)

// The bench's address plan: pods (endpoints) in clusterCIDR, counted up
// from its start; Service IPs in serviceCIDR, counted up likewise; the
// changed endpoint of each change run in changeBase upwards.
var (
	clusterCIDR = netip.MustParsePrefix("10.240.0.0/12")
	serviceCIDR = netip.MustParsePrefix("10.96.0.0/12")
	changeBase  = netip.MustParseAddr("10.250.0.0")
)

// benchNode is the host name the rulesets are built for.
const benchNode = "bench"

// svcPort and podPort are every Service's port and its endpoints' port.
const (
	svcPort = 80
	podPort = 8080
)

// nth returns the address n after base.
func nth(base netip.Addr, n int) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// services returns n ClusterIP Services of one TCP port with eps ready
// endpoints each, all on other hosts, as Resolve would; extra, when it has
// a name, is added last.
func services(n, eps int, extra netplan.Service) []netplan.Service {
	out := make([]netplan.Service, 0, n+1)
	for i := range n {
		s := netplan.Service{Namespace: "default", Name: fmt.Sprintf("svc-%05d", i), ClusterIP: nth(serviceCIDR.Addr(), i+1)}
		p := netplan.Port{Protocol: corev1.ProtocolTCP, Port: svcPort}
		for j := range eps {
			p.Endpoints = append(p.Endpoints, netplan.Endpoint{IP: nth(clusterCIDR.Addr(), i*eps+j+1), Port: podPort,
				Node: fmt.Sprintf("node-%d", j), Pod: fmt.Sprintf("svc-%05d-%d", i, j)})
		}
		s.Ports = []netplan.Port{p}
		out = append(out, s)
	}
	if extra.Name != "" {
		out = append(out, extra)
	}
	return out
}

// changed returns svcs with one endpoint changed: the first endpoint of
// the Service in the middle moved to a new address (its pod was replaced),
// a different one for each run. svcs is not modified.
func changed(svcs []netplan.Service, n, run int) []netplan.Service {
	out := append([]netplan.Service(nil), svcs...)
	i := n / 2
	s := out[i]
	p := s.Ports[0]
	p.Endpoints = append([]netplan.Endpoint(nil), p.Endpoints...)
	p.Endpoints[0].IP = nth(changeBase, run+1)
	p.Endpoints[0].Pod += fmt.Sprintf("-r%d", run)
	// Resolve keeps endpoints sorted by address: the new one goes last.
	p.Endpoints = append(p.Endpoints[1:], p.Endpoints[0])
	s.Ports = []netplan.Port{p}
	out[i] = s
	return out
}

// rulesetOf builds the ruleset of svcs, as the agent does.
func rulesetOf(svcs []netplan.Service) (*netplan.Ruleset, error) {
	return netplan.BuildRuleset(inputOf(svcs))
}

// inputOf is the ruleset input of the bench host for svcs.
func inputOf(svcs []netplan.Service) netplan.RulesetInput {
	return netplan.RulesetInput{Node: benchNode, ClusterCIDR: clusterCIDR, ServiceCIDR: serviceCIDR, Services: svcs}
}

// kube-proxy's (iptables mode) chain names: a hash of the Service port
// and, for an endpoint, of its address.
func svcChain(s *netplan.Service) string {
	return "KUBE-SVC-" + chainHash(s.Key()+":"+"tcp")
}

func sepChain(s *netplan.Service, ep netplan.Endpoint) string {
	return "KUBE-SEP-" + chainHash(s.Key()+":"+"tcp"+ep.IP.String()+fmt.Sprint(ep.Port))
}

func chainHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(h[:])[:16]
}

// iptables writes the nat table kube-proxy's iptables mode programs for
// svcs, for `iptables-restore --noflush`: every chain declared (which
// flushes it), every rule written, and the chains in del deleted, as
// kube-proxy's full sync does. With hooks it also adds the jumps from the
// built-in chains (kube-proxy adds those once, with `iptables -I`). With
// only, it writes as kube-proxy's partial sync (1.28 and later) does:
// KUBE-SERVICES and the chains of the Service only.
func iptables(svcs []netplan.Service, hooks bool, del []string, only string) string {
	var chains, rules strings.Builder
	chains.WriteString("*nat\n")
	for _, c := range []string{"KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-NODEPORTS"} {
		if only == "" || c == "KUBE-SERVICES" {
			fmt.Fprintf(&chains, ":%s - [0:0]\n", c)
		}
	}
	if hooks {
		rules.WriteString(`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES` + "\n")
		rules.WriteString(`-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES` + "\n")
		rules.WriteString(`-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING` + "\n")
	}
	if only == "" {
		rules.WriteString("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n")
		rules.WriteString("-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n")
		rules.WriteString(`-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully` + "\n")
		rules.WriteString("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n")
	}
	for i := range svcs {
		s := &svcs[i]
		p := &s.Ports[0]
		name := s.Key() + ":"
		svc := svcChain(s)
		fmt.Fprintf(&rules, "-A KUBE-SERVICES -m comment --comment \"%s cluster IP\" -d %s/32 -p tcp -m tcp --dport %d -j %s\n", name, s.ClusterIP, p.Port, svc)
		if only != "" && s.Key() != only {
			continue
		}
		fmt.Fprintf(&chains, ":%s - [0:0]\n", svc)
		fmt.Fprintf(&rules, "-A %s -m comment --comment \"%s cluster IP\" ! -s %s -d %s/32 -p tcp -m tcp --dport %d -j KUBE-MARK-MASQ\n", svc, name, clusterCIDR, s.ClusterIP, p.Port)
		for j, ep := range p.Endpoints {
			sep := sepChain(s, ep)
			fmt.Fprintf(&chains, ":%s - [0:0]\n", sep)
			prob := ""
			if left := len(p.Endpoints) - j; left > 1 {
				prob = fmt.Sprintf("-m statistic --mode random --probability %0.10f ", 1/float64(left))
			}
			fmt.Fprintf(&rules, "-A %s -m comment --comment \"%s -> %s:%d\" %s-j %s\n", svc, name, ep.IP, ep.Port, prob, sep)
			fmt.Fprintf(&rules, "-A %s -m comment --comment %s -s %s/32 -j KUBE-MARK-MASQ\n", sep, name, ep.IP)
			fmt.Fprintf(&rules, "-A %s -m comment --comment %s -m tcp -p tcp -j DNAT --to-destination %s:%d\n", sep, name, ep.IP, ep.Port)
		}
	}
	rules.WriteString(`-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS` + "\n")
	for _, c := range del {
		fmt.Fprintf(&chains, ":%s - [0:0]\n", c)
		fmt.Fprintf(&rules, "-X %s\n", c)
	}
	return chains.String() + rules.String() + "COMMIT\n"
}

// iptablesRules counts the rules of an iptables-restore text.
func iptablesRules(text string) int { return strings.Count(text, "\n-A ") }
