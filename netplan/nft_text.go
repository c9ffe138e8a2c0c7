package netplan

import (
	"fmt"
	"slices"
	"strings"
)

// table is the "FAMILY NAME" of kelpie's table in commands.
const table = TableFamily + " " + TableName

// Text returns one nft transaction (for `nft -f`) that replaces kelpie's
// table with r, atomically: the table is created if missing, deleted, and
// built again. Connections already set up keep their NAT (conntrack holds
// it), but affinity sets start empty. The text is the same for equal
// rulesets: objects in name order, rules in chain order.
func (r *Ruleset) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "add table %s { comment %q ; }\n", table, tableComment)
	fmt.Fprintf(&b, "delete table %s\n", table)
	fmt.Fprintf(&b, "add table %s { comment %q ; }\n", table, tableComment)
	setNames := sortedKeys(r.sets)
	chainNames := sortedKeys(r.chains)
	for _, n := range setNames {
		r.writeSet(&b, n)
	}
	for _, n := range chainNames {
		r.writeChain(&b, n)
	}
	for _, n := range chainNames {
		r.writeRules(&b, n)
	}
	for _, n := range setNames {
		s := r.sets[n]
		for _, k := range sortedKeys(s.elems) {
			writeElement(&b, "add", n, k, s.elems[k])
		}
	}
	return b.String()
}

// writeSet declares set n.
func (r *Ruleset) writeSet(b *strings.Builder, n string) {
	s := r.sets[n]
	fmt.Fprintf(b, "add %s %s %s { %s }\n", s.kind, table, n, s.spec)
}

// writeChain declares chain n.
func (r *Ruleset) writeChain(b *strings.Builder, n string) {
	if spec := r.chains[n].spec; spec != "" {
		fmt.Fprintf(b, "add chain %s %s { %s }\n", table, n, spec)
		return
	}
	fmt.Fprintf(b, "add chain %s %s\n", table, n)
}

// writeRules adds the rules of chain n.
func (r *Ruleset) writeRules(b *strings.Builder, n string) {
	for _, rule := range r.chains[n].rules {
		fmt.Fprintf(b, "add rule %s %s %s\n", table, n, rule)
	}
}

// writeElement adds or deletes one element of set n (value "" for a set
// element, or to delete a map element).
func writeElement(b *strings.Builder, verb, n, key, value string) {
	if value == "" {
		fmt.Fprintf(b, "%s element %s %s { %s }\n", verb, table, n, key)
		return
	}
	fmt.Fprintf(b, "%s element %s %s { %s : %s }\n", verb, table, n, key, value)
}

// Change is the transaction that turns one ruleset into another.
type Change struct {
	// Text is one nft transaction; "" when nothing changed.
	Text string
	// Full says that Text replaces the whole table (no previous ruleset, or
	// a declaration changed in a way only a rebuild can apply).
	Full bool
	// Ops are the commands of an incremental Text one by one, in its order
	// (after its first line, "add table", which only makes a missing table
	// fail later rather than at once), for a loader that programs the
	// kernel itself; nil for a Full change. One of kind OpOther means that
	// only the Text says it all.
	Ops []Op
	// Stale lists the chains Text emptied because nothing uses them any
	// more. They cannot be deleted in the same transaction (kernels before
	// 6.2 release a chain's last reference only some time after the map
	// element or rule that held it is gone): delete them a second or more
	// later with DeleteStale.
	Stale []string
}

