package netplan

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Table is kelpie's own nftables table, "ip kelpie". kelpie never touches
// any other table, and nothing else should touch this one.
const (
	TableFamily = "ip"
	TableName   = "kelpie"
)

// MasqueradeMark is the packet mark bit that asks the postrouting chain to
// masquerade a Service connection. It differs from kube-proxy's 0x4000 so
// that the two do not clear each other's bit on a host that runs both.
const MasqueradeMark = 0x2000

// tableComment is the comment of kelpie's table.
const tableComment = "managed by kelpie: Service virtual IPs, node ports and pod masquerading; do not edit"

// Names of the fixed sets, maps and chains.
const (
	setClusterIPs        = "cluster-ips"
	setNodePortIPs       = "nodeport-ips"
	mapServiceIPs        = "service-ips"
	mapServiceNodePorts  = "service-nodeports"
	mapNoEndpointSvcs    = "no-endpoint-services"
	mapNoEndpointNPs     = "no-endpoint-nodeports"
	setHairpin           = "hairpin"
	chainServices        = "services"
	chainMarkMasq        = "mark-for-masquerade"
	chainMasquerading    = "masquerading"
	chainReject          = "reject-chain"
	chainClusterIPsCheck = "cluster-ips-check"
	chainSvcEPCheck      = "service-endpoints-check"
	chainNPEPCheck       = "nodeport-endpoints-check"
)

// RulesetInput is what one host's data path is built from.
type RulesetInput struct {
	// Node is this host's name: externalTrafficPolicy: Local sends node port
	// traffic to the endpoints on it only.
	Node string
	// ClusterCIDR is the cluster's pod range: connections from outside it
	// to a Service IP are masqueraded, pod-to-pod traffic is not, and pod
	// traffic leaving it is masqueraded.
	ClusterCIDR netip.Prefix
	// ServiceCIDR is the Service IP range: traffic to an unallocated IP in
	// it is dropped, to an unserved port of an allocated one rejected.
	ServiceCIDR netip.Prefix
	// NodeIPs are this host's addresses where node ports answer.
	NodeIPs []netip.Addr
	// Services are the Services with their endpoints, from Resolve.
	Services []Service
}

// Ruleset is the content of kelpie's nftables table for one host, built
// deterministically from a RulesetInput. Text gives one transaction that
// replaces the table; Diff the transaction that turns one Ruleset into
// another.
type Ruleset struct {
	sets   map[string]*nftSet
	chains map[string]*nftChain
}

// nftSet is a set or a map.
type nftSet struct {
	kind  string            // "set" or "map"
	spec  string            // the declaration's body: "type ipv4_addr ; …"
	elems map[string]string // key → value ("" for a set)
}

// nftChain is a chain: a base chain has a hook spec.
type nftChain struct {
	spec  string // "type nat hook prerouting priority dstnat ; policy accept ;" or ""
	rules []string
}

// RulesetStats counts what a Ruleset programs, for metrics.
type RulesetStats struct {
	Sets, Chains, Rules, Elements int
}

// Stats counts the ruleset's objects.
func (r *Ruleset) Stats() RulesetStats {
	st := RulesetStats{Sets: len(r.sets), Chains: len(r.chains)}
	for _, c := range r.chains {
		st.Rules += len(c.rules)
	}
	for _, s := range r.sets {
		st.Elements += len(s.elems)
	}
	return st
}

// HasChain reports whether the ruleset has a chain of that name (false
// for a nil ruleset).
func (r *Ruleset) HasChain(name string) bool { return r != nil && r.chains[name] != nil }

// set declares a set or map.
func (r *Ruleset) set(kind, name, spec string) *nftSet {
	s := &nftSet{kind: kind, spec: spec, elems: map[string]string{}}
	r.sets[name] = s
	return s
}

// chain declares a chain (with a hook spec for a base chain).
func (r *Ruleset) chain(name, spec string) *nftChain {
	c := &nftChain{spec: spec}
	r.chains[name] = c
	return c
}

// add appends a rule, its words joined by spaces.
func (c *nftChain) add(words ...string) {
	c.rules = append(c.rules, strings.Join(words, " "))
}

