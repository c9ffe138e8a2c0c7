package netplan

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/kelpie-dev/kelpie/scheduler"
)

// sliceAllocator holds one allocation of slices.
type sliceAllocator struct {
	cfg    Config
	now    time.Time
	nodes  map[string]*Node
	out    map[string]Slice
	report *Report
}

// allocateSlices gives every alive node a slice of the cluster pod range,
// starting from prev. The rules, in order:
//
//  1. A node keeps its slice while it is known: alive, suspect, dead or
//     left. When it is first seen down (or missing), IdleSince records it.
//  2. A node missing from the list for SliceRetention loses its slice. A
//     listed node down that long keeps it, but it may be reclaimed when
//     the range is exhausted, the longest idle first.
//  3. A leader-chosen slice outside ClusterCIDR (the flag changed) is given
//     up and replaced; one inside is kept even if SliceBits changed, since
//     moving it would renumber running pods.
//  4. A pinned slice (--pod-subnet) is honoured unless it is not a valid
//     IPv4 network of at most /30, lies outside ClusterCIDR, or overlaps
//     another node's slice: a slice already held is never taken away by a
//     pin. A conflicting node gets no slice and the report says why.
//  5. Alive nodes without a slice get the lowest free one, in name order.
//     When there is none, the report says "no slice: cluster-cidr …
//     exhausted" for each of them.
func allocateSlices(prev map[string]Slice, nodes map[string]*Node, cfg Config, now time.Time, report *Report) map[string]Slice {
	a := &sliceAllocator{cfg: cfg, now: now, nodes: nodes, out: make(map[string]Slice, len(nodes)), report: report}
	a.carry(prev)
	a.pins()
	a.fresh()
	if len(a.out) == 0 {
		return nil
	}
	return a.out
}

// carry keeps the previous slices (rules 1 to 3).
func (a *sliceAllocator) carry(prev map[string]Slice) {
	for _, name := range sortedKeys(prev) {
		s := prev[name]
		n := a.nodes[name]
		switch {
		case n != nil && n.up():
			s.IdleSince = time.Time{}
		case s.IdleSince.IsZero():
			s.IdleSince = a.now
			if n != nil && !n.DownSince.IsZero() && n.DownSince.Before(a.now) {
				s.IdleSince = n.DownSince
			}
		}
		if n == nil && a.expired(s) {
			a.report.note("node "+name, "slice %s released: gone since %s", s.Prefix, s.IdleSince.UTC().Format(time.RFC3339))
			continue
		}
		if s.Pinned && n != nil && !n.PodSubnet.IsValid() {
			s.Pinned = false // the host dropped --pod-subnet: keep what it runs with, if the leader can
		}
		if !s.Pinned && !within(s.Prefix, a.cfg.ClusterCIDR) {
			a.report.note("node "+name, "slice %s is outside the cluster-cidr %s: given up", s.Prefix, a.cfg.ClusterCIDR)
			continue
		}
		a.out[name] = s
	}
}

// expired reports whether an idle slice has passed its retention.
func (a *sliceAllocator) expired(s Slice) bool {
	return !s.IdleSince.IsZero() && a.now.Sub(s.IdleSince) >= a.cfg.SliceRetention
}

// pins honours --pod-subnet (rule 4). Hosts whose pin differs from their
// slice give the slice up first (they run with their pin whatever the
// leader says), then the pins are placed in name order.
func (a *sliceAllocator) pins() {
	var want []string
	for _, name := range sortedKeys(a.nodes) {
		pin := a.nodes[name].PodSubnet
		if !pin.IsValid() {
			continue
		}
		subject := "node " + name
		cur, has := a.out[name]
		switch {
		case !pin.Addr().Is4() || pin.Masked() != pin || pin.Bits() > 30:
			a.report.problem(subject, "pod-subnet %s: want an IPv4 network address of at most /30", pin)
		case !within(pin, a.cfg.ClusterCIDR):
			a.report.problem(subject, "no slice: pod-subnet %s is outside the cluster-cidr %s", pin, a.cfg.ClusterCIDR)
			delete(a.out, name)
		case has && cur.Prefix == pin:
			cur.Pinned = true
			a.out[name] = cur
		default:
			if has {
				a.report.note(subject, "slice %s replaced by its pod-subnet %s", cur.Prefix, pin)
				delete(a.out, name)
			}
			want = append(want, name)
		}
	}
	for _, name := range want {
		n := a.nodes[name]
		if holder, ok := a.holderOf(n.PodSubnet, name); ok {
			a.report.problem("node "+name, "no slice: pod-subnet %s overlaps the slice %s of node %s", n.PodSubnet, a.out[holder].Prefix, holder)
			continue
		}
		a.out[name] = Slice{Prefix: n.PodSubnet, Pinned: true, IdleSince: idleSince(n, a.now)}
	}
}

