package netplan

import (
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/scheduler"
)

func TestVTEPAddrAndMAC(t *testing.T) {
	for _, tc := range []struct {
		slice, addr, mac string
	}{
		{"10.244.3.0/24", "10.244.3.0", "02:6b:0a:f4:03:00"},
		{"10.244.3.7/24", "10.244.3.0", "02:6b:0a:f4:03:00"}, // unmasked input
		{"10.250.0.64/26", "10.250.0.64", "02:6b:0a:fa:00:40"},
		{"192.168.255.252/30", "192.168.255.252", "02:6b:c0:a8:ff:fc"},
	} {
		t.Run(tc.slice, func(t *testing.T) {
			if got := VTEPAddr(pfx(tc.slice)); got != ip(tc.addr) {
				t.Errorf("VTEPAddr = %s, want %s", got, tc.addr)
			}
			mac := VTEPMAC(pfx(tc.slice))
			if mac.String() != tc.mac {
				t.Errorf("VTEPMAC = %s, want %s", mac, tc.mac)
			}
			if mac[0]&0x01 != 0 || mac[0]&0x02 == 0 {
				t.Errorf("VTEPMAC %s is not a locally administered unicast address", mac)
			}
		})
	}
	// Distinct slices, distinct MACs.
	seen := map[string]string{}
	for i := range 256 {
		s := addr4(u32(ip("10.244.0.0")) + uint32(i)<<8)
		mac := VTEPMAC(pfx(s.String() + "/24")).String()
		if seen[mac] != "" {
			t.Fatalf("%s and %s share MAC %s", seen[mac], s, mac)
		}
		seen[mac] = s.String()
	}
}

