package netplan

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// sortedKeys returns the keys of m in order.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// u32 returns an IPv4 address as a number.
func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// addr4 returns the IPv4 address of a number.
func addr4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// span is an inclusive range of numbers: addresses or ports.
type span struct{ lo, hi uint64 }

// spanOf returns the addresses of an IPv4 prefix.
func spanOf(p netip.Prefix) span {
	lo := uint64(u32(p.Masked().Addr()))
	return span{lo, lo + 1<<(32-p.Bits()) - 1}
}

// overlappingSlices returns two nodes whose slices overlap, if any.
func overlappingSlices(m map[string]Slice) (string, string, bool) {
	type entry struct {
		node string
		s    span
	}
	es := make([]entry, 0, len(m))
	for _, n := range sortedKeys(m) {
		es = append(es, entry{n, spanOf(m[n].Prefix)})
	}
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(a.s.lo, b.s.lo) })
	// Sorted by start, an entry overlaps an earlier one exactly when it
	// starts before the furthest end seen so far.
	far := -1
	for i, e := range es {
		if far >= 0 && e.s.lo <= es[far].s.hi {
			return es[far].node, e.node, true
		}
		if far < 0 || e.s.hi > es[far].s.hi {
			far = i
		}
	}
	return "", "", false
}

// fnv64 is the FNV-1a hash of s: the deterministic starting point of an
// allocation, so that two leaders given the same input pick the same.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