// Diff returns the transaction that turns old (nil: nothing programmed
// yet) into new, touching only what differs: map and set elements added,
// removed or changed one by one; a chain whose rules changed flushed and
// written again; new sets and chains added; sets nothing uses deleted;
// chains nothing uses flushed and listed in Stale. An endpoint change in a
// large table is a handful of commands. When a declaration changed (an
// affinity timeout), Diff falls back to the full Text.
func Diff(old, new *Ruleset) Change {
	if old == nil {
		return Change{Text: new.Text(), Full: true}
	}
	for n, s := range new.sets {
		if o := old.sets[n]; o != nil && (o.kind != s.kind || o.spec != s.spec) {
			return Change{Text: new.Text(), Full: true}
		}
	}
	for n, c := range new.chains {
		if o := old.chains[n]; o != nil && o.spec != c.spec {
			return Change{Text: new.Text(), Full: true}
		}
	}
	var b strings.Builder
	var ops []Op
	// Only the names of what differs are sorted: a table of 1,000 chains
	// is compared, not sorted, for one change.
	var newSets, newChains, flushed, written []string
	for n := range new.sets {
		if old.sets[n] == nil {
			newSets = append(newSets, n)
		}
	}
	for n, c := range new.chains {
		switch o := old.chains[n]; {
		case o == nil:
			newChains = append(newChains, n)
			written = append(written, n)
		case !slices.Equal(o.rules, c.rules):
			flushed = append(flushed, n)
			written = append(written, n)
		}
	}
	var stale []string
	for n := range old.chains {
		if new.chains[n] == nil {
			stale = append(stale, n)
			flushed = append(flushed, n)
		}
	}
	for _, names := range [][]string{newSets, newChains, flushed, written, stale} {
		slices.Sort(names)
	}
	setNames := sortedKeys(new.sets) // a handful
	// Declare what is new, so that rules and elements may refer to it.
	for _, n := range newSets {
		new.writeSet(&b, n)
		ops = append(ops, Op{Kind: OpOther, Name: n})
	}
	for _, n := range newChains {
		new.writeChain(&b, n)
		kind := OpAddChain
		if new.chains[n].spec != "" {
			kind = OpOther // a base chain
		}
		ops = append(ops, Op{Kind: kind, Name: n})
	}
	// Remove elements that are gone or change, before the chains they
	// point to are flushed. Only the keys that differ are sorted: a set
	// of 10,000 elements is compared, not sorted, for one change.
	added := map[string][]string{}
	for _, n := range sortedKeys(old.sets) {
		s, o := new.sets[n], old.sets[n]
		if s == nil {
			continue
		}
		gone, add := elemDiff(o.elems, s.elems)
		added[n] = add
		typ := setType(o.spec)
		for _, k := range gone {
			writeElement(&b, "delete", n, k, "")
			ops = append(ops, Op{Kind: OpDeleteElement, Name: n, Type: typ, Key: k})
		}
	}
	for _, n := range flushed {
		fmt.Fprintf(&b, "flush chain %s %s\n", table, n)
		ops = append(ops, Op{Kind: OpFlushChain, Name: n})
	}
	for _, n := range written {
		new.writeRules(&b, n)
		for _, rule := range new.chains[n].rules {
			ops = append(ops, Op{Kind: OpAddRule, Name: n, Rule: rule})
		}
	}
	for _, n := range setNames {
		s, o := new.sets[n], old.sets[n]
		add := added[n]
		if o == nil {
			add = sortedKeys(s.elems)
		}
		typ := setType(s.spec)
		for _, k := range add {
			writeElement(&b, "add", n, k, s.elems[k])
			ops = append(ops, Op{Kind: OpAddElement, Name: n, Type: typ, Key: k, Value: s.elems[k]})
		}
	}
	// Sets nothing refers to any more: the rules that used them were
	// flushed above.
	for _, n := range sortedKeys(old.sets) {
		if new.sets[n] == nil {
			fmt.Fprintf(&b, "delete %s %s %s\n", old.sets[n].kind, table, n)
			ops = append(ops, Op{Kind: OpOther, Name: n})
		}
	}
	if b.Len() == 0 {
		return Change{}
	}
	return Change{Text: "add table " + table + "\n" + b.String(), Ops: ops, Stale: stale}
}

// elemDiff returns the keys of old that new has not, or with another
// value, and the keys of new that old has not, or with another value,
// each sorted: one pass over old, and one over new only when new has
// elements old has not (the usual change, one endpoint replaced, costs two
// passes over a set of 10,000 elements, no sort of it).
func elemDiff(old, new map[string]string) (gone, added []string) {
	for k, v := range old {
		w, ok := new[k]
		if !ok || w != v {
			gone = append(gone, k)
		}
	}
	// new's keys that old has with the same value: len(old)-len(gone).
	if len(new)-(len(old)-len(gone)) > 0 {
		for k, v := range new {
			if w, ok := old[k]; !ok || w != v {
				added = append(added, k)
			}
		}
	}
	slices.Sort(gone)
	slices.Sort(added)
	return gone, added
}

// DeleteStale returns the transaction deleting the stale chains of earlier
// changes that current does not use again ("" when none remain). Run it a
// second or more after the change that emptied them.
func DeleteStale(current *Ruleset, stale []string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, n := range stale {
		if seen[n] || current.HasChain(n) {
			continue
		}
		seen[n] = true
		fmt.Fprintf(&b, "delete chain %s %s\n", table, n)
	}
	return b.String()
}
