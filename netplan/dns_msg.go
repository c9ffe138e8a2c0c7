package netplan

import (
	"github.com/miekg/dns"
)

// Reply answers a DNS request from a pod of namespace clientNS, the pure
// part of the agent's DNS handler. forward is true when the name is not a
// cluster name: the handler then sends req to the host's resolvers and
// returns their answer. The handler truncates the reply to the client's
// buffer size (resp.Truncate) before writing it on UDP.
func (n *Names) Reply(req *dns.Msg, clientNS string) (resp *dns.Msg, forward bool) {
	resp = new(dns.Msg)
	if req.Opcode != dns.OpcodeQuery {
		return resp.SetRcode(req, dns.RcodeNotImplemented), false
	}
	if len(req.Question) != 1 {
		return resp.SetRcode(req, dns.RcodeFormatError), false
	}
	q := req.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return nil, true
	}
	a := n.Lookup(q.Name, q.Qtype, clientNS)
	if a.Result == NotOurs {
		return nil, true
	}
	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = true
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(opt.UDPSize(), false)
	}
	switch a.Result {
	case NXDomain:
		resp.Rcode = dns.RcodeNameError
		resp.Ns = []dns.RR{n.soa()}
	case NoData:
		resp.Ns = []dns.RR{n.soa()}
	case Found:
		for _, ip := range a.A {
			resp.Answer = append(resp.Answer, &dns.A{Hdr: header(q.Name, dns.TypeA), A: ip.AsSlice()})
		}
		for _, s := range a.SRV {
			resp.Answer = append(resp.Answer, &dns.SRV{Hdr: header(q.Name, dns.TypeSRV), Priority: s.Priority, Weight: s.Weight, Port: s.Port, Target: s.Target})
		}
		for _, e := range a.Extra {
			resp.Extra = append(resp.Extra, &dns.A{Hdr: header(e.Name, dns.TypeA), A: e.Addr.AsSlice()})
		}
	}
	return resp, false
}

// header is the header of a record of the cluster zone.
func header(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: DNSTTL}
}

// soa is the cluster zone's SOA record, for negative answers (its minimum
// TTL bounds how long resolvers cache them).
func (n *Names) soa() *dns.SOA {
	zone := dns.Fqdn(n.domain)
	return &dns.SOA{Hdr: header(zone, dns.TypeSOA), Ns: "ns.dns." + zone, Mbox: "hostmaster." + zone,
		Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: DNSTTL}
}
