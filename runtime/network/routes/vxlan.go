package routes

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/kelpie-dev/kelpie/netplan"
)

// device returns kelpie's VXLAN device, nil when there is none. A link of
// that name that is not a VXLAN device is an error: it is not kelpie's.
func (s *Syncer) device() (*netlink.Vxlan, error) {
	l, err := s.h.LinkByName(s.cfg.Device)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", s.cfg.Device, err)
	}
	vx, ok := l.(*netlink.Vxlan)
	if !ok {
		return nil, fmt.Errorf("%s is a %s device, not kelpie's VXLAN device: left alone", s.cfg.Device, l.Type())
	}
	return vx, nil
}

// removeDevice deletes kelpie's VXLAN device if there is one; its routes,
// neighbour and FDB entries go with it.
func (s *Syncer) removeDevice(ch *changes) error {
	vx, err := s.device()
	if err != nil || vx == nil {
		return err
	}
	if err := s.h.LinkDel(vx); err != nil && !notFound(err) {
		return fmt.Errorf("delete %s: %w", s.cfg.Device, err)
	}
	ch.add("delete device %s", s.cfg.Device)
	return nil
}

// ensureDevice makes kelpie's VXLAN device what vtep asks: VNI, port, local
// address and underlay as configured, learning off; the MAC, the MTU, the
// single address VTEP/32, and up. A device made otherwise (another VNI,
// port, local address or underlay) is deleted and made again, as flannel
// does. It returns the device.
func (s *Syncer) ensureDevice(vtep *netplan.VTEP, ch *changes) (*netlink.Vxlan, error) {
	if !vtep.Local.Is4() || !vtep.Addr.Is4() || len(vtep.MAC) != 6 {
		return nil, fmt.Errorf("VXLAN endpoint %+v: want an IPv4 local address, an IPv4 VTEP address and a MAC", *vtep)
	}
	under, err := s.underlay(vtep)
	if err != nil {
		return nil, err
	}
	mtu := s.cfg.MTU
	if mtu == 0 {
		mtu = under.Attrs().MTU - Overhead
	}
	want := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: s.cfg.Device, MTU: mtu, HardwareAddr: vtep.MAC},
		VxlanId:      s.cfg.VNI,
		VtepDevIndex: under.Attrs().Index,
		SrcAddr:      vtep.Local.AsSlice(),
		Port:         s.cfg.Port,
		Learning:     false,
	}

	vx, err := s.device()
	if err != nil {
		return nil, err
	}
	if vx != nil {
		if why := incompatible(want, vx); why != "" {
			if err := s.h.LinkDel(vx); err != nil {
				return nil, fmt.Errorf("delete %s (%s): %w", s.cfg.Device, why, err)
			}
			ch.add("delete device %s: %s", s.cfg.Device, why)
			vx = nil
		}
	}
	if vx == nil {
		if err := s.h.LinkAdd(want); err != nil {
			return nil, fmt.Errorf("create %s: %w", s.cfg.Device, err)
		}
		ch.add("create device %s (vxlan id %d dstport %d local %s dev %s mtu %d address %s)",
			s.cfg.Device, s.cfg.VNI, s.cfg.Port, vtep.Local, under.Attrs().Name, mtu, vtep.MAC)
		if vx, err = s.device(); err != nil || vx == nil {
			return nil, fmt.Errorf("read back %s: %v", s.cfg.Device, err)
		}
	}
	if !bytes.Equal(vx.HardwareAddr, vtep.MAC) {
		if err := s.h.LinkSetHardwareAddr(vx, vtep.MAC); err != nil {
			return nil, fmt.Errorf("set %s address %s: %w", s.cfg.Device, vtep.MAC, err)
		}
		ch.add("set device %s address %s", s.cfg.Device, vtep.MAC)
	}
	if vx.MTU != mtu {
		if err := s.h.LinkSetMTU(vx, mtu); err != nil {
			return nil, fmt.Errorf("set %s mtu %d: %w", s.cfg.Device, mtu, err)
		}
		ch.add("set device %s mtu %d", s.cfg.Device, mtu)
	}
	if err := s.ensureAddr(vx, vtep.Addr, ch); err != nil {
		return nil, err
	}
	if vx.Flags&net.FlagUp == 0 {
		if err := s.h.LinkSetUp(vx); err != nil {
			return nil, fmt.Errorf("set %s up: %w", s.cfg.Device, err)
		}
		ch.add("set device %s up", s.cfg.Device)
	}
	return vx, nil
}

// underlay returns the interface the tunnel's packets leave from: vtep.Link,
// or when empty the interface holding vtep.Local.
func (s *Syncer) underlay(vtep *netplan.VTEP) (netlink.Link, error) {
	if vtep.Link != "" {
		l, err := s.h.LinkByName(vtep.Link)
		if err != nil {
			return nil, fmt.Errorf("VXLAN underlay %s: %w", vtep.Link, err)
		}
		return l, nil
	}
	addrs, err := s.h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if addrOf(a.IP) == vtep.Local {
			l, err := s.h.LinkByIndex(a.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("VXLAN underlay of %s: %w", vtep.Local, err)
			}
			return l, nil
		}
	}
	return nil, fmt.Errorf("VXLAN underlay: %s is on no interface", vtep.Local)
}

// incompatible says why an existing device cannot serve as want, or "".
func incompatible(want, have *netlink.Vxlan) string {
	switch {
	case have.VxlanId != want.VxlanId:
		return fmt.Sprintf("vni %d, want %d", have.VxlanId, want.VxlanId)
	case have.Port != want.Port:
		return fmt.Sprintf("port %d, want %d", have.Port, want.Port)
	case !have.SrcAddr.Equal(want.SrcAddr):
		return fmt.Sprintf("local %s, want %s", have.SrcAddr, want.SrcAddr)
	case have.VtepDevIndex != want.VtepDevIndex:
		return fmt.Sprintf("underlay index %d, want %d", have.VtepDevIndex, want.VtepDevIndex)
	case have.Learning:
		return "learning on"
	case len(have.Group) > 0 && !have.Group.IsUnspecified():
		return fmt.Sprintf("group %s", have.Group)
	}
	return ""
}

// ensureAddr leaves addr/32 as the only IPv4 address of the device.
func (s *Syncer) ensureAddr(vx *netlink.Vxlan, addr netip.Addr, ch *changes) error {
	have, err := s.h.AddrList(vx, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list %s addresses: %w", s.cfg.Device, err)
	}
	want := netip.PrefixFrom(addr, 32)
	found := false
	for _, a := range have {
		if prefixOf(a.IPNet) == want {
			found = true
			continue
		}
		if err := s.h.AddrDel(vx, &a); err != nil {
			return fmt.Errorf("delete %s address %s: %w", s.cfg.Device, prefixOf(a.IPNet), err)
		}
		ch.add("delete address %s dev %s", prefixOf(a.IPNet), s.cfg.Device)
	}
	if !found {
		if err := s.h.AddrAdd(vx, &netlink.Addr{IPNet: ipnet(want)}); err != nil {
			return fmt.Errorf("add %s address %s: %w", s.cfg.Device, want, err)
		}
		ch.add("add address %s dev %s", want, s.cfg.Device)
	}
	return nil
}
