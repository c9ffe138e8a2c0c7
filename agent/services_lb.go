package agent

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/netplan"
)

// lbDetail is what a host gossips about the LoadBalancer Services it
// serves (nodeDetail.LB): its addresses, the Services' ingress, and the
// ports it could not serve.
type lbDetail struct {
	// Addrs are the host's addresses where LoadBalancer ports answer.
	Addrs []string `json:"addrs,omitempty"`
	// Taken maps a Service ("ns/name") to why some of its ports are not
	// served here; Served lists the Services with a port served here.
	Taken  map[string][]string `json:"taken,omitempty"`
	Served []string            `json:"served,omitempty"`
}

// procNetFiles are the socket tables a LoadBalancer port is checked
// against, with the state that marks a socket bound for incoming traffic
// (TCP LISTEN, UDP unconnected).
var procNetFiles = []struct {
	path  string
	proto corev1.Protocol
	state string
}{
	{"/proc/net/tcp", corev1.ProtocolTCP, "0A"},
	{"/proc/net/tcp6", corev1.ProtocolTCP, "0A"},
	{"/proc/net/udp", corev1.ProtocolUDP, "07"},
	{"/proc/net/udp6", corev1.ProtocolUDP, "07"},
}

// claimLoadBalancers decides which LoadBalancer ports this host serves
// (netplan.ClaimLoadBalancerPorts) against its pods' hostPorts and the
// sockets listening on its addresses, after every resolve.
func (a *Agent) claimLoadBalancers() {
	s := &a.svc
	lb := false
	for i := range s.resolved {
		lb = lb || s.resolved[i].LoadBalancer
	}
	if !lb {
		return
	}
	netplan.ClaimLoadBalancerPorts(s.resolved, a.cfg.Host.Name, a.lbPortUses())
}

// lbPortUses are the ports held on this host apart from Services: the
// hostPorts of the pods placed here, then the sockets listening on a
// wildcard address or on one of the host's addresses.
func (a *Agent) lbPortUses() []netplan.PortUse {
	var out []netplan.PortUse
	if a.target != nil {
		for _, p := range a.target.desired.Pods {
			for _, c := range p.Containers {
				for _, cp := range c.Ports {
					if cp.HostPort != 0 {
						out = append(out, netplan.PortUse{Port: cp.HostPort, Protocol: containerPort(cp).Protocol,
							By: "the hostPort of pod " + p.Namespace + "/" + p.Name})
					}
				}
			}
		}
	}
	ips := a.nodeIPs()
	for _, f := range procNetFiles {
		fh, err := os.Open(f.path)
		if err != nil {
			continue // no IPv6, say
		}
		out = append(out, listeningPorts(fh, f.proto, f.state, ips)...)
		fh.Close()
	}
	return out
}

// listeningPorts parses a /proc/net/{tcp,udp}[6] table: the sockets in
// state bound to a wildcard address or to one of ips. Loopback-only
// sockets do not count: LoadBalancer ports answer on ips only.
func listeningPorts(r io.Reader, proto corev1.Protocol, state string, ips []netip.Addr) []netplan.PortUse {
	var out []netplan.PortUse
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != state {
			continue
		}
		hexAddr, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			continue
		}
		addr, ok := procAddr(hexAddr)
		if !ok || !addr.IsUnspecified() && !slices.Contains(ips, addr) {
			continue
		}
		out = append(out, netplan.PortUse{Port: int32(port), Protocol: proto,
			By: "a socket listening on " + netip.AddrPortFrom(addr, uint16(port)).String()})
	}
	return out
}

// procAddr decodes an address of /proc/net: 4 or 16 bytes, each 32-bit
// word in host (little-endian) order; a v4-mapped IPv6 address is unmapped.
func procAddr(s string) (netip.Addr, bool) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 && len(b) != 16 {
		return netip.Addr{}, false
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	addr, _ := netip.AddrFromSlice(b)
	return addr.Unmap(), true
}

// lbDetail is this host's part of the LoadBalancer status, gossiped; nil
// when there is no LoadBalancer Service.
func (a *Agent) lbDetail() *lbDetail {
	var d *lbDetail
	for i := range a.svc.resolved {
		s := &a.svc.resolved[i]
		if !s.LoadBalancer {
			continue
		}
		if d == nil {
			d = &lbDetail{}
			for _, ip := range a.nodeIPs() {
				d.Addrs = append(d.Addrs, ip.String())
			}
		}
		served := false
		for _, p := range s.Ports {
			if p.LBConflict != "" {
				if d.Taken == nil {
					d.Taken = map[string][]string{}
				}
				d.Taken[s.Key()] = append(d.Taken[s.Key()], p.LBConflict)
			} else if s.ClusterIP.IsValid() {
				served = true
			}
		}
		if served {
			d.Served = append(d.Served, s.Key())
		}
	}
	return d
}

// lbStatus adds to the LoadBalancer Services of st their ingress (every
// live host's addresses where one of their ports is served) and the
// ports hosts could not serve.
func (a *Agent) lbStatus(st []ServiceStatus) {
	details := []*lbDetail{a.lbDetail()}
	if a.cluster != nil {
		for _, m := range a.cluster.Members() {
			if m.Self || !m.HasStatus || m.State == gossip.StateDead || m.State == gossip.StateLeft {
				continue
			}
			var d nodeDetail
			if json.Unmarshal(m.Status.Data, &d) == nil && d.LB != nil {
				details = append(details, d.LB)
			}
		}
	}
	for i := range st {
		s := &st[i]
		if s.Type != string(corev1.ServiceTypeLoadBalancer) {
			continue
		}
		k := s.Namespace + "/" + s.Name
		for _, d := range details {
			if d == nil {
				continue
			}
			if slices.Contains(d.Served, k) {
				s.Ingress = append(s.Ingress, d.Addrs...)
			}
			s.Conflicts = append(s.Conflicts, d.Taken[k]...)
		}
		slices.Sort(s.Ingress)
		s.Ingress = slices.Compact(s.Ingress)
		slices.Sort(s.Conflicts)
	}
}
