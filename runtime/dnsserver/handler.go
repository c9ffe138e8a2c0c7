package dnsserver

import (
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// ServeDNS answers one query: a cluster name from the current Names, any
// other name through the host's resolvers. It implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	_, tcp := w.LocalAddr().(*net.TCPAddr)
	src := addrOf(w.RemoteAddr())
	if !s.allowed(src) {
		s.count(ResultRefused)
		if tcp { // a TCP source cannot be forged; a UDP answer could reflect
			s.write(w, req, new(dns.Msg).SetRcode(req, dns.RcodeRefused), tcp)
		}
		return
	}
	names := s.names.Load()
	if names == nil {
		s.count(ResultServFail)
		s.write(w, req, new(dns.Msg).SetRcode(req, dns.RcodeServerFailure), tcp)
		return
	}
	ns := ""
	if s.cfg.Namespace != nil {
		ns = s.cfg.Namespace(src)
	}
	if ns == "" {
		ns = "default"
	}
	resp, forward := names.Reply(req, ns)
	if !forward {
		switch resp.Rcode {
		case dns.RcodeSuccess:
			s.count(ResultCluster)
		case dns.RcodeNameError:
			s.count(ResultNXDomain)
		default:
			s.count(ResultInvalid)
		}
		s.write(w, req, resp, tcp)
		return
	}
	s.write(w, req, s.forward(req, tcp), tcp)
}

// allowed reports whether src is in the client ranges.
func (s *Server) allowed(src netip.Addr) bool {
	for _, p := range s.cfg.Clients {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// write sends resp, cut to the client's buffer on UDP (Truncate sets TC
// when records had to go, and the client asks again over TCP).
func (s *Server) write(w dns.ResponseWriter, req, resp *dns.Msg, tcp bool) {
	if !tcp {
		resp.Truncate(udpSize(req))
	}
	resp.Compress = true
	_ = w.WriteMsg(resp) // the client is gone, or its buffer full: nothing to do
}

// udpSize is the largest UDP answer the client takes: its EDNS0 buffer
// size, else 512 bytes.
func udpSize(req *dns.Msg) int {
	if opt := req.IsEdns0(); opt != nil {
		return max(int(opt.UDPSize()), dns.MinMsgSize)
	}
	return dns.MinMsgSize
}

// addrOf returns the IP address of a UDP or TCP address (invalid for
// anything else).
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}
