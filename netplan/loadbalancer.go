package netplan

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Names of the LoadBalancer sets, maps and chains.
const (
	mapServiceLBPorts = "service-lb-ports"
	mapNoEndpointLBs  = "no-endpoint-lb-ports"
	mapLBFirewall     = "lb-firewall"
	chainLBFirewall   = "filter-prerouting"
)

// lbFirewallPriority is the priority of the chain that enforces
// loadBalancerSourceRanges: before dstnat (-100), while the destination is
// still the host's address.
const lbFirewallPriority = -110

// lbNodePorts reports whether a LoadBalancer Service also gets node ports,
// as in Kubernetes: unless allocateLoadBalancerNodePorts is false.
func lbNodePorts(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		(svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts)
}

// loadBalancerOf fills in what a LoadBalancer Service adds to s: the flag
// and its source ranges (validation refused the unparsable ones).
func loadBalancerOf(svc *corev1.Service, s *Service) {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return
	}
	s.LoadBalancer = true
	for _, r := range svc.Spec.LoadBalancerSourceRanges {
		if p, err := netip.ParsePrefix(strings.TrimSpace(r)); err == nil && p.Addr().Is4() {
			s.SourceRanges = append(s.SourceRanges, p.Masked())
		}
	}
}

// PortUse is a port something other than a LoadBalancer Service holds on
// a host: a pod's hostPort, a socket listening there.
type PortUse struct {
	Port     int32
	Protocol corev1.Protocol
	// By says what holds it: "pod default/web's hostPort", "a socket
	// listening on 0.0.0.0:22".
	By string
}

// ClaimLoadBalancerPorts decides, on host, which LoadBalancer Service
// ports of svcs (sorted by key, as Resolve returns them) are served: a
// port/protocol goes to what holds it first, in this order: the uses
// given (hostPorts, listening sockets), node ports of any Service, then
// LoadBalancer Services by NAMESPACE/NAME. A port that loses gets
// Port.LBConflict ("port 80/TCP taken on host b by …") and is not
// programmed there. Services without a virtual IP claim nothing.
func ClaimLoadBalancerPorts(svcs []Service, host string, uses []PortUse) {
	held := map[string]string{}
	for _, u := range uses {
		k := PortKey(corev1.ServicePort{Port: u.Port, Protocol: u.Protocol})
		if held[k] == "" {
			held[k] = u.By
		}
	}
	for i := range svcs {
		for _, p := range svcs[i].Ports {
			if p.NodePort != 0 {
				k := PortKey(corev1.ServicePort{Port: p.NodePort, Protocol: p.Protocol})
				if held[k] == "" {
					held[k] = "the node port of service " + svcs[i].Key()
				}
			}
		}
	}
	order := make([]*Service, 0, len(svcs))
	for i := range svcs {
		if svcs[i].LoadBalancer {
			order = append(order, &svcs[i])
		}
	}
	slices.SortStableFunc(order, func(a, b *Service) int { return cmp.Compare(a.Key(), b.Key()) })
	for _, s := range order {
		for j := range s.Ports {
			p := &s.Ports[j]
			p.LBConflict = ""
			if s.Headless || !s.ClusterIP.Is4() {
				continue
			}
			k := PortKey(corev1.ServicePort{Port: p.Port, Protocol: p.Protocol})
			if by := held[k]; by != "" {
				p.LBConflict = "port " + k + " taken on host " + host + " by " + by
				continue
			}
			held[k] = "LoadBalancer service " + s.Key()
		}
	}
}

// lbKey is the map key ("tcp . 80") of p when this host serves it as a
// LoadBalancer port, else "".
func lbKey(svc *Service, p *Port, proto string) string {
	if !svc.LoadBalancer || p.LBConflict != "" {
		return ""
	}
	return proto + " . " + strconv.Itoa(int(p.Port))
}

// hasLoadBalancers reports whether a LoadBalancer Service has a virtual
// IP: the table has the LoadBalancer maps and chains only then.
func hasLoadBalancers(svcs []Service) bool {
	for i := range svcs {
		if svcs[i].LoadBalancer && !svcs[i].Headless && svcs[i].ClusterIP.Is4() {
			return true
		}
	}
	return false
}

// lbBase adds the LoadBalancer maps and the rules that use them: traffic
// to this host's addresses on a served port goes to the Service port's
// external chain (as a node port does), a port without endpoints is
// rejected, and loadBalancerSourceRanges are enforced before DNAT.
func (r *Ruleset) lbBase() {
	r.set("map", mapServiceLBPorts, `type inet_proto . inet_service : verdict ; comment "LoadBalancer port on this host's addresses to the Service port's external chain" ;`)
	r.set("map", mapNoEndpointLBs, `type inet_proto . inet_service : verdict ; comment "LoadBalancer ports without endpoints: reject, or drop for Local" ;`)
	r.set("map", mapLBFirewall, `type inet_proto . inet_service : verdict ; comment "LoadBalancer ports with loadBalancerSourceRanges" ;`)
	r.chains[chainServices].add("ip daddr", "@"+setNodePortIPs, "meta l4proto . th dport vmap", "@"+mapServiceLBPorts)
	r.chains[chainNPEPCheck].add("ip daddr", "@"+setNodePortIPs, "meta l4proto . th dport vmap", "@"+mapNoEndpointLBs)
	r.chain(chainLBFirewall, "type filter hook prerouting priority "+strconv.Itoa(lbFirewallPriority)+" ; policy accept ;").
		add("ct state new ip daddr", "@"+setNodePortIPs, "meta l4proto . th dport vmap", "@"+mapLBFirewall)
}

// lbFirewall adds the chain that drops sources outside the Service's
// loadBalancerSourceRanges on LoadBalancer port key (none: all may
// connect). Pods are let through: they reach the Service IP anyway.
func (r *Ruleset) lbFirewall(in RulesetInput, svc *Service, base, key string) {
	if key == "" || len(svc.SourceRanges) == 0 {
		return
	}
	name := "firewall-" + base
	r.sets[mapLBFirewall].elems[key] = "goto " + name
	ranges := make([]string, 0, len(svc.SourceRanges))
	for _, p := range svc.SourceRanges {
		ranges = append(ranges, p.String())
	}
	slices.Sort(ranges)
	ranges = slices.Compact(ranges)
	c := r.chain(name, "")
	c.add("ip saddr", in.ClusterCIDR.String(), "return", `comment "pods"`)
	c.add("ip saddr != {", strings.Join(ranges, ", "), "}", "drop", `comment "loadBalancerSourceRanges"`)
}
