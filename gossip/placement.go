package gossip

import "fmt"

// Placement is the cluster's current assignment of work, opaque to gossip:
// the leader of Term publishes it with a Seq that grows within the term,
// and every node adopts the highest (Term, Seq) it sees.
type Placement struct {
	// Term is the leader term it was published in.
	Term uint64
	// Seq orders the placements of one term, from 1.
	Seq uint64
	// Leader is the node that published it.
	Leader string
	// Commit is the git commit the cluster runs.
	Commit string
	// Data is the scheduler's assignments, encoded by the scheduler.
	Data []byte
}

// IsZero reports whether p is no placement at all.
func (p Placement) IsZero() bool { return p.Term == 0 && p.Seq == 0 }

// Newer reports whether p's (Term, Seq) is above q's.
func (p Placement) Newer(q Placement) bool {
	if p.Term != q.Term {
		return p.Term > q.Term
	}
	return p.Seq > q.Seq
}

// String names the placement by its version.
func (p Placement) String() string {
	return fmt.Sprintf("placement %d.%d (leader %s, commit %.12s, %d bytes)", p.Term, p.Seq, p.Leader, p.Commit, len(p.Data))
}

// Adoptable is the fencing rule: a node holding cur, having seen terms up to
// highest, adopts p only when p is newer than cur and p's term is not below
// a term it has seen (a deposed leader's placements are ignored once its
// successor's term is known, even before the successor publishes).
func Adoptable(cur Placement, highest uint64, p Placement) bool {
	return p.Newer(cur) && p.Term >= highest && p.Term > 0
}

func (p Placement) encode(e *encoder) {
	e.uvarint(p.Term)
	e.uvarint(p.Seq)
	e.string(p.Leader)
	e.string(p.Commit)
	e.bytes(p.Data)
}

func decodePlacement(d *decoder) Placement {
	var p Placement
	p.Term = d.uvarint()
	p.Seq = d.uvarint()
	p.Leader = d.string()
	p.Commit = d.string()
	p.Data = d.bytes()
	return p
}
