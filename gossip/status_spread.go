package gossip

import "time"

// A status small enough for a UDP packet is broadcast whole and relayed by
// every receiver. A bigger one (a host with many pods lists them) is
// announced instead: a notice (node, version) is broadcast and relayed,
// and a node holding an older status of that node pulls the status from
// it over TCP, through the bounded send queue. Push-pull carries every
// status too, so a lost pull is repaired within a push-pull interval.

// statusWant is the last pull of a node's status: which version, when.
type statusWant struct {
	version uint64
	at      time.Time
}

// queueStatus broadcasts node's status of version, whose encoded message
// is msg: whole when it fits, else as a notice.
func (n *Node) queueStatus(node string, version uint64, msg []byte) {
	if len(msg) > maxBroadcastStatus {
		msg = encodeNotice(msgStatusNotice, notice{Seq: version, Node: node})
	}
	n.queue.QueueBroadcast(&broadcast{name: "s/" + node, msg: msg})
}

// onStatusNotice pulls the announced status from its node when ours is
// older, at most once per wantEvery for one version.
func (n *Node) onStatusNotice(nt notice) {
	if nt.Node == n.cfg.NodeName || nt.Node == "" {
		return
	}
	now := n.clock.Now()
	n.mu.Lock()
	if cur, ok := n.statuses[nt.Node]; ok && cur.Version >= nt.Seq {
		n.mu.Unlock()
		return
	}
	if w, ok := n.statusWants[nt.Node]; ok && w.version >= nt.Seq && now.Sub(w.at) < wantEvery {
		n.mu.Unlock()
		return
	}
	to := n.members[nt.Node]
	if to == nil || to.state != StateAlive {
		n.mu.Unlock()
		return
	}
	n.statusWants[nt.Node] = statusWant{version: nt.Seq, at: now}
	n.mu.Unlock()
	n.sendAsync(to, encodeNotice(msgWantStatus, notice{Seq: nt.Seq, Node: n.cfg.NodeName}))
}

// onWantStatus sends this node's status to a node that asked for it, when
// it is at least the version asked for.
func (n *Node) onWantStatus(nt notice) {
	n.mu.Lock()
	s, ok := n.statuses[n.cfg.NodeName]
	to := n.members[nt.Node]
	n.mu.Unlock()
	if !ok || to == nil || s.Version < nt.Seq {
		return
	}
	n.sendAsync(to, encodeStatusMsg(s))
}
