package netplan

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ServiceKey returns "NAMESPACE/NAME" of a Service ("default" when the
// namespace is empty), the key of State.Services.
func ServiceKey(svc *corev1.Service) string {
	ns := svc.Namespace
	if ns == "" {
		ns = "default"
	}
	return ns + "/" + svc.Name
}

// PortKey returns "PORT/PROTOCOL" of a Service port ("80/TCP"), the key of
// ServiceAlloc.NodePorts.
func PortKey(p corev1.ServicePort) string {
	proto := p.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return strconv.Itoa(int(p.Port)) + "/" + string(proto)
}

// serviceAllocator holds one allocation of Service IPs and node ports.
type serviceAllocator struct {
	cfg    Config
	now    time.Time
	report *Report
	out    map[string]ServiceAlloc
	// ipOwner and portOwner map what is held to its Service; portNum marks
	// node port numbers held for any protocol.
	ipOwner   map[netip.Addr]string
	portOwner map[string]string // "NODEPORT/PROTOCOL"
	portNum   map[int32]bool
	// released is the quarantine, expired entries dropped; ipQ and portQ
	// index it by what was released, to the Service that released it.
	released []Released
	ipQ      map[netip.Addr]string
	portQ    map[int32]string
}

// allocateServices gives every Service its virtual IP and node ports,
// starting from prev. The rules:
//
//   - A Service keeps what it holds for its lifetime: its IP unless the
//     manifest asks for another (or the service-cidr no longer contains
//     it), its node ports unless the manifest asks for others.
//   - clusterIP: None is headless: no IP. A clusterIP the manifest sets is
//     honoured if it is in the service-cidr, not reserved (the network
//     address, the first address, which Kubernetes gives the "kubernetes"
//     Service, and the broadcast address) and not held by another Service;
//     otherwise the Service gets no IP and the report says why.
//   - Other Services get an IP chosen deterministically: a hash of
//     NAMESPACE/NAME picks the start of a linear probe in the upper part of
//     the range (the lower part, 1/16 of it between 16 and 256 addresses,
//     is left for manifests that set one, as Kubernetes does), then the
//     lower part. Node ports work the same in the node port range (the
//     lower 1/32, 16 to 128 ports, kept for manifests).
//   - What a Service gives up (deleted, changed, headless) is quarantined
//     for cfg.Quarantine: no other Service gets it, except by asking for it
//     in its manifest. The Service that gave it up gets it back first.
func allocateServices(prev *State, svcs []*corev1.Service, cfg Config, now time.Time, report *Report) (map[string]ServiceAlloc, []Released, error) {
	a := &serviceAllocator{cfg: cfg, now: now, report: report, out: map[string]ServiceAlloc{},
		ipOwner: map[netip.Addr]string{}, portOwner: map[string]string{}, portNum: map[int32]bool{},
		ipQ: map[netip.Addr]string{}, portQ: map[int32]string{}}
	byKey := make(map[string]*corev1.Service, len(svcs))
	for i, svc := range svcs {
		if svc == nil || svc.Name == "" {
			return nil, nil, fmt.Errorf("service %d of %d has no name", i+1, len(svcs))
		}
		k := ServiceKey(svc)
		if byKey[k] != nil {
			return nil, nil, fmt.Errorf("service %s is listed twice", k)
		}
		byKey[k] = svc
	}
	var prevAllocs map[string]ServiceAlloc
	if prev != nil {
		prevAllocs = prev.Services
		a.quarantine(prev.Released)
	}
	keys := sortedKeys(byKey)
	for _, k := range keys {
		a.keep(k, byKey[k], prevAllocs[k])
	}
	for _, k := range sortedKeys(prevAllocs) {
		if byKey[k] == nil {
			a.releaseAll(k, prevAllocs[k], "deleted")
		}
	}
	for _, k := range keys {
		a.explicit(k, byKey[k])
	}
	for _, k := range keys {
		a.dynamic(k, byKey[k])
	}
	a.pruneReleased()
	if len(a.out) == 0 {
		a.out = nil
	}
	return a.out, a.released, nil
}

// quarantine keeps the released entries younger than cfg.Quarantine.
func (a *serviceAllocator) quarantine(prev []Released) {
	for _, r := range prev {
		if a.now.Sub(r.Since) >= a.cfg.Quarantine {
			continue
		}
		a.released = append(a.released, r)
		if r.IP.IsValid() {
			a.ipQ[r.IP] = r.Service
		}
		if r.NodePort != 0 {
			a.portQ[r.NodePort] = r.Service
		}
	}
}

// release quarantines an IP or node port k gave up.
func (a *serviceAllocator) release(k string, ip netip.Addr, port string, nodePort int32, why string) {
	a.released = append(a.released, Released{Service: k, IP: ip, Port: port, NodePort: nodePort, Since: a.now})
	if ip.IsValid() {
		a.ipQ[ip] = k
		a.report.note("service "+k, "clusterIP %s released (%s)", ip, why)
	} else {
		a.portQ[nodePort] = k
		a.report.note("service "+k, "node port %d released (%s)", nodePort, why)
	}
}

// releaseAll quarantines all that k held.
func (a *serviceAllocator) releaseAll(k string, held ServiceAlloc, why string) {
	if held.ClusterIP.IsValid() {
		a.release(k, held.ClusterIP, "", 0, why)
	}
	for _, pk := range sortedKeys(held.NodePorts) {
		a.release(k, netip.Addr{}, pk, held.NodePorts[pk], why)
	}
}

// pruneReleased drops quarantine entries for what is held again.
func (a *serviceAllocator) pruneReleased() {
	kept := a.released[:0]
	for _, r := range a.released {
		if r.IP.IsValid() && a.ipOwner[r.IP] != "" || r.NodePort != 0 && a.portNum[r.NodePort] {
			continue
		}
		kept = append(kept, r)
	}
	a.released = kept
	if len(a.released) == 0 {
		a.released = nil
	}
}

// wantsNodePorts reports whether svc gets node ports.
func wantsNodePorts(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeNodePort || lbNodePorts(svc)
}

// keep carries over what k held and still may hold.
func (a *serviceAllocator) keep(k string, svc *corev1.Service, held ServiceAlloc) {
	alloc := ServiceAlloc{}
	switch want := svc.Spec.ClusterIP; {
	case want == corev1.ClusterIPNone:
		alloc.Headless = true
		if held.ClusterIP.IsValid() {
			a.release(k, held.ClusterIP, "", 0, "now headless")
		}
	case held.ClusterIP.IsValid():
		explicit, err := netip.ParseAddr(want)
		switch {
		case want != "" && (err != nil || explicit != held.ClusterIP):
			a.release(k, held.ClusterIP, "", 0, "the manifest sets clusterIP "+want)
		case a.reservedIP(held.ClusterIP) != "":
			a.release(k, held.ClusterIP, "", 0, a.reservedIP(held.ClusterIP))
		case a.ipOwner[held.ClusterIP] != "":
			a.release(k, held.ClusterIP, "", 0, "also held by service "+a.ipOwner[held.ClusterIP])
		default:
			alloc.ClusterIP = held.ClusterIP
			a.ipOwner[held.ClusterIP] = k
		}
	}
	wanted := map[string]bool{}
	if wantsNodePorts(svc) && !alloc.Headless {
		for _, p := range svc.Spec.Ports {
			pk := PortKey(p)
			wanted[pk] = true
			np, ok := held.NodePorts[pk]
			if !ok || p.NodePort != 0 && p.NodePort != np || !a.cfg.NodePorts.Contains(np) || a.portOwner[nodePortKey(np, p.Protocol)] != "" {
				continue
			}
			a.holdPort(k, &alloc, pk, np, p.Protocol)
		}
	}
	for _, pk := range sortedKeys(held.NodePorts) {
		if np := held.NodePorts[pk]; alloc.NodePorts[pk] != np {
			why := "the manifest changed it"
			if !wanted[pk] {
				why = "the port is gone"
			}
			a.release(k, netip.Addr{}, pk, np, why)
		}
	}
	a.out[k] = alloc
}

// nodePortKey is the key of portOwner.
func nodePortKey(np int32, proto corev1.Protocol) string {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return strconv.Itoa(int(np)) + "/" + string(proto)
}

// holdPort records that k holds node port np for its port pk.
func (a *serviceAllocator) holdPort(k string, alloc *ServiceAlloc, pk string, np int32, proto corev1.Protocol) {
	if alloc.NodePorts == nil {
		alloc.NodePorts = map[string]int32{}
	}
	alloc.NodePorts[pk] = np
	a.portOwner[nodePortKey(np, proto)] = k
	a.portNum[np] = true
}

// reservedIP says why ip may not be a Service IP, or "".
func (a *serviceAllocator) reservedIP(ip netip.Addr) string {
	r := spanOf(a.cfg.ServiceCIDR)
	switch v := uint64(u32(ip)); {
	case !ip.Is4() || !a.cfg.ServiceCIDR.Contains(ip):
		return "outside the service-cidr " + a.cfg.ServiceCIDR.String()
	case v == r.lo:
		return "the network address of the service-cidr"
	case v == r.lo+1:
		return "reserved (the first address of the service-cidr, the kubernetes Service's in Kubernetes)"
	case v == r.hi:
		return "the broadcast address of the service-cidr"
	}
	return ""
}

// explicit honours the clusterIP and node ports the manifest sets.
func (a *serviceAllocator) explicit(k string, svc *corev1.Service) {
	alloc := a.out[k]
	subject := "service " + k
	if want := svc.Spec.ClusterIP; want != "" && want != corev1.ClusterIPNone && !alloc.ClusterIP.IsValid() {
		ip, err := netip.ParseAddr(want)
		switch {
		case err != nil:
			a.report.problem(subject, "no clusterIP: %q is not an IP address", want)
		case a.reservedIP(ip) != "":
			a.report.problem(subject, "no clusterIP: %s is %s", ip, a.reservedIP(ip))
		case a.ipOwner[ip] != "":
			a.report.problem(subject, "no clusterIP: %s is held by service %s", ip, a.ipOwner[ip])
		default:
			alloc.ClusterIP = ip
			a.ipOwner[ip] = k
		}
	}
	if wantsNodePorts(svc) && alloc.Headless {
		a.report.problem(subject, "no node ports: a headless Service (clusterIP: None) has none")
	}
	if wantsNodePorts(svc) && !alloc.Headless {
		for _, p := range svc.Spec.Ports {
			pk := PortKey(p)
			if p.NodePort == 0 || alloc.NodePorts[pk] == p.NodePort {
				continue
			}
			switch owner := a.portOwner[nodePortKey(p.NodePort, p.Protocol)]; {
			case !a.cfg.NodePorts.Contains(p.NodePort):
				a.report.problem(subject, "port %s: no node port: %d is outside the service-node-port-range %s", pk, p.NodePort, a.cfg.NodePorts)
			case owner != "":
				a.report.problem(subject, "port %s: no node port: %d/%s is held by service %s", pk, p.NodePort, p.Protocol, owner)
			default:
				a.holdPort(k, &alloc, pk, p.NodePort, p.Protocol)
			}
		}
	}
	a.out[k] = alloc
}

// dynamic allocates what the manifest leaves to the leader.
func (a *serviceAllocator) dynamic(k string, svc *corev1.Service) {
	alloc := a.out[k]
	subject := "service " + k
	if svc.Spec.ClusterIP == "" && !alloc.ClusterIP.IsValid() && !alloc.Headless {
		if ip, ok := a.pickIP(k); ok {
			alloc.ClusterIP = ip
			a.ipOwner[ip] = k
		} else {
			a.report.problem(subject, "no clusterIP: service-cidr %s exhausted", a.cfg.ServiceCIDR)
		}
	}
	if wantsNodePorts(svc) && !alloc.Headless {
		for _, p := range svc.Spec.Ports {
			pk := PortKey(p)
			if p.NodePort != 0 || alloc.NodePorts[pk] != 0 {
				continue
			}
			if np, ok := a.pickPort(k, pk); ok {
				a.holdPort(k, &alloc, pk, np, p.Protocol)
			} else {
				a.report.problem(subject, "port %s: no node port: service-node-port-range %s exhausted", pk, a.cfg.NodePorts)
			}
		}
	}
	a.out[k] = alloc
}

// pickIP chooses a free Service IP for k: one k released, else a probe.
func (a *serviceAllocator) pickIP(k string) (netip.Addr, bool) {
	for _, r := range a.released {
		if r.Service == k && r.IP.IsValid() && a.ipOwner[r.IP] == "" && a.reservedIP(r.IP) == "" {
			return r.IP, true
		}
	}
	r := spanOf(a.cfg.ServiceCIDR)
	usable := span{r.lo + 2, r.hi - 1}
	v, ok := pickFree(fnv64(k), bands(usable, min(max(16, (r.hi-r.lo+1)/16), 256)), func(v uint64) bool {
		ip := addr4(uint32(v))
		q := a.ipQ[ip]
		return a.ipOwner[ip] == "" && (q == "" || q == k)
	})
	return addr4(uint32(v)), ok
}

// pickPort chooses a free node port for port pk of k.
func (a *serviceAllocator) pickPort(k, pk string) (int32, bool) {
	for _, r := range a.released {
		if r.Service == k && r.Port == pk && r.NodePort != 0 && !a.portNum[r.NodePort] && a.cfg.NodePorts.Contains(r.NodePort) {
			return r.NodePort, true
		}
	}
	r := span{uint64(a.cfg.NodePorts.Min), uint64(a.cfg.NodePorts.Max)}
	v, ok := pickFree(fnv64(k+":"+pk), bands(r, min(max(16, (r.hi-r.lo+1)/32), 128)), func(v uint64) bool {
		q := a.portQ[int32(v)]
		return !a.portNum[int32(v)] && (q == "" || q == k)
	})
	return int32(v), ok
}

// bands splits r into its upper part (above the first static numbers), to
// be tried first, and its lower part. A range too small for that is one band.
func bands(r span, static uint64) []span {
	if r.hi < r.lo {
		return nil
	}
	if r.hi-r.lo+1 <= 2*static {
		return []span{r}
	}
	return []span{{r.lo + static, r.hi}, {r.lo, r.lo + static - 1}}
}

// pickFree probes each span in turn from h modulo its size, wrapping, for a
// number free accepts.
func pickFree(h uint64, spans []span, free func(uint64) bool) (uint64, bool) {
	for _, s := range spans {
		n := s.hi - s.lo + 1
		start := h % n
		for i := uint64(0); i < n; i++ {
			if v := s.lo + (start+i)%n; free(v) {
				return v, true
			}
		}
	}
	return 0, false
}
