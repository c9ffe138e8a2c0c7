package gossip

import (
	"net"
	"slices"

	"github.com/hashicorp/memberlist"
)

// delegate is the Node seen as memberlist's Delegate. memberlist calls it
// from its own goroutines, some while it holds its node lock: the methods
// take only n.mu, never call memberlist, and do not block (work that
// sends runs in a goroutine).
type delegate Node

var _ memberlist.Delegate = (*delegate)(nil)

// NodeMeta returns the node's encoded metadata (validated to fit limit).
func (d *delegate) NodeMeta(limit int) []byte {
	n := (*Node)(d)
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.metaBytes) > limit {
		return nil // validate() makes this unreachable
	}
	return slices.Clone(n.metaBytes)
}

// NotifyMsg receives a user message, by UDP broadcast or TCP.
func (d *delegate) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	n := (*Node)(d)
	dec := decoder{b: b[1:]}
	switch b[0] {
	case msgPlacementNotice:
		nt := decodeNotice(&dec)
		if dec.err == nil {
			n.onNotice(nt)
		}
	case msgWantPlacement:
		nt := decodeNotice(&dec)
		if dec.err == nil {
			n.onWant(nt)
		}
	case msgPlacement:
		p := decodePlacement(&dec)
		if dec.err == nil {
			n.offerPlacement(p, "pull")
		}
	case msgStatus:
		s := decodeStatus(&dec)
		if dec.err == nil && n.mergeStatus(s) {
			n.queueStatus(s.Node, s.Version, slices.Clone(b)) // relay: receivers do not by themselves
			n.notify()
		}
	case msgStatusNotice:
		nt := decodeNotice(&dec)
		if dec.err == nil {
			n.onStatusNotice(nt)
		}
	case msgWantStatus:
		nt := decodeNotice(&dec)
		if dec.err == nil {
			n.onWantStatus(nt)
		}
	case msgLeaving:
		name := dec.string()
		if dec.err == nil {
			n.onLeaving(name, b)
		}
	default:
		n.log.Debug("ignoring gossip message of unknown type", "type", b[0])
	}
	if dec.err != nil {
		n.log.Warn("ignoring malformed gossip message", "type", b[0], "err", dec.err)
	}
}

// GetBroadcasts hands memberlist the queued notices and statuses.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return (*Node)(d).queue.GetBroadcasts(overhead, limit)
}

// LocalState is the push-pull state: the placement's version and every
// status.
func (d *delegate) LocalState(join bool) []byte {
	n := (*Node)(d)
	n.mu.Lock()
	defer n.mu.Unlock()
	sts := make([]NodeStatus, 0, len(n.statuses))
	for _, s := range n.statuses {
		sts = append(sts, s)
	}
	return encodeState(notice{Term: n.placement.Term, Seq: n.placement.Seq, Node: n.cfg.NodeName}, sts)
}

// MergeRemoteState merges a peer's push-pull state.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	n := (*Node)(d)
	st, err := decodeState(buf)
	if err != nil {
		n.log.Warn("ignoring a peer's push-pull state", "err", err)
		return
	}
	changed := false
	for _, s := range st.Statuses {
		changed = n.mergeStatus(s) || changed
	}
	if st.Have.Term > 0 {
		n.onNotice(st.Have) // pulls the placement when it is newer than ours
	}
	if changed {
		n.notify()
	}
}

// mergeStatus keeps s when it is newer than what we hold for its node;
// a node's own status is set only by SetStatus.
func (n *Node) mergeStatus(s NodeStatus) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s.Node == "" || s.Node == n.cfg.NodeName {
		return false
	}
	if cur, ok := n.statuses[s.Node]; ok && cur.Version >= s.Version {
		return false
	}
	n.statuses[s.Node] = s
	return true
}

// events is the Node seen as memberlist's EventDelegate. memberlist calls
// it with its node lock held: it copies what it needs and returns.
type events Node

var _ memberlist.EventDelegate = (*events)(nil)

// NotifyJoin records a member that joined (or came back).
func (e *events) NotifyJoin(m *memberlist.Node) { (*Node)(e).observe(m, StateAlive) }

// NotifyUpdate records a member's new metadata.
func (e *events) NotifyUpdate(m *memberlist.Node) { (*Node)(e).observe(m, StateAlive) }

// NotifyLeave records a member that died or left.
func (e *events) NotifyLeave(m *memberlist.Node) { (*Node)(e).observe(m, StateDead) }

// observe updates the member table from a memberlist event.
func (n *Node) observe(m *memberlist.Node, st MemberState) {
	ms := &memberState{
		name: m.Name, addr: m.Address(), ip: slices.Clone(net.IP(m.Addr)), port: m.Port, state: st,
		lastSeen: n.clock.Now(),
	}
	if len(m.Meta) > 0 {
		ms.meta, ms.metaErr = decodeMeta(m.Meta)
	}
	n.mu.Lock()
	prev := n.members[m.Name]
	if st == StateAlive {
		delete(n.left, m.Name)
	} else if n.left[m.Name] || m.State == memberlist.StateLeft {
		ms.state = StateLeft
	}
	ms.since = ms.lastSeen
	if prev != nil && prev.state == ms.state {
		ms.since = prev.since
	}
	if st != StateAlive && prev != nil {
		ms.lastSeen = prev.lastSeen
		if len(m.Meta) == 0 {
			ms.meta, ms.metaErr = prev.meta, prev.metaErr
		}
	}
	if ms.metaErr == nil {
		if err := metaTermsPlausible(ms.meta, n.highest); err != nil {
			ms.meta, ms.metaErr = Meta{}, err
		}
	}
	n.members[m.Name] = ms
	if ms.metaErr == nil {
		n.highest = max(n.highest, ms.meta.Term, ms.meta.Seen)
		n.noteClaimLocked(ms.meta.Term, m.Name)
	}
	if m.Name != n.cfg.NodeName {
		if st == StateAlive {
			if p, ok := n.peers[m.Name]; !ok || p.Addr != ms.addr {
				n.dirtyPeers = true
			}
			n.peers[m.Name] = peer{Name: m.Name, Addr: ms.addr, LastSeen: ms.lastSeen}
		} else if ms.state == StateLeft {
			if _, ok := n.peers[m.Name]; ok {
				delete(n.peers, m.Name)
				n.dirtyPeers = true
			}
		}
	}
	var alive int64
	for _, x := range n.members {
		if x.state == StateAlive {
			alive++
		}
	}
	n.alive.Store(alive)
	dirty := n.dirtyPeers
	n.mu.Unlock()
	if prev == nil || prev.state != ms.state {
		n.log.Info("member "+string(ms.state), "member", m.Name, "addr", ms.addr)
	}
	if dirty {
		n.persistSoon()
	}
	n.kickElection()
	n.notify()
}
