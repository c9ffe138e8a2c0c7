package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// forward sends req to the host's resolvers and returns the answer to give
// the client: the first upstream's answer that is not SERVFAIL or REFUSED
// (those try the next upstream, as glibc does), else the last such
// answer, else SERVFAIL. It asks over the client's protocol, as a stub
// forwarder does: a truncated UDP answer goes back truncated, and the
// client asks again over TCP. A query beyond MaxForwards in flight is
// REFUSED at once.
func (s *Server) forward(req *dns.Msg, tcp bool) *dns.Msg {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		s.count(ResultOverload)
		return new(dns.Msg).SetRcode(req, dns.RcodeRefused)
	}
	ups, err := s.upstreams.get()
	if err == nil && len(ups) == 0 {
		err = errors.New("no upstream resolvers")
	}
	var last *dns.Msg
	for _, u := range ups {
		r, xerr := s.exchange(req, u, tcp)
		if xerr != nil {
			err = fmt.Errorf("upstream %s: %w", u, xerr)
			continue
		}
		if r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
			last = r
			continue
		}
		s.count(ResultForwarded)
		return r
	}
	if last != nil {
		s.count(ResultForwarded)
		return last
	}
	s.count(ResultServFail)
	s.cfg.Log.Debug("dns forward failed", "name", req.Question[0].Name, "err", err)
	return new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
}

// exchange asks one upstream, with an ID of its own (the client's may be
// guessable) and a new socket (a random source port), and checks that the
// answer is to the question asked.
func (s *Server) exchange(req *dns.Msg, upstream string, tcp bool) (*dns.Msg, error) {
	m := req.Copy()
	m.Id = dns.Id()
	c := &dns.Client{Net: "udp", Timeout: s.cfg.ForwardTimeout}
	if tcp {
		c.Net = "tcp"
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ForwardTimeout)
	defer cancel()
	r, _, err := c.ExchangeContext(ctx, m, upstream)
	if err != nil {
		return nil, err
	}
	if len(r.Question) != 1 || len(req.Question) != 1 || !strings.EqualFold(r.Question[0].Name, req.Question[0].Name) ||
		r.Question[0].Qtype != req.Question[0].Qtype || r.Question[0].Qclass != req.Question[0].Qclass {
		return nil, errors.New("answer to another question")
	}
	r.Id = req.Id
	return r, nil
}
