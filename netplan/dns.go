package netplan

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// DNS query types Lookup answers (the IANA numbers miekg/dns uses).
const (
	TypeA    uint16 = 1
	TypeAAAA uint16 = 28
	TypeSRV  uint16 = 33
	TypeANY  uint16 = 255
)

// DNSTTL is the TTL of every answer, in seconds: short, so that endpoint
// changes of headless Services show quickly (CoreDNS's default).
const DNSTTL = 5

// Result is the kind of a Lookup answer.
type Result int

const (
	// NotOurs: the name is not a cluster name; forward the query to the
	// host's resolvers.
	NotOurs Result = iota
	// Found: the answer has records.
	Found
	// NoData: the name exists, but has no records of the type asked.
	NoData
	// NXDomain: the name is in the cluster domain and does not exist.
	NXDomain
)

// String returns the result's name.
func (r Result) String() string {
	switch r {
	case NotOurs:
		return "not ours"
	case Found:
		return "found"
	case NoData:
		return "no data"
	case NXDomain:
		return "NXDOMAIN"
	}
	return "Result(?)"
}

// SRV is one SRV record.
type SRV struct {
	Priority, Weight, Port uint16
	// Target is a fully qualified name, with the trailing dot.
	Target string
}

// Extra is an address record for an SRV target (the additional section).
type Extra struct {
	Name string
	Addr netip.Addr
}

// Answer is Lookup's answer.
type Answer struct {
	Result Result
	// A holds the addresses (A and ANY queries).
	A []netip.Addr
	// SRV holds the SRV records, Extra their targets' addresses.
	SRV   []SRV
	Extra []Extra
}

// Names answers DNS queries for the cluster's Services, as the Kubernetes
// DNS specification has it: NAME.NS.svc.DOMAIN has the Service's IP (a
// headless Service's: its ready pods' IPs), HOST.NAME.NS.svc.DOMAIN a
// headless Service's pod, _PORT._PROTO.NAME.NS.svc.DOMAIN the SRV records
// of a named port. The short forms NAME (in the asking pod's namespace),
// NAME.NS and NAME.NS.svc answer too when they name a Service, and are
// forwarded otherwise. Names is immutable; build a new one on a change.
type Names struct {
	domain     string
	services   map[string]*Service // "ns/name"
	namespaces map[string]bool
}

// NewNames indexes services (from Resolve) under the cluster domain.
func NewNames(services []Service, domain string) *Names {
	n := &Names{domain: strings.TrimSuffix(strings.ToLower(domain), "."), services: map[string]*Service{}, namespaces: map[string]bool{}}
	for i := range services {
		s := &services[i]
		n.services[s.Key()] = s
		n.namespaces[s.Namespace] = true
	}
	return n
}

// Lookup answers a query for qname (any case, trailing dot or not) of type
// qtype, asked by a pod of namespace clientNS ("" for "default").
func (n *Names) Lookup(qname string, qtype uint16, clientNS string) Answer {
	q := strings.TrimSuffix(strings.ToLower(qname), ".")
	zone := "svc." + n.domain
	if clientNS == "" {
		clientNS = "default"
	}
	switch {
	case q == n.domain || q == zone:
		return Answer{Result: NoData}
	case strings.HasSuffix(q, "."+zone):
		return n.inZone(strings.Split(strings.TrimSuffix(q, "."+zone), "."), qtype)
	case strings.HasSuffix(q, "."+n.domain):
		return Answer{Result: NXDomain}
	}
	// Short forms: answered when they name a Service, else not ours.
	var a Answer
	labels := strings.Split(strings.TrimSuffix(q, ".svc"), ".")
	switch {
	case strings.HasSuffix(q, ".svc"):
		a = n.inZone(labels, qtype)
	case len(labels) == 1:
		a = n.inZone([]string{labels[0], clientNS}, qtype)
	case len(labels) == 2:
		a = n.inZone(labels, qtype)
	}
	if a.Result == NXDomain {
		a = Answer{Result: NotOurs}
	}
	return a
}

