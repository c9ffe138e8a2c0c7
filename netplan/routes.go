package netplan

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/kelpie-dev/kelpie/scheduler"
)

// PodNetworkMode chooses how a host reaches the pods of other hosts
// (--pod-network-mode).
type PodNetworkMode string

const (
	// ModeAuto routes a peer on a shared link with host-gw and any other
	// peer through VXLAN, choosing per peer.
	ModeAuto PodNetworkMode = "auto"
	// ModeHostGW routes every peer's slice via the peer's address on a
	// shared link; a peer with no shared link is not reached.
	ModeHostGW PodNetworkMode = "host-gw"
	// ModeVXLAN sends every peer's pod traffic through the VXLAN device.
	ModeVXLAN PodNetworkMode = "vxlan"
)

// DefaultPodNetworkMode is the mode of a host started without
// --pod-network-mode: host-gw where it works (no encapsulation), VXLAN
// where it does not.
const DefaultPodNetworkMode = ModeAuto

// ParsePodNetworkMode reads a --pod-network-mode value; empty is the default.
func ParsePodNetworkMode(s string) (PodNetworkMode, error) {
	switch m := PodNetworkMode(s); m {
	case "":
		return DefaultPodNetworkMode, nil
	case ModeAuto, ModeHostGW, ModeVXLAN:
		return m, nil
	}
	return "", fmt.Errorf("--pod-network-mode %q: want auto, host-gw or vxlan", s)
}

// Connected is a subnet directly connected to this host: the network of one
// of its interface addresses.
type Connected struct {
	// Prefix is the subnet (an address with its prefix length; it need not
	// be masked).
	Prefix netip.Prefix
	// Link is the interface holding the address.
	Link string
}

// RouteHost is this host as Routes needs it.
type RouteHost struct {
	// Name is this host's node name (its own slice is not routed).
	Name string
	// Addr is the node IP: the address peers send VXLAN traffic to, and
	// the tunnel's source.
	Addr netip.Addr
	// Link is the interface holding Addr: the VXLAN device's underlay.
	Link string
	// Connected lists the subnets of this host's interfaces. Subnets that
	// overlap the cluster pod range (pod bridges, the VXLAN device) and
	// single addresses (/32) are not links to other hosts and are ignored.
	Connected []Connected
	// Mode is --pod-network-mode; empty is DefaultPodNetworkMode.
	Mode PodNetworkMode
}

// Peer is another cluster member as routing needs it: from the membership
// view and the node metadata it gossips.
type Peer struct {
	// Name is the peer's node name: its slice is State.Slices[Name].
	Name string
	// State is its membership state: alive and suspect peers are routed
	// (as their pods stay endpoints), dead and left ones are not.
	State scheduler.NodeState
	// Addr is the peer's node IP.
	Addr netip.Addr
	// VTEPMAC is the MAC of the peer's VXLAN device; nil means the one
	// VTEPMAC derives from its slice, which is what every kelpie host sets.
	VTEPMAC net.HardwareAddr
}

// Route is one route to a peer's slice.
type Route struct {
	// Peer is the peer's node name.
	Peer string
	// Mode is ModeHostGW or ModeVXLAN.
	Mode PodNetworkMode
	// Dst is the peer's slice.
	Dst netip.Prefix
	// Via is the next hop: the peer's node IP (host-gw) or its VTEP
	// address (VXLAN, reached "onlink" through the VXLAN device).
	Via netip.Addr
	// Link is the shared link of a host-gw route; empty for VXLAN routes,
	// which go through the VXLAN device.
	Link string
	// PeerAddr is the peer's node IP (the FDB entry's destination for
	// VXLAN).
	PeerAddr netip.Addr
	// PeerMAC is the MAC of the peer's VXLAN device (VXLAN routes only):
	// the neighbour entry Via → PeerMAC and the FDB entry PeerMAC →
	// PeerAddr.
	PeerMAC net.HardwareAddr
}

