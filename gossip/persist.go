package gossip

import (
	"slices"
	"time"
)

// peersRefresh is how often peers.json is rewritten even when nothing
// changed, so that the last-seen times of long-lived peers stay fresh
// for peerTTL.
const peersRefresh = time.Hour

// persistSoon asks the persist loop to write what changed.
func (n *Node) persistSoon() {
	select {
	case n.persistCh <- struct{}{}:
	default:
	}
}

// persistLoop writes the peers file and the placement off memberlist's
// goroutines, latest state first, until the node stops.
func (n *Node) persistLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.persistCh:
			n.persist()
		case <-n.done:
			return
		}
	}
}

// persist writes the peers file and the placement if they changed.
func (n *Node) persist() {
	if n.cfg.StateDir == "" {
		return
	}
	now := n.clock.Now()
	n.mu.Lock()
	var pf *peersFile
	if n.dirtyPeers || n.highest != n.savedTerm || now.Sub(n.peersSaved) >= peersRefresh {
		pf = &peersFile{HighestTerm: n.highest}
		for name, p := range n.peers {
			if m := n.members[name]; m != nil && m.state == StateAlive {
				p.LastSeen = now // alive now: the TTL counts from here
				n.peers[name] = p
			}
			pf.Peers = append(pf.Peers, p)
		}
		n.dirtyPeers = false
		n.savedTerm = n.highest
		n.peersSaved = now
	}
	var place []byte
	if n.dirtyPlace {
		place = slices.Clone(n.placementEnc)
		n.dirtyPlace = false
	}
	n.mu.Unlock()
	if pf != nil {
		if err := writePeers(n.peersPath(), *pf); err != nil {
			n.log.Warn("saving gossip peers", "err", err)
		}
	}
	if place != nil {
		if err := writeFileAtomic(n.placementPath(), place); err != nil {
			n.log.Warn("saving placement", "err", err)
		}
	}
}
