package netplan

import (
	"maps"
	"slices"
	"strings"
)

// Planner plans the changes of kelpie's table incrementally (issue 13):
// it keeps what each Service contributed to the table last time (its
// chains, affinity sets and set/map elements) and the table they make,
// so that a change of one Service rebuilds and diffs that Service only.
// The Change it returns is the one Diff(BuildRuleset(previous input),
// BuildRuleset(input)) returns, Ops and Text alike (planner_test.go checks
// it on random sequences of changes). What every Service depends on (the
// node, the CIDRs, the node IPs, whether any LoadBalancer exists) changing,
// two Services writing the same map key, or the first Plan after New or
// Reset take the full path: BuildRuleset, then Diff. Every CheckEvery
// incremental plans, a full build also runs and is compared with the
// incremental table (a difference, a bug, reloads the whole table).
//
// A Planner is pure (no I/O) and not safe for concurrent use.
type Planner struct {
	// CheckEvery is how many incremental plans run between full builds
	// compared with the incremental table (0: DefaultCheckEvery; negative:
	// never).
	CheckEvery int

	cur   *Ruleset             // the table last planned; nil: none
	env   string               // what every Service depends on, as last planned
	frags map[svcKey]*fragment // by Service
	epoch uint64               // of the current plan, to mark the fragments seen
	refs  map[string]map[string]int
	// conflict: two Services write the same key with different values, or
	// share a key or an object name: every plan takes the full path.
	conflict bool
	since    int // incremental plans since the last full build
	stats    PlannerStats
}

// DefaultCheckEvery is Planner.CheckEvery's default.
const DefaultCheckEvery = 100

// PlannerStats counts a Planner's plans.
type PlannerStats struct {
	// Full counts plans built whole; Incremental those built per Service.
	Full, Incremental uint64
	// Mismatches counts full builds (checks) that found the incremental
	// table different: a bug, corrected by the plan that found it.
	Mismatches uint64
}

// svcKey names a Service without building "NAMESPACE/NAME".
type svcKey struct{ ns, name string }

// keyOf returns svc's key.
func keyOf(svc *Service) svcKey { return svcKey{svc.Namespace, svc.Name} }

// fragment is what one Service adds to the table.
type fragment struct {
	seen   uint64                       // the Planner's epoch when last in the input
	svc    Service                      // a deep copy of the input it was built from
	chains map[string]*nftChain         // its own chains
	sets   map[string]*nftSet           // its own sets (affinity)
	elems  map[string]map[string]string // shared set name → key → value
}

// NewPlanner returns a Planner with no table: its first Plan is full.
func NewPlanner() *Planner { return &Planner{} }

// Reset forgets the table: the next Plan builds it whole and returns a
// Full change. Call it when the table's state is unknown (a change
// failed).
func (p *Planner) Reset() { p.cur, p.frags, p.refs = nil, nil, nil }

// Stats returns the plan counts so far.
func (p *Planner) Stats() PlannerStats { return p.stats }

// Ruleset returns a copy of the table last planned (nil before the first
// Plan): what BuildRuleset of the last input returns.
func (p *Planner) Ruleset() *Ruleset {
	if p.cur == nil {
		return nil
	}
	return p.cur.clone()
}

// RulesetStats counts the objects of the table last planned.
func (p *Planner) RulesetStats() RulesetStats {
	if p.cur == nil {
		return RulesetStats{}
	}
	return p.cur.Stats()
}

// Plan returns the transaction that turns the table last planned into the
// one of in (Full, the whole text, the first time or after Reset).
func (p *Planner) Plan(in RulesetInput) (Change, error) {
	env := envOf(in)
	if p.cur == nil || p.conflict || env != p.env {
		return p.full(in, env)
	}
	every := p.CheckEvery
	if every == 0 {
		every = DefaultCheckEvery
	}
	ch, ok := p.incremental(in)
	if !ok {
		return p.full(in, env)
	}
	p.since++
	p.stats.Incremental++
	if every > 0 && p.since >= every {
		// The anti-drift check: the incremental table must be the full
		// build's; if not (a bug), the whole table is loaded again.
		p.since = 0
		rs, err := BuildRuleset(in)
		if err != nil {
			return Change{}, err
		}
		if !p.cur.Equal(rs) {
			p.stats.Mismatches++
			p.Reset()
			return p.full(in, env)
		}
	}
	return ch, nil
}

