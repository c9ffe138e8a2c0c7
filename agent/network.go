package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// subnetter is a runtime that numbers pods in a subnet it can be told
// (host.Containerd): the agent gives it the slice of the cluster pod range
// this host holds. A runtime without it (reconcilertest.Fake) numbers pods
// its own way, and the agent neither waits for a slice nor renumbers.
type subnetter interface {
	PodSubnet() netip.Prefix
	SetPodSubnet(netip.Prefix) error
}

// netting is the agent's networking allocation (package netplan): in a
// cluster the leader's, published with the placement; on its own the
// host's, allocated here and kept in the agent's state.
type netting struct {
	state  *netplan.State // the allocation in force; nil before one
	report netplan.Report // what the allocation could not give, on the host that made it
	pin    netip.Prefix   // --pod-subnet: the slice this host pins; invalid when the leader chooses
	subnet netip.Prefix   // the slice the host numbers its pods in now; invalid before one
	why    string         // why there is no slice, for errors and status
	logged netip.Prefix   // the slice last logged
	// Routes to the other hosts' slices (syncRoutes): as last programmed,
	// the peers left unrouted and why, and the last failure logged.
	routes, unrouted []string
	routeErr         string
}

// errNoPodRange is the reason a host with no slice starts no pods.
var errNoPodRange = errors.New("no pod range yet")

// pinOf parses --pod-subnet; "" (the default) pins nothing. Config
// validation has checked it.
func pinOf(s string) netip.Prefix {
	if s == "" {
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}
	}
	return p.Masked()
}

// allocateAlone allocates the networking of an agent on its own: the host
// is the only node, so it takes the first slice of the cluster range (or
// its pin) and keeps it, with the Services' addresses, in its state.
func (a *Agent) allocateAlone(t *target) {
	if t == nil {
		return
	}
	nodes := []netplan.Node{{Name: a.cfg.Host.Name, State: scheduler.NodeAlive, PodSubnet: a.net.pin}}
	st, rep, err := netplan.Allocate(a.net.state, nodes, netplan.ServicesOf(t.state), netplan.Options{Now: a.clock.Now(), Config: a.cfg.Network})
	if err != nil {
		a.log.Warn("network allocation", "err", err)
		return
	}
	a.net.report = rep
	if a.net.state != nil && st.Equal(a.net.state) {
		return
	}
	a.net.state = &st
	if b, err := netplan.Encode(st); err == nil {
		a.state.Network = b
	}
}

// restoreNetwork reads the allocation an agent on its own kept in its
// state; one that does not decode is allocated anew (slices and Service
// addresses are deterministic, so nothing moves that need not).
func (a *Agent) restoreNetwork() {
	if a.cluster != nil || len(a.state.Network) == 0 {
		return
	}
	st, err := netplan.Decode(a.state.Network)
	if err != nil {
		a.log.Warn("the network allocation in the agent's state does not decode; allocating anew", "err", err)
		return
	}
	a.net.state = &st
}

// netNodes is the view as netplan needs it: every member the gossip layer
// remembers, with the slice it pins (from its status).
func (a *Agent) netNodes() []netplan.Node {
	members := a.cluster.Members()
	out := make([]netplan.Node, 0, len(members))
	for _, m := range members {
		n := netplan.Node{Name: m.Name, State: scheduler.NodeAlive}
		switch m.State {
		case gossip.StateDead:
			n.State, n.DownSince = scheduler.NodeDead, m.Since
		case gossip.StateLeft:
			n.State, n.DownSince = scheduler.NodeLeft, m.Since
		}
		if m.Self {
			n.PodSubnet = a.net.pin
		} else if m.HasStatus {
			var d nodeDetail
			if json.Unmarshal(m.Status.Data, &d) == nil {
				n.PodSubnet = pinOf(d.PodSubnet)
			}
		}
		out = append(out, n)
	}
	return out
}

