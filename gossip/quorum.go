package gossip

import "fmt"

// Quorum says whether placement changes may be made.
type Quorum struct {
	// Expect is the expected cluster size (--expect); 0 means none.
	Expect int
	// Alive is the number of alive members, this node included.
	Alive int
	// Needed is Expect/2+1 (0 without Expect).
	Needed int
	// OK is true when changes may be made.
	OK bool
	// Reason says why, for status.
	Reason string
}

// CheckQuorum is the quorum rule: with expect > 0, changes need
// expect/2+1 alive members; without it the cluster favours availability.
func CheckQuorum(expect, alive int) Quorum {
	if expect <= 0 {
		return Quorum{Alive: alive, OK: true,
			Reason: fmt.Sprintf("no --expect: the cluster favours availability (%d alive); a partitioned minority may still place", alive)}
	}
	q := Quorum{Expect: expect, Alive: alive, Needed: expect/2 + 1}
	q.OK = alive >= q.Needed
	if q.OK {
		q.Reason = fmt.Sprintf("quorum: %d of %d expected members alive, %d needed", alive, expect, q.Needed)
	} else {
		q.Reason = fmt.Sprintf("no quorum: %d of %d expected members alive, %d needed; the last placement stays in force", alive, expect, q.Needed)
	}
	return q
}
