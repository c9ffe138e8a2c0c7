package routes

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/kelpie-dev/kelpie/netplan"
)

// changes lists what a Sync did, one line each, for the agent's log.
type changes []string

// add records one change.
func (c *changes) add(format string, args ...any) { *c = append(*c, fmt.Sprintf(format, args...)) }

// Sync makes the namespace's routing to its peers what want says, and
// returns what it changed (nothing when it already was):
//
//  1. The VXLAN device: created or corrected when want.VTEP is set, deleted
//     (with everything on it) when it is nil.
//  2. The VXLAN device's permanent neighbour entries (PEER_VTEP →
//     PEER_MAC) and FDB entries (PEER_MAC → PEER_IP) of tunnelled peers are
//     added or replaced, before the routes that need them.
//  3. Routes: a missing one is added, one of kelpie's that differs is
//     replaced, and kelpie's routes (route protocol Protocol, main table)
//     that are no longer wanted are deleted. A route of anyone else to the
//     same destination is left alone and reported as an error.
//  4. Neighbour and FDB entries of the VXLAN device that no peer wants any
//     more are deleted.
//
// It goes on past a failing item (one peer's route does not hold up the
// others) and returns every failure joined; a route of kelpie's to a
// destination it failed to program is kept as it is, not deleted. Calling it again with the same
// value changes nothing; Sync(netplan.RouteSet{}) removes all of kelpie's
// routes and its device.
func (s *Syncer) Sync(want netplan.RouteSet) ([]string, error) {
	var ch changes
	var errs []error
	var vx *netlink.Vxlan
	if want.VTEP != nil {
		v, err := s.ensureDevice(want.VTEP, &ch)
		if err != nil {
			errs = append(errs, err)
			// Keep what works: the routes through a device that could
			// not be corrected are kept, not pruned.
			v, _ = s.device()
		}
		vx = v
	} else if err := s.removeDevice(&ch); err != nil {
		errs = append(errs, err)
	}
	var tunnelled []netplan.Route
	for _, r := range want.Routes {
		if r.Mode == netplan.ModeVXLAN {
			tunnelled = append(tunnelled, r)
		}
	}
	if vx != nil {
		errs = append(errs, s.addNeighbours(vx, tunnelled, &ch)...)
	}
	errs = append(errs, s.syncRoutes(want.Routes, vx, &ch)...)
	if vx != nil {
		errs = append(errs, s.pruneNeighbours(vx, tunnelled, &ch)...)
	}
	if err := errors.Join(errs...); err != nil {
		return ch, fmt.Errorf("routes: %w", err)
	}
	return ch, nil
}
