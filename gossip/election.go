package gossip

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// ElectionMember is one member as the election sees it.
type ElectionMember struct {
	// Name is the member's node name; names order candidates.
	Name string
	// Alive is true for alive and suspect members.
	Alive bool
	// Eligible says the member may lead.
	Eligible bool
	// Term is the leader term the member claims; 0 for none.
	Term uint64
	// SteppedDownFor is the term the member stepped down for; 0 for none.
	SteppedDownFor uint64
}

// ElectionView is everything Decide looks at: one node's view of the
// cluster at one instant.
type ElectionView struct {
	// Self is the deciding node's name; it must be among Members.
	Self string
	// Members are the members known, Self included, in any order.
	Members []ElectionMember
	// HighestTerm is the highest term Self has seen anywhere (claims,
	// metadata, placements); Decide also takes the members' terms.
	HighestTerm uint64
	// Changed is when the part of the view that can change Self's
	// decision last changed (the members sorting up to Self: liveness,
	// eligibility, step-downs; and every claim); Now is the present.
	Changed, Now time.Time
	// Settle is how long the view must stay unchanged before Self claims.
	Settle time.Duration
	// QuorumLost is true when --expect is set and too few members are
	// alive: Self does not claim (it could not publish anyway, and a
	// minority's new term would only make the majority's leader re-claim
	// after the partition heals).
	QuorumLost bool
}

// Action is what a Decision tells the node to do.
type Action int

const (
	// Follow: do not lead; Decision.Leader is the leader, "" if none yet.
	Follow Action = iota
	// Claim: start leading with Decision.Term.
	Claim
	// StayLeader: keep leading Decision.Term.
	StayLeader
	// StepDown: stop leading; remember Decision.Term as the term stepped
	// down for (0: stepped down for an earlier-sorting member, no
	// stickiness).
	StepDown
)

// String names the action.
func (a Action) String() string {
	switch a {
	case Follow:
		return "follow"
	case Claim:
		return "claim"
	case StayLeader:
		return "stay leader"
	case StepDown:
		return "step down"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Decision is the election's output.
type Decision struct {
	// Action is what to do.
	Action Action
	// Term is the term claimed (Claim), held (StayLeader) or stepped down
	// for (StepDown); for Follow, the leader's term (0 if none).
	Term uint64
	// Leader is the leader after the action: Self for Claim and
	// StayLeader, the winning claim otherwise ("" if none).
	Leader string
	// Reason says why, for logs and status.
	Reason string
}

// Decide is the election, a pure function of one node's view (DESIGN.md,
// "Cluster protocol"):
//
//   - A claim is a member's Term > 0. Among alive claims, the higher term
//     wins; equal terms go to the lower name.
//   - A member is blocked (sticky) while it has stepped down for term T and
//     some other alive member claims a term >= T: a node that yielded to a
//     higher term does not claim again while that term's holder (or a
//     newer one) lives, so a one-way partition cannot make two nodes duel.
//   - The candidate is the alive, eligible, unblocked member that sorts
//     first. When it is Self, the view has been unchanged for Settle and
//     quorum holds, Self claims HighestTerm+1 (over every term in the
//     view).
//   - A leader steps down when it sees a winning claim above its own
//     (higher term, or equal term and lower name: sticky), when an alive,
//     eligible, unblocked member sorts before it (not sticky), or when it is
//     no longer eligible.
//   - A leader that keeps leading but has seen a term above its own that
//     nobody alive claims any more (a healed minority's leader stepped
//     down to it) claims HighestTerm+1 at once: placements of that term
//     would otherwise fence its own.
func Decide(v ElectionView) Decision {
	ms := slices.Clone(v.Members)
	slices.SortFunc(ms, func(a, b ElectionMember) int { return strings.Compare(a.Name, b.Name) })
	var self ElectionMember
	highest := v.HighestTerm
	for _, m := range ms {
		if m.Name == v.Self {
			self = m
			self.Alive = true // a node is alive to itself
		}
		highest = max(highest, m.Term, m.SteppedDownFor)
	}
	alive := func(m ElectionMember) bool { return m.Alive || m.Name == v.Self }

	// The winning claim among the others.
	var win ElectionMember
	for _, m := range ms {
		if m.Name == v.Self || !alive(m) || m.Term == 0 {
			continue
		}
		if m.Term > win.Term || (m.Term == win.Term && m.Name < win.Name) {
			win = m
		}
	}
	blocked := func(m ElectionMember) bool {
		if m.SteppedDownFor == 0 {
			return false
		}
		for _, o := range ms {
			if o.Name != m.Name && alive(o) && o.Term >= m.SteppedDownFor {
				return true
			}
		}
		return false
	}
	var cand string
	for _, m := range ms {
		if alive(m) && m.Eligible && !blocked(m) {
			cand = m.Name
			break
		}
	}

	if self.Term > 0 {
		switch {
		case win.Term > self.Term || (win.Term == self.Term && win.Name < v.Self):
			return Decision{Action: StepDown, Term: win.Term, Leader: win.Name,
				Reason: fmt.Sprintf("%s claims term %d, above our term %d", win.Name, win.Term, self.Term)}
		case !self.Eligible:
			return Decision{Action: StepDown, Leader: win.Name, Term: 0,
				Reason: "this node is no longer eligible"}
		case cand != "" && cand < v.Self:
			return Decision{Action: StepDown, Leader: win.Name, Term: 0,
				Reason: fmt.Sprintf("eligible member %s sorts first", cand)}
		case highest > self.Term && highest >= MaxTerm:
			return Decision{Action: StepDown, Leader: "", Term: 0,
				Reason: fmt.Sprintf("term %d was seen, at the limit %d: no term above it can be claimed", highest, uint64(MaxTerm))}
		case highest > self.Term:
			return Decision{Action: Claim, Term: highest + 1, Leader: v.Self,
				Reason: fmt.Sprintf("term %d was seen above our term %d: leading on above it, or its placements would fence ours", highest, self.Term)}
		}
		return Decision{Action: StayLeader, Term: self.Term, Leader: v.Self,
			Reason: fmt.Sprintf("leading term %d", self.Term)}
	}

	follow := Decision{Action: Follow, Term: win.Term, Leader: win.Name}
	switch {
	case cand == "":
		follow.Reason = "no alive eligible member may claim"
	case cand != v.Self:
		if win.Name == "" {
			follow.Reason = fmt.Sprintf("waiting for %s to claim", cand)
		} else {
			follow.Reason = fmt.Sprintf("%s leads term %d", win.Name, win.Term)
		}
	case v.Now.Sub(v.Changed) < v.Settle:
		follow.Reason = fmt.Sprintf("candidate; view changed %s ago, settling for %s", v.Now.Sub(v.Changed), v.Settle)
	case v.QuorumLost:
		follow.Reason = "candidate, but without quorum: not claiming"
	case highest >= MaxTerm:
		follow.Reason = fmt.Sprintf("candidate, but term %d is at the limit %d: not claiming", highest, uint64(MaxTerm))
	default:
		return Decision{Action: Claim, Term: highest + 1, Leader: v.Self,
			Reason: fmt.Sprintf("first eligible member; view stable for %s", v.Settle)}
	}
	if self.SteppedDownFor > 0 && blocked(self) && cand != v.Self {
		follow.Reason += fmt.Sprintf(" (stepped down for term %d)", self.SteppedDownFor)
	}
	return follow
}
