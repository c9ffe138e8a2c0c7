package netplan

import (
	"cmp"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// StaleFlow names UDP conntrack entries the host must delete after a
// change: UDP has no connection end, so an entry NATed to an endpoint that
// is gone would keep sending a client's datagrams into the void until it
// times out. Dst is a Service IP (or invalid for "any of this host's
// addresses", a node port); Endpoint is the endpoint that is gone, or
// invalid for "all entries to Dst:Port" (the port had no endpoints, so its
// entries were made without NAT and must go for the new endpoints to be
// used).
type StaleFlow struct {
	Dst      netip.Addr
	Port     int32
	Endpoint netip.Addr
}

// StaleUDP lists the UDP conntrack entries to delete when the data path
// goes from old to new (both from Resolve), in a stable order.
func StaleUDP(old, new []Service) []StaleFlow {
	next := map[string]*Port{}
	for i := range new {
		s := &new[i]
		for j := range s.Ports {
			p := &s.Ports[j]
			if p.Protocol == corev1.ProtocolUDP {
				next[portID(s, p)] = p
			}
		}
	}
	seen := map[StaleFlow]bool{}
	var out []StaleFlow
	add := func(f StaleFlow) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for i := range old {
		s := &old[i]
		if s.Headless || !s.ClusterIP.Is4() {
			continue
		}
		for j := range s.Ports {
			p := &s.Ports[j]
			if p.Protocol != corev1.ProtocolUDP {
				continue
			}
			n := next[portID(s, p)]
			if len(p.Endpoints) == 0 && n != nil && len(n.Endpoints) > 0 {
				add(StaleFlow{Dst: s.ClusterIP, Port: p.Port})
				if n.NodePort != 0 {
					add(StaleFlow{Port: n.NodePort})
				}
				continue
			}
			for _, ep := range p.Endpoints {
				if n != nil && slices.ContainsFunc(n.Endpoints, func(e Endpoint) bool { return e.IP == ep.IP && e.Port == ep.Port }) {
					continue
				}
				add(StaleFlow{Dst: s.ClusterIP, Port: p.Port, Endpoint: ep.IP})
				if p.NodePort != 0 {
					add(StaleFlow{Port: p.NodePort, Endpoint: ep.IP})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b StaleFlow) int {
		return cmp.Or(a.Dst.Compare(b.Dst), cmp.Compare(a.Port, b.Port), a.Endpoint.Compare(b.Endpoint))
	})
	return out
}

// portID identifies a Service port across two resolutions.
func portID(s *Service, p *Port) string {
	return s.Key() + "|" + s.ClusterIP.String() + "|" + PortKey(corev1.ServicePort{Port: p.Port, Protocol: p.Protocol})
}
