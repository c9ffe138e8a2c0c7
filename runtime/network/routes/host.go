package routes

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/kelpie-dev/kelpie/netplan"
)

// Host describes this host for netplan.Routes: its node name, node IP addr,
// the interface holding addr (the VXLAN underlay), the subnets of its other
// IPv4 addresses (loopback and kelpie's VXLAN device left out), and the
// mode. It fails when no interface holds addr.
func (s *Syncer) Host(name string, addr netip.Addr, mode netplan.PodNetworkMode) (netplan.RouteHost, error) {
	host := netplan.RouteHost{Name: name, Addr: addr, Mode: mode}
	links, err := s.h.LinkList()
	if err != nil {
		return host, fmt.Errorf("routes: list links: %w", err)
	}
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || a.Name == s.cfg.Device {
			continue
		}
		names[a.Index] = a.Name
	}
	addrs, err := s.h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return host, fmt.Errorf("routes: list addresses: %w", err)
	}
	for _, a := range addrs {
		link, ok := names[a.LinkIndex]
		p := prefixOf(a.IPNet)
		if !ok || !p.IsValid() {
			continue
		}
		host.Connected = append(host.Connected, netplan.Connected{Prefix: p, Link: link})
		if p.Addr() == addr && host.Link == "" {
			host.Link = link
		}
	}
	if host.Link == "" {
		return host, fmt.Errorf("routes: node IP %s is on no interface of this host", addr)
	}
	return host, nil
}
