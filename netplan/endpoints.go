package netplan

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// DefaultAffinityTimeout is the sessionAffinity: ClientIP timeout when the
// manifest sets none (Kubernetes' default, 3 hours), in seconds.
const DefaultAffinityTimeout = 10800

// Pod is a pod as a host reports it in its gossiped status: what endpoints
// and DNS need.
type Pod struct {
	Namespace, Name string
	// Node is the host that runs it.
	Node string
	// IP is its address in its host's slice; invalid while it has none.
	IP netip.Addr
	// Labels are matched by Service selectors.
	Labels map[string]string
	// Ready is the pod's Ready condition (until probes land: running).
	Ready bool
	// Ports are the ports of all its containers, for named targetPorts.
	Ports []corev1.ContainerPort
	// Hostname and Subdomain are spec.hostname and spec.subdomain: a pod
	// whose subdomain names a headless Service gets a DNS name under it.
	Hostname, Subdomain string
}

// Service is one Service as the data path and DNS see it: its addresses
// and, per port, its ready endpoints anywhere in the cluster.
type Service struct {
	Namespace, Name string
	// ClusterIP is the virtual IP; invalid when headless or not allocated.
	ClusterIP netip.Addr
	// Headless Services have no virtual IP; DNS answers with their pods.
	Headless bool
	// AffinityTimeout is the sessionAffinity: ClientIP timeout in seconds;
	// 0 when the Service has no affinity.
	AffinityTimeout int32
	// ExternalLocal is externalTrafficPolicy: Local: node port traffic goes
	// to this host's endpoints only and keeps its source address.
	ExternalLocal bool
	// LoadBalancer is type: LoadBalancer: its ports answer on every
	// host's addresses too, from SourceRanges only when there are any.
	LoadBalancer bool
	SourceRanges []netip.Prefix
	// Ports are the Service's ports, in manifest order.
	Ports []Port
}

// Key returns "NAMESPACE/NAME".
func (s *Service) Key() string { return s.Namespace + "/" + s.Name }

// Port is one port of a Service with its endpoints.
type Port struct {
	// Name is the port's name ("" for a Service's only unnamed port).
	Name string
	// Protocol is TCP or UDP.
	Protocol corev1.Protocol
	// Port is the Service's port; NodePort its node port, 0 when none.
	Port     int32
	NodePort int32
	// LBConflict says why this host does not serve the port of a
	// LoadBalancer Service ("port 80/TCP taken on host b by …"); "" when it
	// does (ClaimLoadBalancerPorts).
	LBConflict string
	// Endpoints are the ready pods' addresses, sorted by IP and port.
	Endpoints []Endpoint
}

// Endpoint is one ready pod behind a Service port.
type Endpoint struct {
	IP netip.Addr
	// Port is the pod's port: the targetPort, a name resolved against the
	// pod's container ports.
	Port int32
	// Node is the host running the pod.
	Node string
	// Pod is the pod's name.
	Pod string
	// Hostname is the pod's DNS label under a headless Service: its
	// spec.hostname when its spec.subdomain is the Service, else its IP
	// with dashes (10-244-1-5), as CoreDNS does.
	Hostname string
}

// Resolve joins the Services of the desired state with what the leader
// allocated (State.Services) and with the pods every host reports. A pod is
// an endpoint of a Service when it is in the Service's namespace, its
// labels match the Service's (non-empty) selector, it is Ready, it has an
// IPv4 address, its host is alive or suspect in nodes, and, for a named
// targetPort, one of its containers has a port of that name and protocol
// (else it is left out of that port only). A Service without a selector
// has no endpoints (kelpie has no Endpoints objects). Services come out
// sorted by key.
func Resolve(svcs []*corev1.Service, alloc map[string]ServiceAlloc, pods []Pod, nodes []Node) []Service {
	up := map[string]bool{}
	for i := range nodes {
		if nodes[i].up() {
			up[nodes[i].Name] = true
		}
	}
	byNS := map[string][]*Pod{}
	for i := range pods {
		p := &pods[i]
		if p.Ready && p.IP.Is4() && up[p.Node] {
			byNS[p.Namespace] = append(byNS[p.Namespace], p)
		}
	}
	for _, ps := range byNS {
		slices.SortFunc(ps, func(a, b *Pod) int { return cmp.Compare(a.Name, b.Name) })
	}
	out := make([]Service, 0, len(svcs))
	for _, svc := range svcs {
		k := ServiceKey(svc)
		ns, _, _ := strings.Cut(k, "/")
		a := alloc[k]
		s := Service{Namespace: ns, Name: svc.Name, ClusterIP: a.ClusterIP, Headless: a.Headless || svc.Spec.ClusterIP == corev1.ClusterIPNone,
			ExternalLocal: svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal}
		if s.Headless {
			s.ClusterIP = netip.Addr{}
		}
		loadBalancerOf(svc, &s)
		if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
			s.AffinityTimeout = DefaultAffinityTimeout
			if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
				s.AffinityTimeout = *c.ClientIP.TimeoutSeconds
			}
		}
		var selected []*Pod
		if len(svc.Spec.Selector) > 0 {
			for _, p := range byNS[ns] {
				if matches(svc.Spec.Selector, p.Labels) {
					selected = append(selected, p)
				}
			}
		}
		for _, sp := range svc.Spec.Ports {
			port := Port{Name: sp.Name, Protocol: sp.Protocol, Port: sp.Port, NodePort: a.NodePorts[PortKey(sp)]}
			if port.Protocol == "" {
				port.Protocol = corev1.ProtocolTCP
			}
			for _, p := range selected {
				target, ok := targetPort(sp, port.Protocol, p)
				if !ok {
					continue
				}
				port.Endpoints = append(port.Endpoints, Endpoint{IP: p.IP, Port: target, Node: p.Node, Pod: p.Name, Hostname: hostname(p, svc.Name)})
			}
			port.Endpoints = sortEndpoints(port.Endpoints)
			s.Ports = append(s.Ports, port)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Service) int { return cmp.Compare(a.Key(), b.Key()) })
	return out
}

// matches reports whether every key=value of sel is in labels.
func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// targetPort resolves a Service port's targetPort for pod p: a number as
// is (the port itself when unset), a name through p's container ports of
// the same protocol.
func targetPort(sp corev1.ServicePort, proto corev1.Protocol, p *Pod) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return sp.Port, true
		}
		return tp.IntVal, true
	}
	for _, cp := range p.Ports {
		cproto := cp.Protocol
		if cproto == "" {
			cproto = corev1.ProtocolTCP
		}
		if cp.Name == tp.StrVal && cproto == proto {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// hostname is p's DNS label under headless Service svc.
func hostname(p *Pod, svc string) string {
	if p.Hostname != "" && p.Subdomain == svc {
		return p.Hostname
	}
	return strings.ReplaceAll(p.IP.String(), ".", "-")
}

// sortEndpoints orders endpoints by IP, port and pod, dropping repeats of
// one IP and port (host-network pods on one host): the data path has one
// chain per IP and port.
func sortEndpoints(eps []Endpoint) []Endpoint {
	slices.SortFunc(eps, func(a, b Endpoint) int {
		return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Pod, b.Pod))
	})
	return slices.CompactFunc(eps, func(a, b Endpoint) bool { return a.IP == b.IP && a.Port == b.Port })
}
