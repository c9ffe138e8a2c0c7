package routes

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/netplan"
)

// Entries lists the permanent neighbour entries (VTEP → MAC) and the FDB
// entries (MAC → node IP) of kelpie's VXLAN device, as "IP MAC" and
// "MAC IP" lines: for status and tests. Both are empty without the device.
func (s *Syncer) Entries() (neigh, fdb []string, err error) {
	vx, err := s.device()
	if err != nil || vx == nil {
		return nil, nil, err
	}
	ns, err := s.neighbours(vx)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range ns {
		neigh = append(neigh, fmt.Sprintf("%s %s", n.IP, n.HardwareAddr))
	}
	fs, err := s.fdb(vx)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range fs {
		fdb = append(fdb, fmt.Sprintf("%s %s", f.HardwareAddr, f.IP))
	}
	return neigh, fdb, nil
}

// neighbours lists the device's permanent IPv4 neighbour entries: the ones
// Sync makes (the kernel's own, resolved or failed, are not permanent).
func (s *Syncer) neighbours(vx *netlink.Vxlan) ([]netlink.Neigh, error) {
	all, err := s.h.NeighList(vx.Index, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list neighbours of %s: %w", s.cfg.Device, err)
	}
	var ns []netlink.Neigh
	for _, n := range all {
		if n.State&netlink.NUD_PERMANENT != 0 {
			ns = append(ns, n)
		}
	}
	return ns, nil
}

// fdb lists the device's forwarding entries.
func (s *Syncer) fdb(vx *netlink.Vxlan) ([]netlink.Neigh, error) {
	fs, err := s.h.NeighList(vx.Index, unix.AF_BRIDGE)
	if err != nil {
		return nil, fmt.Errorf("list FDB of %s: %w", s.cfg.Device, err)
	}
	return fs, nil
}

// neighbour is the permanent neighbour entry vtep → mac on the device.
func neighbour(vx *netlink.Vxlan, vtep netip.Addr, mac net.HardwareAddr) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex: vx.Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT, Type: unix.RTN_UNICAST,
		IP: vtep.AsSlice(), HardwareAddr: mac,
	}
}

// fdbEntry is the permanent forwarding entry mac → peer on the device.
func fdbEntry(vx *netlink.Vxlan, mac net.HardwareAddr, peer net.IP) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex: vx.Index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF,
		IP: peer, HardwareAddr: mac,
	}
}

// addNeighbours adds or replaces the neighbour and FDB entries of the
// tunnelled routes that are missing or differ.
func (s *Syncer) addNeighbours(vx *netlink.Vxlan, tunnelled []netplan.Route, ch *changes) []error {
	ns, err := s.neighbours(vx)
	if err != nil {
		return []error{err}
	}
	fs, err := s.fdb(vx)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, r := range tunnelled {
		if len(r.PeerMAC) != 6 || !r.PeerAddr.Is4() {
			errs = append(errs, fmt.Errorf("peer %s: want a MAC and an IPv4 node address, have %q and %s", r.Peer, r.PeerMAC, r.PeerAddr))
			continue
		}
		haveFDB := false
		for _, f := range fs {
			haveFDB = haveFDB || (bytes.Equal(f.HardwareAddr, r.PeerMAC) && addrOf(f.IP) == r.PeerAddr)
		}
		if !haveFDB {
			if err := s.h.NeighSet(fdbEntry(vx, r.PeerMAC, r.PeerAddr.AsSlice())); err != nil {
				errs = append(errs, fmt.Errorf("add FDB entry %s dst %s for %s: %w", r.PeerMAC, r.PeerAddr, r.Peer, err))
				continue
			}
			ch.add("add fdb %s dst %s dev %s (%s)", r.PeerMAC, r.PeerAddr, s.cfg.Device, r.Peer)
		}
		haveNeigh := false
		for _, n := range ns {
			haveNeigh = haveNeigh || (addrOf(n.IP) == r.Via && bytes.Equal(n.HardwareAddr, r.PeerMAC))
		}
		if !haveNeigh {
			if err := s.h.NeighSet(neighbour(vx, r.Via, r.PeerMAC)); err != nil {
				errs = append(errs, fmt.Errorf("add neighbour %s lladdr %s for %s: %w", r.Via, r.PeerMAC, r.Peer, err))
				continue
			}
			ch.add("add neigh %s lladdr %s dev %s (%s)", r.Via, r.PeerMAC, s.cfg.Device, r.Peer)
		}
	}
	return errs
}

// pruneNeighbours deletes the device's permanent neighbour entries and FDB
// entries that no tunnelled route wants.
func (s *Syncer) pruneNeighbours(vx *netlink.Vxlan, tunnelled []netplan.Route, ch *changes) []error {
	ns, err := s.neighbours(vx)
	if err != nil {
		return []error{err}
	}
	fs, err := s.fdb(vx)
	if err != nil {
		return []error{err}
	}
	wantedNeigh := func(n netlink.Neigh) bool {
		for _, r := range tunnelled {
			if addrOf(n.IP) == r.Via && bytes.Equal(n.HardwareAddr, r.PeerMAC) {
				return true
			}
		}
		return false
	}
	wantedFDB := func(f netlink.Neigh) bool {
		for _, r := range tunnelled {
			if bytes.Equal(f.HardwareAddr, r.PeerMAC) && addrOf(f.IP) == r.PeerAddr {
				return true
			}
		}
		return false
	}
	var errs []error
	for _, n := range ns {
		if wantedNeigh(n) {
			continue
		}
		if err := s.h.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete neighbour %s lladdr %s: %w", n.IP, n.HardwareAddr, err))
			continue
		}
		ch.add("delete neigh %s lladdr %s dev %s", n.IP, n.HardwareAddr, s.cfg.Device)
	}
	for _, f := range fs {
		if wantedFDB(f) {
			continue
		}
		del := fdbEntry(vx, f.HardwareAddr, f.IP)
		if err := s.h.NeighDel(del); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete FDB entry %s dst %s: %w", f.HardwareAddr, f.IP, err))
			continue
		}
		ch.add("delete fdb %s dst %s dev %s", f.HardwareAddr, f.IP, s.cfg.Device)
	}
	return errs
}