// String is the route as `ip route` would show it.
func (r Route) String() string {
	if r.Mode == ModeVXLAN {
		return fmt.Sprintf("%s via %s onlink (vxlan to %s at %s, %s)", r.Dst, r.Via, r.Peer, r.PeerAddr, r.PeerMAC)
	}
	return fmt.Sprintf("%s via %s dev %s (host-gw to %s)", r.Dst, r.Via, r.Link, r.Peer)
}

// VTEP is this host's end of the VXLAN tunnels.
type VTEP struct {
	// Addr is its address on the VXLAN device (VTEPAddr of this host's
	// slice, as a /32) and MAC the device's MAC (VTEPMAC).
	Addr netip.Addr
	MAC  net.HardwareAddr
	// Local is the node IP the tunnel's packets leave from, on the
	// underlay interface Link.
	Local netip.Addr
	Link  string
}

// Unrouted is a peer that is up but gets no route, and why.
type Unrouted struct {
	Peer   string
	Reason string
}

// RouteSet is the routing a host wants towards its peers.
type RouteSet struct {
	// VTEP is the VXLAN device to have; nil means none (delete it): in
	// host-gw mode, or in auto mode while no peer needs it, so that the
	// VXLAN port is open only when it is used.
	VTEP *VTEP
	// Routes holds one route per routed peer, ordered by Dst.
	Routes []Route
	// Unrouted lists, by name, the peers that are up and hold a slice but
	// cannot be routed, for status.
	Unrouted []Unrouted
}

// Routes computes the routes self wants to the slices of its peers, under
// the allocations of state:
//
//   - A peer that is dead or left, has no slice, or is self gets no route:
//     routes follow membership.
//   - host-gw (`SLICE via PEER_IP dev LINK`) when the peer's address is in
//     one of self's connected subnets (the longest match gives LINK), in
//     auto and host-gw modes.
//   - VXLAN (`SLICE via PEER_VTEP onlink dev VXLAN`, with a neighbour entry
//     PEER_VTEP → PEER_MAC and an FDB entry PEER_MAC → PEER_IP) otherwise in
//     auto mode, and for every peer in vxlan mode. It needs self's own slice
//     (its VTEP address) and node IP.
//
// Peers that are up but cannot be routed are listed in Unrouted with the
// reason. The error is only for an invalid mode or peer list.
func Routes(state *State, self RouteHost, peers []Peer) (RouteSet, error) {
	mode, err := ParsePodNetworkMode(string(self.Mode))
	if err != nil {
		return RouteSet{}, err
	}
	var set RouteSet
	if state == nil {
		state = &State{}
	}
	links := sharedLinks(self.Connected, state.ClusterCIDR)
	mySlice, haveSlice := state.SliceOf(self.Name)
	vtep := &VTEP{Local: self.Addr, Link: self.Link}
	if haveSlice {
		vtep.Addr, vtep.MAC = VTEPAddr(mySlice), VTEPMAC(mySlice)
	}
	var vxlanWhy string
	switch {
	case !haveSlice:
		vxlanWhy = fmt.Sprintf("this host (%s) holds no slice, so it has no VTEP address", self.Name)
	case !self.Addr.Is4():
		vxlanWhy = "this host has no IPv4 node address for the VXLAN tunnel"
	}

	seen := map[string]bool{}
	for _, p := range peers {
		if p.Name == "" {
			return RouteSet{}, fmt.Errorf("routes: a peer has no name")
		}
		if seen[p.Name] {
			return RouteSet{}, fmt.Errorf("routes: peer %s is listed twice", p.Name)
		}
		seen[p.Name] = true
		if p.Name == self.Name || !(p.State == scheduler.NodeAlive || p.State == scheduler.NodeSuspect) {
			continue
		}
		slice, ok := state.SliceOf(p.Name)
		if !ok {
			continue // it starts no pods: nothing to reach
		}
		unrouted := func(format string, args ...any) {
			set.Unrouted = append(set.Unrouted, Unrouted{Peer: p.Name, Reason: fmt.Sprintf(format, args...)})
		}
		switch {
		case !p.Addr.Is4():
			unrouted("no IPv4 node address known")
			continue
		case p.Addr == self.Addr:
			unrouted("its node address %s is this host's", p.Addr)
			continue
		case haveSlice && slice.Overlaps(mySlice):
			unrouted("its slice %s overlaps this host's %s", slice, mySlice)
			continue
		}
		link, shared := links.lookup(p.Addr)
		switch {
		case shared && mode != ModeVXLAN:
			set.Routes = append(set.Routes, Route{
				Peer: p.Name, Mode: ModeHostGW, Dst: slice.Masked(), Via: p.Addr, Link: link, PeerAddr: p.Addr,
			})
		case mode == ModeHostGW:
			unrouted("its address %s is on no link this host shares (host-gw needs one; --pod-network-mode auto or vxlan tunnels to it)", p.Addr)
		case vxlanWhy != "":
			unrouted("not on a shared link, and %s", vxlanWhy)
		default:
			mac := p.VTEPMAC
			if len(mac) == 0 {
				mac = VTEPMAC(slice)
			}
			set.Routes = append(set.Routes, Route{
				Peer: p.Name, Mode: ModeVXLAN, Dst: slice.Masked(), Via: VTEPAddr(slice), PeerAddr: p.Addr,
				PeerMAC: slices.Clone(mac),
			})
		}
	}
	slices.SortFunc(set.Routes, func(a, b Route) int { return cmpPrefix(a.Dst, b.Dst) })
	slices.SortFunc(set.Unrouted, func(a, b Unrouted) int { return cmp.Compare(a.Peer, b.Peer) })

	needVXLAN := mode == ModeVXLAN && vxlanWhy == ""
	for _, r := range set.Routes {
		needVXLAN = needVXLAN || r.Mode == ModeVXLAN
	}
	if needVXLAN {
		set.VTEP = vtep
	}
	return set, nil
}

