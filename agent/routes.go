package agent

import (
	"net/netip"
	"slices"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// RouteSyncer programs this host's routes to the other hosts' pod ranges:
// routes.Syncer does it through netlink (host-gw routes, the VXLAN device
// and its neighbour and FDB entries). Tests leave it nil: nothing is
// routed.
type RouteSyncer interface {
	// Host describes this host for netplan.Routes: its node IP's link and
	// connected subnets, and the mode.
	Host(name string, addr netip.Addr, mode netplan.PodNetworkMode) (netplan.RouteHost, error)
	// Sync makes the kernel hold set (and only set, of what kelpie made),
	// returning the changes it made.
	Sync(set netplan.RouteSet) ([]string, error)
}

// syncRoutes routes every live peer's slice of the allocation in force
// from this host: on every cluster step (the view or the allocation
// changed) and drift check (a link that went down and up lost its routes).
func (a *Agent) syncRoutes() {
	if a.routes == nil || a.cluster == nil || a.net.state == nil {
		return
	}
	var self netip.Addr
	var peers []netplan.Peer
	for _, m := range a.cluster.Members() {
		ap, err := netip.ParseAddrPort(m.Addr)
		if err != nil {
			continue
		}
		if m.Self {
			self = ap.Addr()
			continue
		}
		p := netplan.Peer{Name: m.Name, State: scheduler.NodeAlive, Addr: ap.Addr()}
		switch m.State {
		case gossip.StateDead:
			p.State = scheduler.NodeDead
		case gossip.StateLeft:
			p.State = scheduler.NodeLeft
		}
		peers = append(peers, p)
	}
	if !self.IsValid() {
		return
	}
	host, err := a.routes.Host(a.cfg.Host.Name, self, a.cfg.PodNetworkMode)
	if err != nil {
		a.logRoutes("routes: this host's links", err)
		return
	}
	set, err := netplan.Routes(a.net.state, host, peers)
	if err != nil {
		a.logRoutes("routes: plan", err)
		return
	}
	changes, err := a.routes.Sync(set)
	for _, c := range changes {
		a.log.Info("route", "change", c)
	}
	if err != nil {
		a.logRoutes("routes: program", err)
	} else {
		a.net.routeErr = ""
	}
	a.net.unrouted = a.net.unrouted[:0]
	for _, u := range set.Unrouted {
		a.net.unrouted = append(a.net.unrouted, u.Peer+": "+u.Reason)
	}
	a.net.routes = a.net.routes[:0]
	for _, r := range set.Routes {
		a.net.routes = append(a.net.routes, r.String())
	}
	slices.Sort(a.net.routes)
}

// logRoutes logs a routing failure once for as long as it repeats.
func (a *Agent) logRoutes(what string, err error) {
	if msg := what + ": " + err.Error(); msg != a.net.routeErr {
		a.net.routeErr = msg
		a.log.Warn(what, "err", err)
	}
}