// full builds the table of in whole, diffs it from the last one (the
// whole text when none) and rebuilds the per-Service state.
func (p *Planner) full(in RulesetInput, env string) (Change, error) {
	rs, err := BuildRuleset(in)
	if err != nil {
		return Change{}, err
	}
	var ch Change
	if p.cur == nil {
		ch = Change{Text: rs.Text(), Full: true}
	} else {
		ch = Diff(p.cur, rs)
	}
	p.cur, p.env, p.since = rs, env, 0
	p.frags = make(map[svcKey]*fragment, len(in.Services))
	p.refs = map[string]map[string]int{}
	p.conflict = false
	lb := hasLoadBalancers(in.Services)
	first := map[string]map[string]string{} // set → key → the first Service's value
	for i := range in.Services {
		svc := &in.Services[i]
		k := keyOf(svc)
		if p.frags[k] != nil {
			p.conflict = true
			continue
		}
		f := buildFragment(in, svc, lb)
		p.frags[k] = f
		if !p.addRefs(f, first) {
			p.conflict = true
		}
	}
	p.stats.Full++
	return ch, nil
}

// addRefs counts f's elements, reporting false when one has another value
// than the same key of another Service, or when one of f's objects has
// another's name. The other Services' values are those of first (set →
// key → value, which addRefs fills), or with first nil those of the
// table (f not added yet).
func (p *Planner) addRefs(f *fragment, first map[string]map[string]string) bool {
	ok := true
	for n, elems := range f.elems {
		r := p.refs[n]
		if r == nil {
			r = map[string]int{}
			p.refs[n] = r
		}
		var fv map[string]string
		if first != nil {
			if fv = first[n]; fv == nil {
				fv = map[string]string{}
				first[n] = fv
			}
		}
		for k, v := range elems {
			if r[k] > 0 {
				have := p.cur.sets[n].elems[k]
				if fv != nil {
					have = fv[k]
				}
				if have != v {
					ok = false
				}
			} else if fv != nil {
				fv[k] = v
			}
			r[k]++
		}
	}
	for n := range f.chains {
		if r := p.refs["chain "]; r != nil && r[n] > 0 {
			ok = false
		}
		p.ref("chain ", n)
	}
	for n := range f.sets {
		if r := p.refs["set "]; r != nil && r[n] > 0 {
			ok = false
		}
		p.ref("set ", n)
	}
	return ok
}

// ref counts one more user of name in the namespace ns.
func (p *Planner) ref(ns, name string) {
	r := p.refs[ns]
	if r == nil {
		r = map[string]int{}
		p.refs[ns] = r
	}
	r[name]++
}