// BuildRuleset builds the ruleset of one host. The shape is close to
// kube-proxy's nftables mode (see docs/networking.md): a verdict map from
// VIP . protocol . port to a chain per Service port, which picks an
// endpoint with numgen random and DNATs there through an anonymous map;
// node ports through a second map; sessionAffinity: ClientIP through an
// endpoint chain and a dynamic set per endpoint with the affinity timeout;
// masquerading by mark for connections that would otherwise not return
// through this host, a pod reaching itself through its Service by a set of
// endpoint address pairs. Only Services with affinity have endpoint
// chains: every chain of the table is in the cache nft reads before each
// transaction, so 10,000 endpoint chains would make every change slow.
//
// Headless Services, Services without an IP, ports that are neither TCP
// nor UDP and non-IPv4 addresses are left out.
func BuildRuleset(in RulesetInput) (*Ruleset, error) {
	if !in.ClusterCIDR.Addr().Is4() || !in.ServiceCIDR.Addr().Is4() {
		return nil, fmt.Errorf("build ruleset: cluster CIDR %s and service CIDR %s must be IPv4 prefixes", in.ClusterCIDR, in.ServiceCIDR)
	}
	eps := 0
	for i := range in.Services {
		for j := range in.Services[i].Ports {
			eps += len(in.Services[i].Ports[j].Endpoints)
		}
	}
	r := &Ruleset{sets: map[string]*nftSet{}, chains: make(map[string]*nftChain, 16+2*len(in.Services))}
	r.base(in)
	r.sets[setHairpin].elems = make(map[string]string, eps)
	r.sets[setClusterIPs].elems = make(map[string]string, len(in.Services))
	r.sets[mapServiceIPs].elems = make(map[string]string, len(in.Services))
	nodeIPs := r.sets[setNodePortIPs]
	for _, ip := range in.NodeIPs {
		if ip.Is4() {
			nodeIPs.elems[ip.String()] = ""
		}
	}
	for i := range in.Services {
		svc := &in.Services[i]
		if svc.Headless || !svc.ClusterIP.Is4() {
			continue
		}
		r.sets[setClusterIPs].elems[svc.ClusterIP.String()] = ""
		for j := range svc.Ports {
			r.servicePort(in, svc, &svc.Ports[j])
		}
	}
	return r, nil
}

