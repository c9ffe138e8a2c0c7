package specs

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultNodePortRange is the inclusive range of Service node ports a
// manifest's nodePort is checked against when Options.NodePortRange is
// zero: the default of the agents' --service-node-port-range (Kubernetes').
var DefaultNodePortRange = [2]int32{30000, 32767}

// MaxAffinityTimeout is the longest sessionAffinityConfig.clientIP.timeoutSeconds
// (a day, as Kubernetes).
const MaxAffinityTimeout = 86400

// service validates a Service.
func (c *check) service(s *corev1.Service) {
	switch s.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
	case corev1.ServiceTypeLoadBalancer:
	default:
		c.errorf("spec.type", "type %q is not supported by kelpie (supported: ClusterIP, NodePort, LoadBalancer)", s.Spec.Type)
	}
	headless := s.Spec.ClusterIP == corev1.ClusterIPNone
	if ip := s.Spec.ClusterIP; ip != "" && !headless {
		if _, err := netip.ParseAddr(ip); err != nil {
			c.errorf("spec.clusterIP", "invalid IP address %q", ip)
		}
	}
	if headless && (s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer) {
		c.errorf("spec.clusterIP", "a %s Service cannot be headless (clusterIP: None)", s.Spec.Type)
	}
	c.serviceTraffic(s)
	c.loadBalancer(s)
	c.labels("spec.selector", s.Spec.Selector)
	if len(s.Spec.Ports) == 0 && !headless {
		c.errorf("spec.ports", "required: at least one port")
	}
	names := map[string]bool{}
	seen := map[string]bool{}
	for i, port := range s.Spec.Ports {
		pp := indexPath("spec.ports", i)
		if port.Name == "" && len(s.Spec.Ports) > 1 {
			c.errorf(joinPath(pp, "name"), "required when a Service has more than one port")
		}
		if port.Name != "" {
			for _, msg := range cleanMsgs(validation.IsDNS1123Label(port.Name)) {
				c.errorf(joinPath(pp, "name"), "invalid port name %q: %s", port.Name, msg)
			}
			if names[port.Name] {
				c.errorf(joinPath(pp, "name"), "duplicate port name %q", port.Name)
			}
			names[port.Name] = true
		}
		c.portNumber(joinPath(pp, "port"), port.Port, true)
		c.protocol(joinPath(pp, "protocol"), port.Protocol)
		key := fmt.Sprintf("%d/%s", port.Port, port.Protocol)
		if seen[key] {
			c.errorf(joinPath(pp, "port"), "duplicate port %s", key)
		}
		seen[key] = true
		if port.TargetPort.Type == intstr.Int {
			c.portNumber(joinPath(pp, "targetPort"), port.TargetPort.IntVal, true)
		} else {
			for _, msg := range cleanMsgs(validation.IsValidPortName(port.TargetPort.StrVal)) {
				c.errorf(joinPath(pp, "targetPort"), "invalid port name %q: %s", port.TargetPort.StrVal, msg)
			}
		}
		if port.NodePort != 0 {
			if !hasNodePorts(s) {
				c.errorf(joinPath(pp, "nodePort"), "only a NodePort or LoadBalancer Service (that allocates node ports) may set nodePort")
			} else if r := c.l.nodePorts; port.NodePort < r[0] || port.NodePort > r[1] {
				c.errorf(joinPath(pp, "nodePort"), "port %d is outside the service node port range %d-%d (--service-node-port-range)", port.NodePort, r[0], r[1])
			}
		}
	}
}

// serviceTraffic validates sessionAffinity, its config and
// externalTrafficPolicy.
func (c *check) serviceTraffic(s *corev1.Service) {
	switch s.Spec.SessionAffinity {
	case "", corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP:
	default:
		c.errorf("spec.sessionAffinity", "unsupported value %q: want None or ClientIP", s.Spec.SessionAffinity)
	}
	if cfg := s.Spec.SessionAffinityConfig; cfg != nil && cfg.ClientIP != nil && cfg.ClientIP.TimeoutSeconds != nil {
		t := *cfg.ClientIP.TimeoutSeconds
		switch {
		case s.Spec.SessionAffinity != corev1.ServiceAffinityClientIP:
			c.errorf("spec.sessionAffinityConfig", "only a Service with sessionAffinity: ClientIP may set it")
		case t <= 0 || t > MaxAffinityTimeout:
			c.errorf("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "%d out of range: want 1 to %d", t, MaxAffinityTimeout)
		}
	}
	switch p := s.Spec.ExternalTrafficPolicy; p {
	case "", corev1.ServiceExternalTrafficPolicyCluster:
	case corev1.ServiceExternalTrafficPolicyLocal:
		if s.Spec.Type != corev1.ServiceTypeNodePort && s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			c.errorf("spec.externalTrafficPolicy", "Local applies to NodePort and LoadBalancer Services only")
		}
	default:
		c.errorf("spec.externalTrafficPolicy", "unsupported value %q: want Cluster or Local", p)
	}
}

// secretRequiredKeys lists the data keys well-known Secret types must hold.
var secretRequiredKeys = map[corev1.SecretType][]string{
	corev1.SecretTypeTLS:              {corev1.TLSCertKey, corev1.TLSPrivateKeyKey},
	corev1.SecretTypeDockerConfigJson: {corev1.DockerConfigJsonKey},
	corev1.SecretTypeBasicAuth:        {},
	corev1.SecretTypeSSHAuth:          {corev1.SSHAuthPrivateKey},
}

