package routes

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/netplan"
)

// ours lists kelpie's routes: IPv4, main table, route protocol Protocol.
func (s *Syncer) ours() ([]netlink.Route, error) {
	rs, err := s.h.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Protocol: Protocol, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return rs, nil
}

// Routes lists kelpie's routes in the namespace (route protocol Protocol,
// main table), ordered by destination: for status and tests.
func (s *Syncer) Routes() ([]netlink.Route, error) {
	rs, err := s.ours()
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	slices.SortFunc(rs, func(a, b netlink.Route) int {
		return prefixOf(a.Dst).Addr().Compare(prefixOf(b.Dst).Addr())
	})
	return rs, nil
}

// kernelRoute is the netlink route for r.
func (s *Syncer) kernelRoute(r netplan.Route, vx *netlink.Vxlan) (netlink.Route, error) {
	nr := netlink.Route{
		Dst:      ipnet(r.Dst.Masked()),
		Gw:       r.Via.AsSlice(),
		Protocol: Protocol,
		Table:    unix.RT_TABLE_MAIN,
		Scope:    netlink.SCOPE_UNIVERSE,
		Type:     unix.RTN_UNICAST,
	}
	if !r.Dst.Addr().Is4() || !r.Via.Is4() {
		return nr, fmt.Errorf("route %s: want an IPv4 destination and next hop", r)
	}
	switch r.Mode {
	case netplan.ModeHostGW:
		l, err := s.h.LinkByName(r.Link)
		if err != nil {
			return nr, fmt.Errorf("route %s: link %s: %w", r, r.Link, err)
		}
		nr.LinkIndex = l.Attrs().Index
	case netplan.ModeVXLAN:
		if vx == nil {
			return nr, fmt.Errorf("route %s: no VXLAN device", r)
		}
		nr.LinkIndex = vx.Index
		nr.Flags = unix.RTNH_F_ONLINK
	default:
		return nr, fmt.Errorf("route %s: unknown mode %q", r, r.Mode)
	}
	return nr, nil
}

// same reports whether the kernel's route have is the route want: the same
// destination, next hop, device, onlink flag and metric.
func same(want, have netlink.Route) bool {
	return prefixOf(want.Dst) == prefixOf(have.Dst) &&
		addrOf(want.Gw) == addrOf(have.Gw) &&
		want.LinkIndex == have.LinkIndex &&
		want.Flags&unix.RTNH_F_ONLINK == have.Flags&unix.RTNH_F_ONLINK &&
		want.Priority == have.Priority && want.Tos == have.Tos && len(have.MultiPath) == 0 && have.Src == nil
}

// show prints a kernel route as `ip route` does.
func show(r netlink.Route) string {
	s := fmt.Sprintf("%s via %s ifindex %d proto %d", prefixOf(r.Dst), addrOf(r.Gw), r.LinkIndex, r.Protocol)
	if r.Flags&unix.RTNH_F_ONLINK != 0 {
		s += " onlink"
	}
	return s
}

// syncRoutes adds the wanted routes that are missing, replaces kelpie's
// that differ and deletes kelpie's that are not wanted.
func (s *Syncer) syncRoutes(want []netplan.Route, vx *netlink.Vxlan, ch *changes) []error {
	have, err := s.ours()
	if err != nil {
		return []error{err}
	}
	byDst := map[netip.Prefix][]netlink.Route{}
	for _, r := range have {
		byDst[prefixOf(r.Dst)] = append(byDst[prefixOf(r.Dst)], r)
	}
	var errs []error
	var kept []netlink.Route
	failed := map[netip.Prefix]bool{} // kelpie's routes there stay as they are
	for _, r := range want {
		nr, err := s.kernelRoute(r, vx)
		if err != nil {
			errs = append(errs, err)
			failed[r.Dst.Masked()] = true
			continue
		}
		kept = append(kept, nr)
		existing := byDst[r.Dst.Masked()]
		if slices.ContainsFunc(existing, func(h netlink.Route) bool { return same(nr, h) }) {
			continue
		}
		if len(existing) > 0 {
			if err := s.h.RouteReplace(&nr); err != nil {
				errs = append(errs, fmt.Errorf("replace route %s for %s: %w", show(nr), r.Peer, err))
				continue
			}
			ch.add("replace route %s (%s)", show(nr), r)
			continue
		}
		if err := s.h.RouteAdd(&nr); err != nil {
			if errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("a route to %s not made by kelpie is in the way (left alone)", r.Dst)
			}
			errs = append(errs, fmt.Errorf("add route %s for %s: %w", show(nr), r.Peer, err))
			continue
		}
		ch.add("add route %s (%s)", show(nr), r)
	}

	// What is ours now and wanted by no one goes: listed again, since a
	// replace may have changed a route in place.
	if have, err = s.ours(); err != nil {
		return append(errs, err)
	}
	for _, h := range have {
		if failed[prefixOf(h.Dst)] || slices.ContainsFunc(kept, func(w netlink.Route) bool { return same(w, h) }) {
			continue
		}
		if err := s.h.RouteDel(&h); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", show(h), err))
			continue
		}
		ch.add("delete route %s", show(h))
	}
	return errs
}