// incremental plans the change of in from the per-Service state; false
// when it cannot (two Services collide): the caller takes the full path.
func (p *Planner) incremental(in RulesetInput) (Change, bool) {
	p.epoch++
	var added map[svcKey]bool // Services not in the table: checked for duplicates apart
	var changed []*Service    // new or different
	seen := 0
	for i := range in.Services {
		svc := &in.Services[i]
		k := keyOf(svc)
		f := p.frags[k]
		switch {
		case f == nil:
			if added[k] {
				return Change{}, false
			}
			if added == nil {
				added = map[svcKey]bool{}
			}
			added[k] = true
			changed = append(changed, svc)
			continue
		case f.seen == p.epoch:
			return Change{}, false // twice in the input
		}
		f.seen = p.epoch
		seen++
		if !serviceEqual(&f.svc, svc) {
			changed = append(changed, svc)
		}
	}
	var gone []svcKey
	if seen < len(p.frags) {
		for k, f := range p.frags {
			if f.seen != p.epoch {
				gone = append(gone, k)
			}
		}
	}
	if len(changed) == 0 && len(gone) == 0 {
		return Change{}, true
	}
	lb := hasLoadBalancers(in.Services)
	olds := make([]*fragment, 0, len(changed)+len(gone))
	news := make([]*fragment, 0, len(changed))
	for _, k := range gone {
		olds = append(olds, p.frags[k])
	}
	for _, svc := range changed {
		if f := p.frags[keyOf(svc)]; f != nil {
			olds = append(olds, f)
		}
		news = append(news, buildFragment(in, svc, lb))
	}
	// The part of the table before: the shared sets (declarations, and the
	// keys the fragments touch), the fragments' own chains and sets.
	before := p.part(olds, news)
	for _, f := range olds {
		p.remove(f)
	}
	for _, k := range gone {
		delete(p.frags, k)
	}
	ok := true
	for _, f := range news {
		f.seen = p.epoch
		p.frags[keyOf(&f.svc)] = f
		if !p.add(f) {
			ok = false
		}
	}
	if !ok {
		// Collisions: the table is no longer what BuildRuleset makes. The
		// full path diffs from the table as it was.
		p.cur = before.restore(p.cur, olds, news)
		return Change{}, false
	}
	after := p.part(olds, news)
	ch := Diff(before, after)
	if ch.Full {
		ch = Change{Text: p.cur.Text(), Full: true}
	}
	return ch, true
}

// part returns the objects of the current table that the fragments
// touch: every shared set or map (declared, with only the keys the
// fragments have), and the fragments' own chains and sets as the table
// has them now.
func (p *Planner) part(frags ...[]*fragment) *Ruleset {
	r := &Ruleset{sets: map[string]*nftSet{}, chains: map[string]*nftChain{}}
	for n, s := range p.cur.sets {
		if p.refs["set "][n] == 0 {
			r.sets[n] = &nftSet{kind: s.kind, spec: s.spec, elems: map[string]string{}}
		}
	}
	for _, fs := range frags {
		for _, f := range fs {
			for n, elems := range f.elems {
				cur, part := p.cur.sets[n], r.sets[n]
				for k := range elems {
					if v, ok := cur.elems[k]; ok {
						part.elems[k] = v
					}
				}
			}
			for n := range f.chains {
				if c := p.cur.chains[n]; c != nil {
					r.chains[n] = c
				}
			}
			for n := range f.sets {
				if s := p.cur.sets[n]; s != nil {
					r.sets[n] = s
				}
			}
		}
	}
	return r
}

// restore undoes the fragments news and puts back olds: the table as it
// was (before holds its state for what they touch).
func (before *Ruleset) restore(cur *Ruleset, olds, news []*fragment) *Ruleset {
	for _, f := range news {
		for n := range f.chains {
			delete(cur.chains, n)
		}
		for n := range f.sets {
			delete(cur.sets, n)
		}
		for n, elems := range f.elems {
			for k := range elems {
				delete(cur.sets[n].elems, k)
			}
		}
	}
	for n, c := range before.chains {
		cur.chains[n] = c
	}
	for n, s := range before.sets {
		if cs := cur.sets[n]; cs != nil && cs.spec == s.spec && cs.kind == s.kind && cs != s {
			for k, v := range s.elems {
				cs.elems[k] = v
			}
			continue
		}
		cur.sets[n] = s
	}
	return cur
}

// remove takes fragment f out of the table; an element stays while
// another Service has it.
func (p *Planner) remove(f *fragment) {
	for n := range f.chains {
		delete(p.cur.chains, n)
		p.refs["chain "][n]--
	}
	for n := range f.sets {
		delete(p.cur.sets, n)
		p.refs["set "][n]--
	}
	for n, elems := range f.elems {
		r, s := p.refs[n], p.cur.sets[n]
		for k := range elems {
			if r[k]--; r[k] <= 0 {
				delete(r, k)
				delete(s.elems, k)
			}
		}
	}
}