// inZone answers for the labels before svc.DOMAIN.
func (n *Names) inZone(labels []string, qtype uint16) Answer {
	switch len(labels) {
	case 1: // NS
		if n.namespaces[labels[0]] {
			return Answer{Result: NoData}
		}
	case 2: // NAME.NS
		if s := n.services[labels[1]+"/"+labels[0]]; s != nil {
			return n.service(s, qtype)
		}
	case 3: // HOST.NAME.NS, or _PROTO.NAME.NS (an empty non-terminal)
		s := n.services[labels[2]+"/"+labels[1]]
		if s == nil {
			break
		}
		if proto, ok := srvProto(labels[0]); ok {
			if slices.ContainsFunc(s.Ports, func(p Port) bool { return p.Name != "" && p.Protocol == proto }) {
				return Answer{Result: NoData}
			}
			break
		}
		if s.Headless {
			return n.host(s, labels[0], qtype)
		}
	case 4: // _PORT._PROTO.NAME.NS
		s := n.services[labels[3]+"/"+labels[2]]
		proto, ok := srvProto(labels[1])
		if s == nil || !ok || !strings.HasPrefix(labels[0], "_") {
			break
		}
		i := slices.IndexFunc(s.Ports, func(p Port) bool { return p.Name == labels[0][1:] && p.Protocol == proto })
		if i < 0 {
			break
		}
		if qtype != TypeSRV && qtype != TypeANY {
			return Answer{Result: NoData}
		}
		a := Answer{Result: Found}
		n.srv(&a, s, &s.Ports[i])
		return a
	}
	return Answer{Result: NXDomain}
}

// srvProto maps "_tcp" and "_udp" to their protocol.
func srvProto(label string) (corev1.Protocol, bool) {
	switch label {
	case "_tcp":
		return corev1.ProtocolTCP, true
	case "_udp":
		return corev1.ProtocolUDP, true
	}
	return "", false
}

// fqdn returns NAME.NS.svc.DOMAIN. of s.
func (n *Names) fqdn(s *Service) string {
	return s.Name + "." + s.Namespace + ".svc." + n.domain + "."
}

// service answers for a Service's own name.
func (n *Names) service(s *Service, qtype uint16) Answer {
	a := Answer{Result: NoData}
	switch qtype {
	case TypeA, TypeANY:
		if s.Headless {
			a.A = endpointIPs(s, "")
		} else if s.ClusterIP.Is4() {
			a.A = []netip.Addr{s.ClusterIP}
		}
	case TypeSRV:
		for i := range s.Ports {
			if s.Ports[i].Name != "" {
				n.srv(&a, s, &s.Ports[i])
			}
		}
	}
	if len(a.A) > 0 || len(a.SRV) > 0 {
		a.Result = Found
	}
	return a
}

// host answers for one pod of a headless Service.
func (n *Names) host(s *Service, host string, qtype uint16) Answer {
	ips := endpointIPs(s, host)
	if len(ips) == 0 {
		return Answer{Result: NXDomain}
	}
	if qtype != TypeA && qtype != TypeANY {
		return Answer{Result: NoData}
	}
	return Answer{Result: Found, A: ips}
}

// endpointIPs returns the distinct endpoint IPs of s, sorted; only those of
// the given hostname unless it is "".
func endpointIPs(s *Service, hostname string) []netip.Addr {
	var ips []netip.Addr
	for _, p := range s.Ports {
		for _, ep := range p.Endpoints {
			if hostname == "" || ep.Hostname == hostname {
				ips = append(ips, ep.IP)
			}
		}
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	return slices.Compact(ips)
}

// srv adds the SRV records of port p of s: one to the Service's name, or
// for a headless Service one per endpoint, to its pod's name and port.
func (n *Names) srv(a *Answer, s *Service, p *Port) {
	if !s.Headless {
		if s.ClusterIP.Is4() {
			a.SRV = append(a.SRV, SRV{Weight: 100, Port: uint16(p.Port), Target: n.fqdn(s)})
			a.Extra = append(a.Extra, Extra{n.fqdn(s), s.ClusterIP})
		}
		return
	}
	eps := slices.Clone(p.Endpoints)
	slices.SortFunc(eps, func(x, y Endpoint) int { return cmp.Or(cmp.Compare(x.Hostname, y.Hostname), x.IP.Compare(y.IP)) })
	weight := uint16(max(1, 100/max(1, len(eps))))
	for _, ep := range eps {
		target := ep.Hostname + "." + n.fqdn(s)
		a.SRV = append(a.SRV, SRV{Weight: weight, Port: uint16(ep.Port), Target: target})
		a.Extra = append(a.Extra, Extra{target, ep.IP})
	}
}
