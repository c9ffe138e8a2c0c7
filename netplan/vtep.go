package netplan

import (
	"net"
	"net/netip"
)

// VTEPAddr is the VXLAN tunnel endpoint address of the host holding slice:
// the slice's network address (10.244.3.0 for 10.244.3.0/24), which no pod
// takes (the bridge gateway is the first address after it). The host puts it
// on its VXLAN device as a /32, as flannel does, so that traffic the host
// itself sends through the tunnel leaves with an address of its slice.
func VTEPAddr(slice netip.Prefix) netip.Addr {
	return slice.Masked().Addr()
}

// VTEPMAC is the MAC address of the VXLAN device of the host holding slice,
// derived from its VTEP address A.B.C.D as 02:6b:A:B:C:D. The first octet
// 0x02 is a locally administered (bit 1 set) unicast (bit 0 clear) address
// in IEEE 802c's administratively assigned quadrant; 0x6b ("k") keeps it
// apart from Docker's 02:42:A:B:C:D. Slices never overlap, so no two hosts
// of a cluster derive the same MAC, and every host computes every peer's MAC
// from the shared State alone: nothing has to be gossiped for it (a
// gossiped MAC, Peer.VTEPMAC, takes precedence when set).
func VTEPMAC(slice netip.Prefix) net.HardwareAddr {
	a := VTEPAddr(slice).As4()
	return net.HardwareAddr{0x02, 0x6b, a[0], a[1], a[2], a[3]}
}