// base adds the fixed sets, maps and chains.
func (r *Ruleset) base(in RulesetInput) {
	r.set("set", setClusterIPs, `type ipv4_addr ; comment "allocated Service IPs" ;`)
	r.set("set", setNodePortIPs, `type ipv4_addr ; comment "this host's addresses that take node port traffic" ;`)
	r.set("map", mapServiceIPs, `type ipv4_addr . inet_proto . inet_service : verdict ; comment "Service IP and port to the Service port's chain" ;`)
	r.set("map", mapServiceNodePorts, `type inet_proto . inet_service : verdict ; comment "node port to the Service port's external chain" ;`)
	r.set("map", mapNoEndpointSvcs, `type ipv4_addr . inet_proto . inet_service : verdict ; comment "Service ports without endpoints: reject" ;`)
	r.set("map", mapNoEndpointNPs, `type inet_proto . inet_service : verdict ; comment "node ports without endpoints: reject, or drop for Local" ;`)
	r.set("set", setHairpin, `type ipv4_addr . ipv4_addr ; comment "endpoint address twice: a pod that reached itself through a Service is masqueraded" ;`)

	mark := fmt.Sprintf("0x%x", MasqueradeMark)
	cluster := in.ClusterCIDR.String()
	r.chain("nat-prerouting", "type nat hook prerouting priority dstnat ; policy accept ;").add("jump", chainServices)
	r.chain("nat-output", "type nat hook output priority -100 ; policy accept ;").add("jump", chainServices)
	post := r.chain("nat-postrouting", "type nat hook postrouting priority srcnat ; policy accept ;")
	post.add("ct status dnat ip saddr . ip daddr", "@"+setHairpin, "jump", chainMarkMasq, `comment "hairpin"`)
	post.add("jump", chainMasquerading)
	post.add("ip saddr", cluster, "ip daddr != {", cluster+",", "224.0.0.0/4 }", "masquerade fully-random", `comment "pod traffic leaving the cluster"`)
	fwd := r.chain("filter-forward", "type filter hook forward priority filter ; policy accept ;")
	fwd.add("ct state new jump", chainSvcEPCheck)
	fwd.add("ct state new jump", chainClusterIPsCheck)
	inp := r.chain("filter-input", "type filter hook input priority filter ; policy accept ;")
	inp.add("ct state new jump", chainNPEPCheck)
	inp.add("ct state new jump", chainSvcEPCheck)
	out := r.chain("filter-output", "type filter hook output priority filter ; policy accept ;")
	out.add("ct state new jump", chainSvcEPCheck)
	out.add("ct state new jump", chainClusterIPsCheck)

	svcs := r.chain(chainServices, "")
	svcs.add("ip daddr . meta l4proto . th dport vmap", "@"+mapServiceIPs)
	svcs.add("ip daddr", "@"+setNodePortIPs, "meta l4proto . th dport vmap", "@"+mapServiceNodePorts)
	r.chain(chainMarkMasq, "").add("meta mark set meta mark |", mark)
	masq := r.chain(chainMasquerading, "")
	masq.add("meta mark &", mark, "== 0 return")
	masq.add("meta mark set meta mark ^", mark)
	masq.add("masquerade fully-random")
	r.chain(chainSvcEPCheck, "").add("ip daddr . meta l4proto . th dport vmap", "@"+mapNoEndpointSvcs)
	r.chain(chainNPEPCheck, "").add("ip daddr", "@"+setNodePortIPs, "meta l4proto . th dport vmap", "@"+mapNoEndpointNPs)
	check := r.chain(chainClusterIPsCheck, "")
	check.add("ip daddr", "@"+setClusterIPs, "reject", `comment "a port the Service does not have"`)
	check.add("ip daddr", in.ServiceCIDR.String(), "drop", `comment "an unallocated Service IP"`)
	r.chain(chainReject, "").add("reject")
	if hasLoadBalancers(in.Services) {
		r.lbBase()
	}
}

// servicePort adds the chains, sets and map elements of one Service port.
func (r *Ruleset) servicePort(in RulesetInput, svc *Service, p *Port) {
	var proto string
	switch p.Protocol {
	case corev1.ProtocolTCP, "":
		proto = "tcp"
	case corev1.ProtocolUDP:
		proto = "udp"
	default:
		return
	}
	base := svc.Key() + "/" + proto + "/" + strconv.Itoa(int(p.Port))
	vip := svc.ClusterIP.String()
	vipKey := vip + " . " + proto + " . " + strconv.Itoa(int(p.Port))
	npKey := proto + " . " + strconv.Itoa(int(p.NodePort))
	lbk := lbKey(svc, p, proto)
	r.lbFirewall(in, svc, base, lbk)
	if len(p.Endpoints) == 0 {
		r.sets[mapNoEndpointSvcs].elems[vipKey] = "goto " + chainReject
		if p.NodePort != 0 {
			r.sets[mapNoEndpointNPs].elems[npKey] = "goto " + chainReject
		}
		if lbk != "" {
			r.sets[mapNoEndpointLBs].elems[lbk] = "goto " + chainReject
		}
		return
	}
	svcChain := "service-" + base
	r.sets[mapServiceIPs].elems[vipKey] = "goto " + svcChain
	var local []Endpoint
	hairpin := r.sets[setHairpin].elems
	var key []byte // "IP . IP", one allocation per endpoint
	for _, ep := range p.Endpoints {
		key = ep.IP.AppendTo(key[:0])
		n := len(key)
		key = append(key, " . "...)
		key = append(key, key[:n]...)
		hairpin[string(key)] = ""
		if svc.AffinityTimeout > 0 {
			r.endpoint(base, proto, svc.AffinityTimeout, ep)
		}
		if ep.Node == in.Node {
			local = append(local, ep)
		}
	}
	c := r.chain(svcChain, "")
	c.add("ip daddr", vip, "ip saddr !=", in.ClusterCIDR.String(), "jump", chainMarkMasq)
	balance(c, base, proto, svc.AffinityTimeout, p.Endpoints)
	if p.NodePort == 0 && lbk == "" {
		return
	}
	ext := "external-" + base
	if p.NodePort != 0 {
		r.sets[mapServiceNodePorts].elems[npKey] = "goto " + ext
	}
	if lbk != "" {
		r.sets[mapServiceLBPorts].elems[lbk] = "goto " + ext
	}
	e := r.chain(ext, "")
	if !svc.ExternalLocal {
		e.add("jump", chainMarkMasq)
		e.add("goto", svcChain)
		return
	}
	// externalTrafficPolicy: Local keeps the client's address, so only this
	// host's endpoints can answer. Pods and this host itself are not
	// external: they take the cluster-wide chain.
	e.add("ip saddr", in.ClusterCIDR.String(), "goto", svcChain, `comment "pod traffic: all endpoints"`)
	e.add("fib saddr type local jump", chainMarkMasq, `comment "this host's traffic: masquerade"`)
	e.add("fib saddr type local goto", svcChain, `comment "this host's traffic: all endpoints"`)
	if len(local) == 0 {
		if p.NodePort != 0 {
			r.sets[mapNoEndpointNPs].elems[npKey] = "drop"
		}
		if lbk != "" {
			r.sets[mapNoEndpointLBs].elems[lbk] = "drop"
		}
		return
	}
	lc := "local-" + base
	e.add("goto", lc)
	balance(r.chain(lc, ""), base, proto, svc.AffinityTimeout, local)
}

