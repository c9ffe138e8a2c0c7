package gossip

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// updateTimeout bounds how long a claim or step-down waits for its
// metadata broadcast to leave.
const updateTimeout = time.Second

// electionTick is how often the election runs: a fifth of the settle
// period, between 10 ms and 1 s.
func (n *Node) electionTick() time.Duration {
	return min(max(n.cfg.SettlePeriod/5, 10*time.Millisecond), time.Second)
}

// kickElection runs the election soon (a member or claim changed).
func (n *Node) kickElection() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// electionLoop runs step on every tick and kick until the node stops.
func (n *Node) electionLoop() {
	defer n.wg.Done()
	tick := n.electionTick()
	for {
		n.step()
		t := n.clock.NewTimer(tick)
		select {
		case <-t.C():
		case <-n.kick:
			t.Stop()
		case <-n.done:
			t.Stop()
			return
		}
	}
}

// view builds the election's input from the member table; n.mu is held.
// It also tracks when the view last changed.
func (n *Node) viewLocked(now time.Time, alive int) ElectionView {
	v := ElectionView{Self: n.cfg.NodeName, HighestTerm: n.highest, Now: now, Settle: n.cfg.SettlePeriod,
		QuorumLost: !CheckQuorum(n.cfg.Expect, alive).OK}
	v.Members = append(v.Members, ElectionMember{Name: n.cfg.NodeName, Alive: true, Eligible: n.meta.Eligible,
		Term: n.meta.Term, SteppedDownFor: n.meta.SteppedDownFor})
	for _, m := range n.members {
		if m.name == n.cfg.NodeName || m.state != StateAlive {
			continue
		}
		em := ElectionMember{Name: m.name, Alive: true}
		if m.metaErr == nil {
			em.Eligible, em.Term, em.SteppedDownFor = m.meta.Eligible, m.meta.Term, m.meta.SteppedDownFor
		}
		v.Members = append(v.Members, em)
	}
	// Only what can change this node's decision resets the settle period:
	// the members that sort up to it, and every claim. A member that sorts
	// after it flapping somewhere in a large cluster must not keep the
	// candidate from ever claiming (50 nodes on a loaded machine took 14 s
	// to elect with every change counted).
	var sig strings.Builder
	for _, m := range sortedMembers(v.Members) {
		if m.Name <= n.cfg.NodeName {
			fmt.Fprintf(&sig, "%s/%t/%d/%d;", m.Name, m.Eligible, m.Term, m.SteppedDownFor)
		} else if m.Term > 0 {
			fmt.Fprintf(&sig, "%s/%d;", m.Name, m.Term)
		}
	}
	if s := sig.String(); s != n.viewSig {
		n.viewSig = s
		n.viewChanged = now
	}
	v.Changed = n.viewChanged
	return v
}

// step runs the election once and applies its decision to the node's
// metadata.
func (n *Node) step() {
	now := n.clock.Now()
	alive := n.quorumAlive() // before n.mu: see quorumAlive
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	d := Decide(n.viewLocked(now, alive))
	old := n.meta
	switch d.Action {
	case Claim:
		n.meta.Term = d.Term
		n.meta.SteppedDownFor = 0
		n.highest = max(n.highest, d.Term)
		n.noteClaimLocked(d.Term, n.cfg.NodeName)
	case StepDown:
		n.meta.Term = 0
		if d.Term > 0 {
			n.meta.SteppedDownFor = d.Term
		}
	}
	n.meta.Seen = max(n.meta.Seen, n.highest)
	metaChanged := old.Term != n.meta.Term || old.SteppedDownFor != n.meta.SteppedDownFor || old.Seen != n.meta.Seen
	if metaChanged {
		b, err := encodeMeta(n.meta)
		if err != nil { // validate() checked the worst case: unreachable
			n.mu.Unlock()
			n.log.Error("encode node metadata", "err", err)
			return
		}
		n.metaBytes = b
	}
	lead := Leadership{Leader: d.Leader, Term: d.Term, Self: d.Action == Claim || d.Action == StayLeader, Reason: d.Reason}
	if d.Action == StepDown {
		lead.Term = 0
	}
	prev := n.lead
	n.lead = lead
	n.mu.Unlock()

	if d.Action == Claim || d.Action == StepDown {
		n.log.Info("election: "+d.Action.String(), "term", d.Term, "reason", d.Reason)
	}
	if metaChanged {
		if ml := n.ml.Load(); ml != nil {
			if err := ml.UpdateNode(updateTimeout); err != nil {
				n.log.Debug("broadcast node metadata", "err", err)
			}
		}
		n.persistSoon()
	}
	if prev.Leader != lead.Leader || prev.Term != lead.Term || prev.Self != lead.Self {
		if lead.Leader != "" && !lead.Self && lead.Term > 0 {
			n.log.Info("election: following", "leader", lead.Leader, "term", lead.Term)
		}
		n.notify()
	}
}

// sortedMembers returns ms sorted by name.
func sortedMembers(ms []ElectionMember) []ElectionMember {
	out := slices.Clone(ms)
	slices.SortFunc(out, func(a, b ElectionMember) int { return strings.Compare(a.Name, b.Name) })
	return out
}