func TestParsePodNetworkMode(t *testing.T) {
	for in, want := range map[string]PodNetworkMode{"": ModeAuto, "auto": ModeAuto, "host-gw": ModeHostGW, "vxlan": ModeVXLAN} {
		if got, err := ParsePodNetworkMode(in); err != nil || got != want {
			t.Errorf("ParsePodNetworkMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"hostgw", "VXLAN", "udp"} {
		if _, err := ParsePodNetworkMode(in); err == nil || !strings.Contains(err.Error(), "--pod-network-mode") {
			t.Errorf("ParsePodNetworkMode(%q) = %v, want an error naming the flag", in, err)
		}
	}
}

func TestRoutes(t *testing.T) {
	state := &State{
		ClusterCIDR: pfx("10.244.0.0/16"),
		Slices: map[string]Slice{
			"n1": {Prefix: pfx("10.244.1.0/24")},
			"n2": {Prefix: pfx("10.244.2.0/24")},
			"n3": {Prefix: pfx("10.244.3.0/24")},
			"n4": {Prefix: pfx("10.244.4.0/24")},
			"n5": {Prefix: pfx("10.244.5.0/24")},
		},
	}
	self := RouteHost{
		Name: "n1", Addr: ip("192.168.1.1"), Link: "eth0",
		Connected: []Connected{
			{Prefix: pfx("192.168.1.1/24"), Link: "eth0"},
			{Prefix: pfx("172.16.0.1/16"), Link: "eth1"},
			{Prefix: pfx("172.16.9.1/24"), Link: "eth2"},         // longer match than eth1's
			{Prefix: pfx("10.244.1.1/24"), Link: "cni0"},         // the pod bridge: ignored
			{Prefix: pfx("10.244.1.0/32"), Link: "kelpie.vxlan"}, // ignored
			{Prefix: pfx("127.0.0.1/8"), Link: "lo"},
			{Prefix: pfx("203.0.113.5/32"), Link: "wg0"}, // a single address: no peers behind it
		},
	}
	peer := func(name string, state scheduler.NodeState, addr string) Peer {
		return Peer{Name: name, State: state, Addr: ip(addr)}
	}
	hostGW := func(name, dst, via, link string) Route {
		return Route{Peer: name, Mode: ModeHostGW, Dst: pfx(dst), Via: ip(via), Link: link, PeerAddr: ip(via)}
	}
	vxlan := func(name, dst, peerAddr string) Route {
		return Route{Peer: name, Mode: ModeVXLAN, Dst: pfx(dst), Via: VTEPAddr(pfx(dst)), PeerAddr: ip(peerAddr), PeerMAC: VTEPMAC(pfx(dst))}
	}
	myVTEP := &VTEP{Addr: ip("10.244.1.0"), MAC: net.HardwareAddr{0x02, 0x6b, 10, 244, 1, 0}, Local: ip("192.168.1.1"), Link: "eth0"}
	withMode := func(m PodNetworkMode) RouteHost { h := self; h.Mode = m; return h }
	alivePeers := []Peer{
		peer("n2", scheduler.NodeAlive, "192.168.1.2"),
		peer("n3", scheduler.NodeSuspect, "172.16.9.3"),
		peer("n4", scheduler.NodeAlive, "198.51.100.4"),
	}

	for _, tc := range []struct {
		name  string
		state *State
		self  RouteHost
		peers []Peer
		want  RouteSet
	}{
		{
			name: "auto: host-gw on shared links (longest match), vxlan beyond",
			self: self, peers: alivePeers,
			want: RouteSet{VTEP: myVTEP, Routes: []Route{
				hostGW("n2", "10.244.2.0/24", "192.168.1.2", "eth0"),
				hostGW("n3", "10.244.3.0/24", "172.16.9.3", "eth2"),
				vxlan("n4", "10.244.4.0/24", "198.51.100.4"),
			}},
		},
		{
			name: "auto with every peer on a shared link: no VXLAN device",
			self: self, peers: alivePeers[:2],
			want: RouteSet{Routes: []Route{
				hostGW("n2", "10.244.2.0/24", "192.168.1.2", "eth0"),
				hostGW("n3", "10.244.3.0/24", "172.16.9.3", "eth2"),
			}},
		},
		{
			name: "host-gw: a peer beyond the links is unrouted",
			self: withMode(ModeHostGW), peers: alivePeers,
			want: RouteSet{
				Routes: []Route{
					hostGW("n2", "10.244.2.0/24", "192.168.1.2", "eth0"),
					hostGW("n3", "10.244.3.0/24", "172.16.9.3", "eth2"),
				},
				Unrouted: []Unrouted{{"n4", "its address 198.51.100.4 is on no link this host shares (host-gw needs one; --pod-network-mode auto or vxlan tunnels to it)"}},
			},
		},
		{
			name: "vxlan: every peer tunnelled",
			self: withMode(ModeVXLAN), peers: alivePeers,
			want: RouteSet{VTEP: myVTEP, Routes: []Route{
				vxlan("n2", "10.244.2.0/24", "192.168.1.2"),
				vxlan("n3", "10.244.3.0/24", "172.16.9.3"),
				vxlan("n4", "10.244.4.0/24", "198.51.100.4"),
			}},
		},
		{
			name: "vxlan with no peers keeps the device",
			self: withMode(ModeVXLAN),
			want: RouteSet{VTEP: myVTEP},
		},
		{
			name: "auto with no peers: nothing",
			self: self,
			want: RouteSet{},
		},
		{
			name: "dead, left, slice-less, unknown and self peers get no route",
			self: self,
			peers: []Peer{
				peer("n1", scheduler.NodeAlive, "192.168.1.1"),
				peer("n2", scheduler.NodeDead, "192.168.1.2"),
				peer("n3", scheduler.NodeLeft, "172.16.9.3"),
				peer("n5", scheduler.NodeAlive, "192.168.1.5"),
				peer("n9", scheduler.NodeAlive, "192.168.1.9"), // no slice
			},
			want: RouteSet{Routes: []Route{hostGW("n5", "10.244.5.0/24", "192.168.1.5", "eth0")}},
		},
		{
			name: "a gossiped VTEP MAC wins over the derived one",
			self: self,
			peers: []Peer{{Name: "n4", State: scheduler.NodeAlive, Addr: ip("198.51.100.4"),
				VTEPMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 4}}},
			want: RouteSet{VTEP: myVTEP, Routes: []Route{{
				Peer: "n4", Mode: ModeVXLAN, Dst: pfx("10.244.4.0/24"), Via: ip("10.244.4.0"), PeerAddr: ip("198.51.100.4"),
				PeerMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 4},
			}}},
		},
		{
			name: "peers without a usable address are unrouted",
			self: self,
			peers: []Peer{
				{Name: "n2", State: scheduler.NodeAlive},
				peer("n3", scheduler.NodeAlive, "192.168.1.1"),
				peer("n4", scheduler.NodeAlive, "fd00::4"),
			},
			want: RouteSet{Unrouted: []Unrouted{
				{"n2", "no IPv4 node address known"},
				{"n3", "its node address 192.168.1.1 is this host's"},
				{"n4", "no IPv4 node address known"},
			}},
		},
		{
			name:  "a host without a slice routes host-gw peers but cannot tunnel",
			state: &State{ClusterCIDR: pfx("10.244.0.0/16"), Slices: map[string]Slice{"n2": {Prefix: pfx("10.244.2.0/24")}, "n4": {Prefix: pfx("10.244.4.0/24")}}},
			self:  self, peers: alivePeers,
			want: RouteSet{
				Routes:   []Route{hostGW("n2", "10.244.2.0/24", "192.168.1.2", "eth0")},
				Unrouted: []Unrouted{{"n4", "not on a shared link, and this host (n1) holds no slice, so it has no VTEP address"}},
			},
		},
		{
			name:  "pinned slices of other sizes, routed by their network address",
			state: &State{ClusterCIDR: pfx("10.244.0.0/16"), Slices: map[string]Slice{"n1": {Prefix: pfx("10.244.1.0/24")}, "n2": {Prefix: pfx("10.244.200.64/26"), Pinned: true}}},
			self:  withMode(ModeVXLAN), peers: alivePeers[:1],
			want: RouteSet{VTEP: myVTEP, Routes: []Route{vxlan("n2", "10.244.200.64/26", "192.168.1.2")}},
		},
		{
			name:  "an overlapping slice is refused",
			state: &State{Slices: map[string]Slice{"n1": {Prefix: pfx("10.244.1.0/24")}, "n2": {Prefix: pfx("10.244.0.0/23")}}},
			self:  self, peers: alivePeers[:1],
			want: RouteSet{Unrouted: []Unrouted{{"n2", "its slice 10.244.0.0/23 overlaps this host's 10.244.1.0/24"}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.state
			if st == nil {
				st = state
			}
			got, err := Routes(st, tc.self, tc.peers)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Routes:\n got %s\nwant %s", showRoutes(got), showRoutes(tc.want))
			}
			if !got.Equal(tc.want) {
				t.Error("Equal reports a difference cmp does not see")
			}
			// The peers' order does not matter.
			rev := append([]Peer(nil), tc.peers...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			again, err := Routes(st, tc.self, rev)
			if err != nil || !again.Equal(got) || !reflect.DeepEqual(again.Unrouted, got.Unrouted) {
				t.Errorf("Routes depends on the peers' order: %+v, %v", again, err)
			}
		})
	}
}

func TestRoutesRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		self  RouteHost
		peers []Peer
		want  string
	}{
		{"bad mode", RouteHost{Name: "n1", Mode: "bgp"}, nil, `--pod-network-mode "bgp"`},
		{"unnamed peer", RouteHost{Name: "n1"}, []Peer{{}}, "a peer has no name"},
		{"twice", RouteHost{Name: "n1"}, []Peer{{Name: "n2"}, {Name: "n2"}}, "peer n2 is listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Routes(&State{}, tc.self, tc.peers); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRouteSetEqual(t *testing.T) {
	a, err := Routes(&State{Slices: map[string]Slice{"n1": {Prefix: pfx("10.244.1.0/24")}, "n2": {Prefix: pfx("10.244.2.0/24")}}},
		RouteHost{Name: "n1", Addr: ip("192.168.1.1"), Link: "eth0", Mode: ModeVXLAN},
		[]Peer{{Name: "n2", Addr: ip("192.168.1.2")}})
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*RouteSet){
		"no device": func(s *RouteSet) { s.VTEP = nil },
		"local":     func(s *RouteSet) { v := *s.VTEP; v.Local = ip("192.168.1.9"); s.VTEP = &v },
		"mac":       func(s *RouteSet) { s.Routes[0].PeerMAC = net.HardwareAddr{2, 0, 0, 0, 0, 1} },
		"via":       func(s *RouteSet) { s.Routes[0].Via = ip("10.244.2.1") },
		"no route":  func(s *RouteSet) { s.Routes = nil },
	} {
		b := a
		b.Routes = append([]Route(nil), a.Routes...)
		change(&b)
		if a.Equal(b) {
			t.Errorf("%s: Equal does not see the change", name)
		}
	}
}

// showRoutes prints a route set for a failure message.
func showRoutes(s RouteSet) string {
	var b strings.Builder
	if s.VTEP != nil {
		fmt.Fprintf(&b, "vtep %+v;", *s.VTEP)
	}
	for _, r := range s.Routes {
		fmt.Fprintf(&b, " [%s]", r)
	}
	for _, u := range s.Unrouted {
		fmt.Fprintf(&b, " unrouted %s: %s;", u.Peer, u.Reason)
	}
	return b.String()
}