// Equal reports whether two route sets program the same thing.
func (s RouteSet) Equal(t RouteSet) bool {
	if (s.VTEP == nil) != (t.VTEP == nil) {
		return false
	}
	if s.VTEP != nil && (s.VTEP.Addr != t.VTEP.Addr || !bytes.Equal(s.VTEP.MAC, t.VTEP.MAC) || s.VTEP.Local != t.VTEP.Local || s.VTEP.Link != t.VTEP.Link) {
		return false
	}
	return slices.EqualFunc(s.Routes, t.Routes, func(a, b Route) bool {
		return a.Peer == b.Peer && a.Mode == b.Mode && a.Dst == b.Dst && a.Via == b.Via && a.Link == b.Link &&
			a.PeerAddr == b.PeerAddr && bytes.Equal(a.PeerMAC, b.PeerMAC)
	})
}

// linkTable is the connected subnets that lead to other hosts.
type linkTable []Connected

// sharedLinks keeps the connected subnets that can hold another host's
// address: IPv4, wider than a single address, outside the pod range.
func sharedLinks(conn []Connected, cluster netip.Prefix) linkTable {
	var t linkTable
	for _, c := range conn {
		p := c.Prefix.Masked()
		if !p.Addr().Is4() || p.Bits() >= 32 || (cluster.IsValid() && p.Overlaps(cluster)) {
			continue
		}
		t = append(t, Connected{Prefix: p, Link: c.Link})
	}
	return t
}

// lookup returns the link of the longest connected subnet holding a (the
// first link by name on a tie).
func (t linkTable) lookup(a netip.Addr) (string, bool) {
	best, bits := "", -1
	for _, c := range t {
		if !c.Prefix.Contains(a) {
			continue
		}
		if c.Prefix.Bits() > bits || (c.Prefix.Bits() == bits && c.Link < best) {
			best, bits = c.Link, c.Prefix.Bits()
		}
	}
	return best, bits >= 0
}

// cmpPrefix orders prefixes by address, then length.
func cmpPrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}
