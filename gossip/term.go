package gossip

import "fmt"

// Bounds on the terms and sequence numbers a node accepts from its peers.
// A leader term grows by one per election, so honest clusters stay far
// below them; a holder of the gossip key who sends a term near 2^64 would
// otherwise make the next claim (highest+1) wrap to 0 and wedge the cluster.
const (
	// MaxTerm is the highest term accepted at all: 2^40 elections, one a
	// second, take 34,000 years.
	MaxTerm = 1 << 40
	// MaxTermStep is how far above the highest term a node has seen a
	// newly seen term may be. A node that knows no term yet (highest 0)
	// accepts up to MaxTerm, so a new host can join an old cluster.
	MaxTermStep = 1 << 20
	// MaxSeq is the highest placement sequence number accepted: a forged
	// seq near 2^64 would leave the term's leader no newer seq to publish.
	MaxSeq = 1 << 40
	// claimsKept is how many recent terms' claimants a node remembers.
	claimsKept = 16
)

// termPlausible reports whether a term received from a peer can be
// honest for a node that has seen terms up to highest.
func termPlausible(term, highest uint64) bool {
	if term > MaxTerm {
		return false
	}
	return highest == 0 || term <= highest || term-highest <= MaxTermStep
}

// metaTermsPlausible checks every term in a member's metadata.
func metaTermsPlausible(m Meta, highest uint64) error {
	for _, t := range []struct {
		what string
		v    uint64
	}{{"term", m.Term}, {"seen", m.Seen}, {"stepped-down-for", m.SteppedDownFor}} {
		if !termPlausible(t.v, highest) {
			return fmt.Errorf("%s %d is not plausible (highest term seen %d, limit %d, step %d)", t.what, t.v, highest, uint64(MaxTerm), MaxTermStep)
		}
	}
	return nil
}

// noteClaimLocked records that name claims term; n.mu is held. Of two
// members claiming the same term, the election keeps the lower name, so
// that one is the term's leader here too.
func (n *Node) noteClaimLocked(term uint64, name string) {
	if term == 0 {
		return
	}
	if cur, ok := n.claims[term]; ok && cur <= name {
		return
	}
	n.claims[term] = name
	if len(n.claims) > claimsKept {
		var lowest uint64
		for t := range n.claims {
			if lowest == 0 || t < lowest {
				lowest = t
			}
		}
		delete(n.claims, lowest)
	}
}

// placementRefusalLocked says why p, received from a peer, must not be
// adopted, or "" when it may; n.mu is held. Beyond the fencing rule
// (Adoptable), the term and seq must be plausible and, when this node has
// seen who claimed p's term, p must come from that claimant: a member that
// did not win a term cannot publish in it.
func (n *Node) placementRefusalLocked(p Placement) string {
	if !termPlausible(p.Term, n.highest) {
		return fmt.Sprintf("term %d is not plausible (highest term seen %d)", p.Term, n.highest)
	}
	if p.Seq > MaxSeq {
		return fmt.Sprintf("seq %d is above the limit %d", p.Seq, uint64(MaxSeq))
	}
	if holder, ok := n.claims[p.Term]; ok && holder != p.Leader {
		return fmt.Sprintf("term %d was claimed by %s, not by %s", p.Term, holder, p.Leader)
	}
	return ""
}
