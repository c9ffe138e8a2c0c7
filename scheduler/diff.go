package scheduler

import (
	"fmt"
	"sort"
)

// Move is one difference between two placements for one replica: it was
// added (From is empty), removed (To is empty) or moved between nodes.
type Move struct {
	Replica string `json:"replica"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
}

// String formats the move for a log: "default/web-3 n1 -> n2",
// "default/web-4 added on n2", "default/web-5 removed from n1".
func (m Move) String() string {
	switch {
	case m.From == "":
		return fmt.Sprintf("%s added on %s", m.Replica, m.To)
	case m.To == "":
		return fmt.Sprintf("%s removed from %s", m.Replica, m.From)
	}
	return fmt.Sprintf("%s %s -> %s", m.Replica, m.From, m.To)
}

// Diff lists the replicas whose node differs between from and to, sorted
// by replica (numeric parts in numeric order). Either may be nil (no
// assignments).
func Diff(from, to *Placement) []Move {
	var a, b map[string]string
	if from != nil {
		a = from.Assignments
	}
	if to != nil {
		b = to.Assignments
	}
	var moves []Move
	for r, n := range a {
		if m, ok := b[r]; !ok || m != n {
			moves = append(moves, Move{Replica: r, From: n, To: m})
		}
	}
	for r, m := range b {
		if _, ok := a[r]; !ok {
			moves = append(moves, Move{Replica: r, To: m})
		}
	}
	sort.Slice(moves, func(i, j int) bool { return naturalLess(moves[i].Replica, moves[j].Replica) })
	return moves
}