// within reports whether p lies inside outer.
func within(p, outer netip.Prefix) bool {
	return p.Bits() >= outer.Bits() && outer.Contains(p.Addr())
}

// idleSince is the IdleSince of a new slice of node n.
func idleSince(n *Node, now time.Time) time.Time {
	if n.up() {
		return time.Time{}
	}
	return now
}

// holderOf returns another node whose slice overlaps p and is not past its
// retention. When there is none, the overlapping slices past their
// retention are reclaimed to make room.
func (a *sliceAllocator) holderOf(p netip.Prefix, self string) (string, bool) {
	var expired []string
	for _, other := range sortedKeys(a.out) {
		s := a.out[other]
		switch {
		case other == self || !s.Prefix.Overlaps(p):
		case a.expired(s):
			expired = append(expired, other)
		default:
			return other, true
		}
	}
	for _, other := range expired {
		s := a.out[other]
		a.report.note("node "+other, "slice %s reclaimed for the pod-subnet of node %s: down since %s", s.Prefix, self, s.IdleSince.UTC().Format(time.RFC3339))
		delete(a.out, other)
	}
	return "", false
}

// fresh gives alive nodes without a slice the lowest free one (rule 5).
func (a *sliceAllocator) fresh() {
	var want []string
	for _, name := range sortedKeys(a.nodes) {
		n := a.nodes[name]
		if _, ok := a.out[name]; !ok && n.State == scheduler.NodeAlive && !n.PodSubnet.IsValid() {
			want = append(want, name)
		}
	}
	if len(want) == 0 {
		return
	}
	size := uint64(1) << (32 - a.cfg.SliceBits)
	cidr := spanOf(a.cfg.ClusterCIDR)
	free := a.freeSlices(cidr, size, len(want))
	for _, name := range want {
		if len(free) == 0 {
			free = a.reclaim(cidr, size)
		}
		if len(free) == 0 {
			a.report.problem("node "+name, "no slice: cluster-cidr %s exhausted (%d slices of /%d, all held)", a.cfg.ClusterCIDR, (cidr.hi-cidr.lo+1)/size, a.cfg.SliceBits)
			continue
		}
		a.out[name] = Slice{Prefix: netip.PrefixFrom(addr4(uint32(free[0])), a.cfg.SliceBits)}
		free = free[1:]
	}
}

// freeSlices returns the starts of up to max free slices of the given size
// in cidr, lowest first: one sweep over the held slices, merged.
func (a *sliceAllocator) freeSlices(cidr span, size uint64, max int) []uint64 {
	held := make([]span, 0, len(a.out))
	for _, s := range a.out {
		held = append(held, spanOf(s.Prefix))
	}
	slices.SortFunc(held, func(x, y span) int { return cmp.Compare(x.lo, y.lo) })
	var out []uint64
	next, j := cidr.lo, 0
	for next+size-1 <= cidr.hi && len(out) < max {
		for j < len(held) && held[j].hi < next {
			j++
		}
		if j < len(held) && held[j].lo <= next+size-1 {
			// Skip past the held range, to the next aligned start.
			next = (held[j].hi/size + 1) * size
			continue
		}
		out = append(out, next)
		next += size
	}
	return out
}

// reclaim evicts the longest idle slices that passed their retention until
// a slice of the given size is free, and returns it; nil when none can be.
func (a *sliceAllocator) reclaim(cidr span, size uint64) []uint64 {
	for {
		victim := ""
		for _, name := range sortedKeys(a.out) {
			s := a.out[name]
			if !a.expired(s) {
				continue
			}
			if victim == "" || s.IdleSince.Before(a.out[victim].IdleSince) {
				victim = name
			}
		}
		if victim == "" {
			return nil
		}
		s := a.out[victim]
		a.report.note("node "+victim, "slice %s reclaimed: cluster-cidr exhausted, down since %s", s.Prefix, s.IdleSince.UTC().Format(time.RFC3339))
		delete(a.out, victim)
		if free := a.freeSlices(cidr, size, 1); len(free) > 0 {
			return free
		}
	}
}

// String formats a slice for status output.
func (s Slice) String() string {
	out := s.Prefix.String()
	if s.Pinned {
		out += " (pinned)"
	}
	if !s.IdleSince.IsZero() {
		out += fmt.Sprintf(" (idle since %s)", s.IdleSince.UTC().Format(time.RFC3339))
	}
	return out
}
