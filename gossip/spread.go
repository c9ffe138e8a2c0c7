package gossip

import (
	"context"
	"log/slog"
	"time"

	"github.com/hashicorp/memberlist"
)

// wantEvery is how often one placement version is asked for again while
// it has not arrived (its origin may have died meanwhile).
const wantEvery = 2 * time.Second

// queueNotice announces that p can be pulled from this node. Every node
// that adopts a placement announces it in turn, so pulls spread over the
// cluster instead of all landing on the leader.
func (n *Node) queueNotice(p Placement) {
	n.queue.QueueBroadcast(&broadcast{name: "p", msg: encodeNotice(msgPlacementNotice,
		notice{Term: p.Term, Seq: p.Seq, Node: n.cfg.NodeName})})
}

// onNotice asks the notice's origin for the placement when it is one we
// would adopt.
func (n *Node) onNotice(nt notice) {
	n.mu.Lock()
	want := nt.Node != n.cfg.NodeName && Adoptable(n.placement, n.highest, Placement{Term: nt.Term, Seq: nt.Seq}) &&
		termPlausible(nt.Term, n.highest) && nt.Seq <= MaxSeq
	key := [2]uint64{nt.Term, nt.Seq}
	now := n.clock.Now()
	if want {
		if last, ok := n.wants[key]; ok && now.Sub(last) < wantEvery {
			want = false
		} else {
			n.wants[key] = now
		}
	}
	to := n.members[nt.Node]
	n.mu.Unlock()
	if !want || to == nil || to.state != StateAlive {
		return
	}
	n.sendAsync(to, encodeNotice(msgWantPlacement, notice{Term: nt.Term, Seq: nt.Seq, Node: n.cfg.NodeName}))
}

// onWant sends our placement to a node that asked for it, if ours is at
// least what it asked for.
func (n *Node) onWant(nt notice) {
	n.mu.Lock()
	p := n.placement
	to := n.members[nt.Node]
	n.mu.Unlock()
	if to == nil || p.IsZero() || (Placement{Term: nt.Term, Seq: nt.Seq}).Newer(p) {
		return
	}
	n.sendAsync(to, encodePlacementMsg(p))
}

// Sends over TCP (placement pulls and wants) go through a bounded queue
// served by a fixed set of senders: a burst of wants or pulls cannot grow
// goroutines or memory without bound. A send that finds the queue full is
// dropped: a want is asked again, and a placement spreads by its notices
// and push-pull.
const (
	senders   = 4  // concurrent TCP sends
	sendQueue = 64 // sends waiting for a sender
)

// sendJob is one queued send.
type sendJob struct {
	to  *memberlist.Node
	msg []byte
}

// sendAsync queues msg for a member (delegates must not block).
func (n *Node) sendAsync(to *memberState, msg []byte) {
	job := sendJob{to: &memberlist.Node{Name: to.name, Addr: to.ip, Port: to.port}, msg: msg}
	select {
	case n.sends <- job:
	default:
		n.sendsDropped.Add(1)
		n.log.Debug("gossip send queue full: dropping a send", "to", to.name, "type", msg[0])
	}
}

// sendLoop is one sender: it sends queued messages until the node stops.
func (n *Node) sendLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.done:
			return
		case job := <-n.sends:
			ml := n.ml.Load()
			if ml == nil {
				continue
			}
			if err := ml.SendReliable(job.to, job.msg); err != nil {
				lv := slog.LevelDebug // a want is asked again
				if job.msg[0] == msgPlacement {
					lv = slog.LevelWarn
				}
				n.log.Log(context.Background(), lv, "gossip send failed", "to", job.to.Name, "type", job.msg[0], "bytes", len(job.msg), "err", err)
			}
		}
	}
}

// offerPlacement adopts p when the fencing rule allows it, then announces
// it so that others can pull it from here.
func (n *Node) offerPlacement(p Placement, via string) {
	n.mu.Lock()
	if n.stopped || !Adoptable(n.placement, n.highest, p) {
		n.mu.Unlock()
		return
	}
	if why := n.placementRefusalLocked(p); why != "" {
		n.mu.Unlock()
		n.log.Warn("refusing a placement from a peer", "term", p.Term, "seq", p.Seq, "leader", p.Leader, "via", via, "reason", why)
		return
	}
	n.setPlacementLocked(p)
	for k := range n.wants {
		if !(Placement{Term: k[0], Seq: k[1]}).Newer(p) {
			delete(n.wants, k)
		}
	}
	n.mu.Unlock()
	n.log.Debug("placement adopted", "term", p.Term, "seq", p.Seq, "leader", p.Leader, "via", via, "bytes", len(p.Data))
	n.queueNotice(p)
	n.persistSoon()
	n.kickElection()
	n.notify()
}

// onLeaving marks a member that announced a graceful leave, drops it from
// the peers to rejoin, and relays the announcement once.
func (n *Node) onLeaving(name string, msg []byte) {
	n.mu.Lock()
	if name == n.cfg.NodeName || n.left[name] {
		n.mu.Unlock()
		return
	}
	n.left[name] = true
	if m := n.members[name]; m != nil && m.state == StateDead {
		m.state = StateLeft
	}
	delete(n.peers, name)
	n.dirtyPeers = true
	n.mu.Unlock()
	n.queue.QueueBroadcast(&broadcast{name: "l/" + name, msg: append([]byte(nil), msg...)})
	n.persistSoon()
}