// secret validates a Secret (after stringData was folded into data).
func (c *check) secret(s *corev1.Secret) {
	for _, k := range sortedKeys(s.Data) {
		c.dataKey(keyPath("data", k), k)
	}
	size := 0
	for _, v := range s.Data {
		size += len(v)
	}
	c.dataSize("data", size)
	for _, k := range secretRequiredKeys[s.Type] {
		if _, ok := s.Data[k]; !ok {
			c.errorf("data", "a Secret of type %s must hold the key %q", s.Type, k)
		}
	}
}

// configMap validates a ConfigMap.
func (c *check) configMap(cm *corev1.ConfigMap) {
	for _, k := range sortedKeys(cm.Data) {
		c.dataKey(keyPath("data", k), k)
	}
	for _, k := range sortedKeys(cm.BinaryData) {
		c.dataKey(keyPath("binaryData", k), k)
		if _, dup := cm.Data[k]; dup {
			c.errorf(keyPath("binaryData", k), "key %q is in both data and binaryData", k)
		}
	}
	size := 0
	for _, v := range cm.Data {
		size += len(v)
	}
	for _, v := range cm.BinaryData {
		size += len(v)
	}
	c.dataSize("data", size)
}

// dataSize checks the total size of a ConfigMap's or Secret's values.
func (c *check) dataSize(p string, size int) {
	if size > MaxDataBytes {
		c.errorf(p, "%s holds %d bytes of data, more than the limit of %d (1 MiB)", c.it.obj.Kind, size, MaxDataBytes)
	}
}

// dataKey checks a ConfigMap or Secret key.
func (c *check) dataKey(p, k string) {
	for _, msg := range cleanMsgs(validation.IsConfigMapKey(k)) {
		c.errorf(p, "invalid key %q: %s", k, msg)
	}
}

// accessModes are the PVC access modes.
var accessModes = map[corev1.PersistentVolumeAccessMode]bool{
	corev1.ReadWriteOnce: true, corev1.ReadOnlyMany: true, corev1.ReadWriteMany: true, corev1.ReadWriteOncePod: true,
}

// pvc validates a PersistentVolumeClaim.
func (c *check) pvc(p *corev1.PersistentVolumeClaim) { c.pvcAt("", p) }

// pvcAt validates a PersistentVolumeClaim at field path at ("" for a
// PersistentVolumeClaim object, the template's path in a StatefulSet).
func (c *check) pvcAt(at string, p *corev1.PersistentVolumeClaim) {
	if len(p.Spec.AccessModes) == 0 {
		c.errorf(joinPath(at, "spec.accessModes"), "required: at least one access mode")
	}
	for i, m := range p.Spec.AccessModes {
		switch {
		case m == corev1.ReadWriteOncePod:
			// One pod at a time is not enforced: replicas on one host
			// share a claim's directory.
			c.errorf(indexPath(joinPath(at, "spec.accessModes"), i), "ReadWriteOncePod is not supported by kelpie (the pods of a host share a claim's directory): use ReadWriteOnce")
		case !accessModes[m]:
			c.errorf(indexPath(joinPath(at, "spec.accessModes"), i), "unsupported value %q: want ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod", m)
		}
	}
	for _, part := range []struct {
		name string
		list corev1.ResourceList
	}{{"requests", p.Spec.Resources.Requests}, {"limits", p.Spec.Resources.Limits}} {
		for _, name := range sortedKeys(part.list) {
			if corev1.ResourceName(name) != corev1.ResourceStorage {
				c.errorf(keyPath(joinPath(at, "spec.resources."+part.name), name), "resource %q is not supported for a PersistentVolumeClaim (only storage)", name)
			}
		}
	}
	st, ok := p.Spec.Resources.Requests[corev1.ResourceStorage]
	switch {
	case !ok:
		c.errorf(joinPath(at, "spec.resources.requests"), "required: a storage request such as storage: 1Gi")
	case st.Sign() <= 0:
		c.errorf(keyPath(joinPath(at, "spec.resources.requests"), "storage"), "must be more than 0")
	}
}

// network validates a kelpie Network.
func (c *check) network(n *Network) {
	s := &n.Spec
	switch s.Type {
	case NetworkBridge:
		if s.Master != "" {
			c.errorf("spec.master", "only macvlan and ipvlan networks have a master interface")
		}
	case NetworkMacvlan, NetworkIPvlan:
		if s.Master == "" {
			c.errorf("spec.master", "required for a %s network: the parent interface, e.g. eth0", s.Type)
		} else if len(s.Master) > 15 {
			c.errorf("spec.master", "interface name %q is longer than 15 characters", s.Master)
		}
	case "":
		c.errorf("spec.type", "required: bridge, macvlan or ipvlan")
	default:
		c.errorf("spec.type", "unsupported value %q: want bridge, macvlan or ipvlan", s.Type)
	}
	if s.Subnet == "" {
		c.errorf("spec.subnet", "required: a CIDR such as 10.10.0.0/24")
		return
	}
	prefix, err := netip.ParsePrefix(s.Subnet)
	if err != nil {
		c.errorf("spec.subnet", "invalid CIDR %q", s.Subnet)
		return
	}
	if prefix.Masked() != prefix {
		c.errorf("spec.subnet", "%q has host bits set; did you mean %s?", s.Subnet, prefix.Masked())
	}
	if prefix.Addr().Is4() && prefix.Bits() > 30 {
		c.errorf("spec.subnet", "%q is too small for pods; use /30 or larger", s.Subnet)
	}
	if s.Gateway != "" {
		gw, err := netip.ParseAddr(s.Gateway)
		switch {
		case err != nil:
			c.errorf("spec.gateway", "invalid IP address %q", s.Gateway)
		case !prefix.Contains(gw):
			c.errorf("spec.gateway", "gateway %s is outside the subnet %s", s.Gateway, s.Subnet)
		case gw == prefix.Masked().Addr():
			c.errorf("spec.gateway", "gateway %s is the subnet's network address", s.Gateway)
		}
	}
}
