package gossip

import (
	"slices"
	"strings"
	"time"
)

// joinMinBackoff is the first pause between join attempts while alone.
const joinMinBackoff = time.Second

// rejoinLoop joins cfg.Join at start and keeps joining the known peers
// that are not alive: memberlist never rejoins after a partition by itself
// (hashicorp/memberlist#222). While the node is alone it retries with
// back-off (1 s doubling up to min(RejoinInterval, 30 s)); once joined it
// checks every RejoinInterval.
func (n *Node) rejoinLoop() {
	defer n.wg.Done()
	maxBackoff := min(DefaultJoinMaxBackoff, n.cfg.RejoinInterval)
	backoff := min(joinMinBackoff, maxBackoff)
	for {
		targets := n.rejoinOnce()
		wait := n.cfg.RejoinInterval
		if n.alive.Load() <= 1 && targets > 0 {
			wait = backoff
			backoff = min(backoff*2, maxBackoff)
		} else {
			backoff = min(joinMinBackoff, maxBackoff)
		}
		t := n.clock.NewTimer(wait)
		select {
		case <-t.C():
		case <-n.done:
			t.Stop()
			return
		}
	}
}

// rejoinOnce tries every target once and returns how many it tried: the
// known peers not alive, plus cfg.Join while the node is alone.
func (n *Node) rejoinOnce() int {
	ml := n.ml.Load()
	if ml == nil {
		return 0
	}
	self := n.addr
	n.mu.Lock()
	var targets []string
	for name, p := range n.peers {
		if m := n.members[name]; (m == nil || m.state != StateAlive) && !n.left[name] {
			targets = append(targets, p.Addr)
		}
	}
	n.mu.Unlock()
	if n.alive.Load() <= 1 {
		targets = append(targets, n.cfg.Join...)
	}
	slices.Sort(targets)
	targets = slices.Compact(targets)
	targets = slices.DeleteFunc(targets, func(a string) bool { return a == self })
	var ok, failed []string
	for _, t := range targets {
		select {
		case <-n.done:
			return len(targets)
		default:
		}
		if _, err := ml.Join([]string{t}); err != nil {
			failed = append(failed, t)
			n.logJoinError([]string{t}, err)
			continue
		}
		ok = append(ok, t)
	}
	if len(ok) > 0 {
		n.log.Info("gossip joined", "via", ok, "members", n.alive.Load())
	}
	n.persistSoon() // refreshes peers.json when due
	if len(ok) == 0 && len(failed) > 0 {
		n.log.Debug("gossip join failed; will retry", "tried", failed)
	}
	return len(targets)
}

// logJoinError logs why a join failed; a key mismatch is an error an
// operator must fix, anything else a debug line (the peer may be down).
func (n *Node) logJoinError(addrs []string, err error) {
	s := err.Error()
	if keyMismatch(s) || strings.Contains(strings.ToLower(s), "decrypt") || strings.Contains(strings.ToLower(s), "encrypt") {
		n.bridge.keyMismatch("join " + strings.Join(addrs, ",") + ": " + s)
		return
	}
	n.log.Debug("gossip join failed", "addrs", addrs, "err", err)
}