// allocateLeader is the leader's allocation next to its placement (same
// term, same quorum rule: it is published with the placement). prev is
// the allocation in force. It returns the encoded allocation and whether
// it differs from prev.
func (a *Agent) allocateLeader(prev json.RawMessage, t *target, term uint64) (json.RawMessage, bool, error) {
	var prevState *netplan.State
	if len(prev) > 0 {
		if st, err := netplan.Decode(prev); err == nil {
			prevState = &st
		}
	}
	var svcs = netplan.ServicesOf(nil)
	if t != nil {
		svcs = netplan.ServicesOf(t.state)
	}
	st, rep, err := netplan.Allocate(prevState, a.netNodes(), svcs, netplan.Options{Term: term, Now: a.clock.Now(), Config: a.cfg.Network})
	if err != nil {
		return prev, false, fmt.Errorf("allocate the cluster network: %w", err)
	}
	a.net.report = rep
	if prevState != nil && st.Term == prevState.Term && sameButIdle(&st, prevState) {
		// Nothing but when a host was first seen down changed: that is
		// published with the next placement. Publishing it alone would
		// make a leader that sees one peer die during a partition, just
		// before it sees the other and loses its quorum, publish for
		// nothing.
		return prev, false, nil
	}
	b, err := netplan.Encode(st)
	if err != nil {
		return prev, false, err
	}
	for _, f := range rep.Problems {
		a.log.Warn("network allocation", "problem", f.String())
	}
	return b, true, nil
}

// adoptNetwork takes the allocation published with a placement.
func (a *Agent) adoptNetwork(b json.RawMessage) {
	if len(b) == 0 {
		return
	}
	st, err := netplan.Decode(b)
	if err != nil {
		a.log.Warn("the placement's network allocation does not decode; keeping the one in force", "err", err)
		return
	}
	if st.Newer(a.net.state) || a.net.state == nil {
		a.net.state = &st
	}
}

// podRange decides the slice this host numbers its pods in and tells the
// runtime: its pin, else the slice of the allocation in force. It returns
// errNoPodRange, wrapped with the reason, while there is none: the host
// then starts no pods. A runtime that numbers pods its own way
// (reconcilertest.Fake) needs no slice: podRange returns the zero Prefix.
func (a *Agent) podRange() (netip.Prefix, error) {
	sn, ok := a.rt.(subnetter)
	if !ok {
		return netip.Prefix{}, nil
	}
	sub := a.net.pin
	if !sub.IsValid() {
		s, ok := a.net.state.SliceOf(a.cfg.Host.Name)
		if !ok {
			why := "waiting for the leader to give this host a slice of the cluster pod range " + a.cfg.Network.ClusterCIDR.String()
			if r := a.net.report.For("node " + a.cfg.Host.Name); len(r) > 0 {
				why = r[0]
			}
			a.net.subnet, a.net.why = netip.Prefix{}, why
			return netip.Prefix{}, fmt.Errorf("%w: %s", errNoPodRange, why)
		}
		sub = s
	}
	if sn.PodSubnet() != sub {
		if err := sn.SetPodSubnet(sub); err != nil {
			return netip.Prefix{}, fmt.Errorf("pod range %s: %w", sub, err)
		}
	}
	a.net.subnet, a.net.why = sub, ""
	if a.net.logged != sub {
		a.net.logged = sub
		a.log.Info("pod range", "subnet", sub.String(), "pinned", a.net.pin.IsValid())
	}
	return sub, nil
}

// sameButIdle reports whether two allocations differ at most in their
// slices' IdleSince.
func sameButIdle(a, b *netplan.State) bool {
	strip := func(s *netplan.State) *netplan.State {
		c := *s
		c.Slices = make(map[string]netplan.Slice, len(s.Slices))
		for k, v := range s.Slices {
			v.IdleSince = time.Time{}
			c.Slices[k] = v
		}
		return &c
	}
	return strip(a).Equal(strip(b))
}
