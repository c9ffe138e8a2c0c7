package scheduler

import (
	"maps"
	"sort"
)

// Placement is the cluster's assignment of replicas to nodes, as the leader
// publishes it. Every agent adopts the newest placement it has seen (see
// Newer) and runs the replicas assigned to it.
type Placement struct {
	// Term is the term of the leader that made the placement; Seq numbers
	// the placements of that term from 1. Together they fence placements:
	// a placement from a superseded leader is never adopted.
	Term uint64 `json:"term"`
	Seq  uint64 `json:"seq"`
	// Commit is the commit of the desired state placed.
	Commit string `json:"commit"`
	// Assignments maps each placed replica ("NAMESPACE/POD", the pod name
	// reconciler.Expand gives it) to the name of its node.
	Assignments map[string]string `json:"assignments"`
	// Volumes maps each PersistentVolumeClaim ("NAMESPACE/NAME") whose data
	// lives on a node to that node's name, so the replicas using it stay
	// there even while none of them is assigned.
	Volumes map[string]string `json:"volumes,omitempty"`
}

// Newer reports whether p supersedes q: a higher term, or the same term
// and a higher sequence number. Any placement is newer than nil.
func (p *Placement) Newer(q *Placement) bool {
	if q == nil {
		return p != nil
	}
	if p == nil {
		return false
	}
	if p.Term != q.Term {
		return p.Term > q.Term
	}
	return p.Seq > q.Seq
}

// Equal reports whether p and q assign the same replicas and volumes to the
// same nodes for the same commit (Term and Seq are not compared).
func (p *Placement) Equal(q *Placement) bool {
	if p == nil || q == nil {
		return p == q
	}
	return p.Commit == q.Commit && maps.Equal(p.Assignments, q.Assignments) && maps.Equal(p.Volumes, q.Volumes)
}

// OnNode lists the replicas assigned to node, sorted (numeric parts in
// numeric order, so web-2 comes before web-10).
func (p *Placement) OnNode(node string) []string {
	if p == nil {
		return nil
	}
	var out []string
	for r, n := range p.Assignments {
		if n == node {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return naturalLess(out[i], out[j]) })
	return out
}

// naturalLess orders strings with runs of digits compared as numbers, so
// that web-2 sorts before web-10. It duplicates the reconciler's unexported
// naturalLess so that scheduler depends on specs only.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			i, j := digitEnd(a), digitEnd(b)
			na, nb := trimZeros(a[:i]), trimZeros(b[:j])
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			if i != j {
				return i < j
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// digitEnd returns the length of the leading run of digits of s.
func digitEnd(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// trimZeros strips leading zeros from a run of digits.
func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}