// add puts fragment f into the table, reporting false when it collides
// with another Service's objects or values.
func (p *Planner) add(f *fragment) bool {
	ok := p.addRefs(f, nil)
	for n, c := range f.chains {
		p.cur.chains[n] = c
	}
	for n, s := range f.sets {
		p.cur.sets[n] = s
	}
	for n, elems := range f.elems {
		s := p.cur.sets[n]
		for k, v := range elems {
			s.elems[k] = v
		}
	}
	return ok
}

// buildFragment builds what svc adds to the table of in: the same code as
// BuildRuleset, on a table holding only the shared sets.
func buildFragment(in RulesetInput, svc *Service, lb bool) *fragment {
	f := &fragment{svc: cloneService(svc)}
	r := &Ruleset{sets: map[string]*nftSet{}, chains: map[string]*nftChain{}}
	shared := []string{setClusterIPs, setNodePortIPs, mapServiceIPs, mapServiceNodePorts, mapNoEndpointSvcs, mapNoEndpointNPs, setHairpin}
	if lb {
		shared = append(shared, mapServiceLBPorts, mapNoEndpointLBs, mapLBFirewall)
	}
	for _, n := range shared {
		r.sets[n] = &nftSet{elems: map[string]string{}}
	}
	if !svc.Headless && svc.ClusterIP.Is4() {
		r.sets[setClusterIPs].elems[svc.ClusterIP.String()] = ""
		for j := range svc.Ports {
			r.servicePort(in, svc, &svc.Ports[j])
		}
	}
	f.chains = r.chains
	for _, n := range shared {
		if e := r.sets[n].elems; len(e) > 0 {
			if f.elems == nil {
				f.elems = map[string]map[string]string{}
			}
			f.elems[n] = e
		}
		delete(r.sets, n)
	}
	f.sets = r.sets
	return f
}

// envOf is what every Service's part of the table depends on, besides the
// Service itself.
func envOf(in RulesetInput) string {
	var b strings.Builder
	b.WriteString(in.Node)
	b.WriteByte('|')
	b.WriteString(in.ClusterCIDR.String())
	b.WriteByte('|')
	b.WriteString(in.ServiceCIDR.String())
	for _, ip := range in.NodeIPs {
		b.WriteByte('|')
		b.WriteString(ip.String())
	}
	if hasLoadBalancers(in.Services) {
		b.WriteString("|lb")
	}
	return b.String()
}

// cloneService copies svc deeply.
func cloneService(svc *Service) Service {
	c := *svc
	c.SourceRanges = slices.Clone(svc.SourceRanges)
	c.Ports = slices.Clone(svc.Ports)
	for i := range c.Ports {
		c.Ports[i].Endpoints = slices.Clone(c.Ports[i].Endpoints)
	}
	return c
}

// serviceEqual reports whether a and b are the same input.
func serviceEqual(a, b *Service) bool {
	if a.Namespace != b.Namespace || a.Name != b.Name || a.ClusterIP != b.ClusterIP || a.Headless != b.Headless ||
		a.AffinityTimeout != b.AffinityTimeout || a.ExternalLocal != b.ExternalLocal || a.LoadBalancer != b.LoadBalancer ||
		!slices.Equal(a.SourceRanges, b.SourceRanges) || len(a.Ports) != len(b.Ports) {
		return false
	}
	for i := range a.Ports {
		p, q := &a.Ports[i], &b.Ports[i]
		if p.Name != q.Name || p.Protocol != q.Protocol || p.Port != q.Port || p.NodePort != q.NodePort ||
			p.LBConflict != q.LBConflict || !slices.Equal(p.Endpoints, q.Endpoints) {
			return false
		}
	}
	return true
}

// clone copies r: its sets' elements and its chains' rules.
func (r *Ruleset) clone() *Ruleset {
	c := &Ruleset{sets: make(map[string]*nftSet, len(r.sets)), chains: make(map[string]*nftChain, len(r.chains))}
	for n, s := range r.sets {
		c.sets[n] = &nftSet{kind: s.kind, spec: s.spec, elems: maps.Clone(s.elems)}
	}
	for n, ch := range r.chains {
		c.chains[n] = &nftChain{spec: ch.spec, rules: slices.Clone(ch.rules)}
	}
	return c
}
