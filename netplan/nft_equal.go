package netplan

import (
	"maps"
	"slices"
)

// Equal reports whether r and o program the same table: the same sets and
// maps with the same declarations and elements, the same chains with the
// same rules. It is what comparing their Text says, without writing the
// text: the agent asks it on every sync.
func (r *Ruleset) Equal(o *Ruleset) bool {
	if r == nil || o == nil {
		return r == o
	}
	if len(r.sets) != len(o.sets) || len(r.chains) != len(o.chains) {
		return false
	}
	for n, s := range r.sets {
		t := o.sets[n]
		if t == nil || s.kind != t.kind || s.spec != t.spec || !maps.Equal(s.elems, t.elems) {
			return false
		}
	}
	for n, c := range r.chains {
		d := o.chains[n]
		if d == nil || c.spec != d.spec || !slices.Equal(c.rules, d.rules) {
			return false
		}
	}
	return true
}