// endpointChain and affinitySet name an endpoint's chain and set.
func endpointChain(base string, ep Endpoint) string {
	return "endpoint-" + base + "__" + ep.IP.String() + "/" + strconv.Itoa(int(ep.Port))
}

func affinitySet(base string, ep Endpoint) string {
	return "affinity-" + base + "__" + ep.IP.String() + "/" + strconv.Itoa(int(ep.Port))
}

// endpoint adds the chain and affinity set of one endpoint of a Service
// with affinity.
func (r *Ruleset) endpoint(base, proto string, affinity int32, ep Endpoint) {
	name := endpointChain(base, ep)
	if r.chains[name] != nil {
		return
	}
	c := r.chain(name, "")
	set := affinitySet(base, ep)
	r.set("set", set, fmt.Sprintf("type ipv4_addr ; flags dynamic,timeout ; timeout %ds ;", affinity))
	c.add("update", "@"+set, "{ ip saddr }")
	c.add("meta l4proto", proto, "dnat to", ep.IP.String()+":"+strconv.Itoa(int(ep.Port)))
}

// balance adds to c the rules that pick one of eps: with affinity, the
// endpoint chain a client has affinity to, else one at random; without,
// a DNAT to an endpoint picked at random, in the chain itself.
func balance(c *nftChain, base, proto string, affinity int32, eps []Endpoint) {
	var b strings.Builder
	if affinity > 0 {
		for _, ep := range eps {
			c.add("ip saddr", "@"+affinitySet(base, ep), "goto", endpointChain(base, ep))
		}
		for i, ep := range eps {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%d : goto %s", i, endpointChain(base, ep))
		}
		c.add("numgen random mod", strconv.Itoa(len(eps)), "vmap {", b.String(), "}")
		return
	}
	if len(eps) == 1 {
		c.add("meta l4proto", proto, "dnat to", eps[0].IP.String()+":"+strconv.Itoa(int(eps[0].Port)))
		return
	}
	// The rule that names every endpoint, written without fmt: every
	// change rebuilds it for every Service (issue 13's 10 ms).
	buf := make([]byte, 0, 64+len(eps)*28)
	buf = append(buf, "meta l4proto "...)
	buf = append(buf, proto...)
	buf = append(buf, " dnat ip to numgen random mod "...)
	buf = strconv.AppendInt(buf, int64(len(eps)), 10)
	buf = append(buf, " map { "...)
	for i, ep := range eps {
		if i > 0 {
			buf = append(buf, ", "...)
		}
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, " : "...)
		buf = ep.IP.AppendTo(buf)
		buf = append(buf, " . "...)
		buf = strconv.AppendInt(buf, int64(ep.Port), 10)
	}
	buf = append(buf, " }"...)
	c.rules = append(c.rules, string(buf))
}
