package specs

import (
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// loadBalancer validates what only a LoadBalancer Service sets. kelpie
// serves a LoadBalancer Service on every host's address (see
// docs/networking.md); loadBalancerIP and loadBalancerClass are refused
// as unknown fields, since no cloud hands out addresses.
func (c *check) loadBalancer(s *corev1.Service) {
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
		if len(s.Spec.LoadBalancerSourceRanges) > 0 {
			c.errorf("spec.loadBalancerSourceRanges", "only a LoadBalancer Service may set it")
		}
		if s.Spec.AllocateLoadBalancerNodePorts != nil {
			c.errorf("spec.allocateLoadBalancerNodePorts", "only a LoadBalancer Service may set it")
		}
		return
	}
	for i, r := range s.Spec.LoadBalancerSourceRanges {
		p, err := netip.ParsePrefix(strings.TrimSpace(r))
		if err != nil {
			c.errorf(indexPath("spec.loadBalancerSourceRanges", i), "invalid CIDR %q: want an address range such as 192.168.1.0/24", r)
		} else if !p.Addr().Is4() {
			c.errorf(indexPath("spec.loadBalancerSourceRanges", i), "%s is not an IPv4 range: kelpie's Services are IPv4 only", r)
		}
	}
}

// hasNodePorts reports whether s is a Service that gets node ports: a
// NodePort Service, or a LoadBalancer Service unless it sets
// allocateLoadBalancerNodePorts: false.
func hasNodePorts(s *corev1.Service) bool {
	switch s.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return s.Spec.AllocateLoadBalancerNodePorts == nil || *s.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}
