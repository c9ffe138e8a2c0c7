package netplan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// dnsServices is a small cluster: a ClusterIP Service with named ports, a
// headless one with a pod that has a hostname, and one without endpoints.
func dnsServices() []Service {
	return []Service{
		{Namespace: "default", Name: "web", ClusterIP: ip("10.96.10.1"), Ports: []Port{
			{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, Endpoints: []Endpoint{ep("10.244.0.5", 8080, "n1")}},
			{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, Endpoints: []Endpoint{ep("10.244.0.5", 5353, "n1")}}}},
		{Namespace: "shop", Name: "db", Headless: true, Ports: []Port{
			{Name: "pg", Protocol: corev1.ProtocolTCP, Port: 5432, Endpoints: []Endpoint{
				{IP: ip("10.244.1.7"), Port: 5432, Hostname: "10-244-1-7"}, {IP: ip("10.244.0.9"), Port: 5433, Hostname: "db-0"}}}}},
		{Namespace: "shop", Name: "empty", Headless: true, Ports: []Port{{Protocol: corev1.ProtocolTCP, Port: 80}}},
		{Namespace: "shop", Name: "web", ClusterIP: ip("10.96.10.2"), Ports: []Port{{Protocol: corev1.ProtocolTCP, Port: 80}}},
	}
}

// answerOf renders an Answer on one line.
func answerOf(a Answer) string {
	var parts []string
	parts = append(parts, a.Result.String())
	for _, ip := range a.A {
		parts = append(parts, ip.String())
	}
	for _, s := range a.SRV {
		parts = append(parts, fmt.Sprintf("%d/%d/%d/%s", s.Priority, s.Weight, s.Port, s.Target))
	}
	for _, e := range a.Extra {
		parts = append(parts, "+"+e.Name+"="+e.Addr.String())
	}
	return strings.Join(parts, " ")
}

func TestNamesLookup(t *testing.T) {
	n := NewNames(dnsServices(), "cluster.local")
	tests := []struct {
		q     string
		qtype uint16
		ns    string
		want  string
	}{
		{"web.default.svc.cluster.local.", TypeA, "", "found 10.96.10.1"},
		{"WEB.Default.SVC.cluster.LOCAL", TypeA, "", "found 10.96.10.1"},
		{"web.default.svc", TypeA, "", "found 10.96.10.1"},
		{"web.default", TypeA, "", "found 10.96.10.1"},
		{"web", TypeA, "", "found 10.96.10.1"},
		{"web", TypeA, "shop", "found 10.96.10.2"},
		{"web.", TypeA, "default", "found 10.96.10.1"},
		{"db", TypeA, "default", "not ours"},
		{"example.com", TypeA, "", "not ours"},
		{"www.example.com.", TypeA, "", "not ours"},
		{"nope.default.svc", TypeA, "", "not ours"},
		{"web.default.svc.cluster.local", TypeAAAA, "", "no data"},
		{"web.default.svc.cluster.local", TypeANY, "", "found 10.96.10.1"},
		{"nope.default.svc.cluster.local", TypeA, "", "NXDOMAIN"},
		{"default.svc.cluster.local", TypeA, "", "no data"},
		{"nowhere.svc.cluster.local", TypeA, "", "NXDOMAIN"},
		{"svc.cluster.local", TypeA, "", "no data"},
		{"cluster.local", TypeA, "", "no data"},
		{"10-244-0-5.default.pod.cluster.local", TypeA, "", "NXDOMAIN"},
		{"db.shop.svc.cluster.local", TypeA, "", "found 10.244.0.9 10.244.1.7"},
		{"empty.shop.svc.cluster.local", TypeA, "", "no data"},
		{"db-0.db.shop.svc.cluster.local", TypeA, "", "found 10.244.0.9"},
		{"10-244-1-7.db.shop.svc.cluster.local", TypeA, "", "found 10.244.1.7"},
		{"db-1.db.shop.svc.cluster.local", TypeA, "", "NXDOMAIN"},
		{"db-0.db.shop.svc.cluster.local", TypeAAAA, "", "no data"},
		{"x.web.default.svc.cluster.local", TypeA, "", "NXDOMAIN"},
		{"_http._tcp.web.default.svc.cluster.local", TypeSRV, "", "found 0/100/80/web.default.svc.cluster.local. +web.default.svc.cluster.local.=10.96.10.1"},
		{"_dns._udp.web.default.svc.cluster.local", TypeSRV, "", "found 0/100/53/web.default.svc.cluster.local. +web.default.svc.cluster.local.=10.96.10.1"},
		{"_dns._tcp.web.default.svc.cluster.local", TypeSRV, "", "NXDOMAIN"},
		{"_http._tcp.web.default.svc.cluster.local", TypeA, "", "no data"},
		{"_tcp.web.default.svc.cluster.local", TypeSRV, "", "no data"},
		{"_pg._tcp.db.shop.svc.cluster.local", TypeSRV, "",
			"found 0/50/5432/10-244-1-7.db.shop.svc.cluster.local. 0/50/5433/db-0.db.shop.svc.cluster.local. +10-244-1-7.db.shop.svc.cluster.local.=10.244.1.7 +db-0.db.shop.svc.cluster.local.=10.244.0.9"},
		{"web.default.svc.cluster.local", TypeSRV, "", "found 0/100/80/web.default.svc.cluster.local. 0/100/53/web.default.svc.cluster.local. +web.default.svc.cluster.local.=10.96.10.1 +web.default.svc.cluster.local.=10.96.10.1"},
		{"web.shop.svc.cluster.local", TypeSRV, "", "no data"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d/%s", tt.q, tt.qtype, tt.ns), func(t *testing.T) {
			if got := answerOf(n.Lookup(tt.q, tt.qtype, tt.ns)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestNamesOtherDomain(t *testing.T) {
	n := NewNames(dnsServices(), "Corp.Example.")
	if got := answerOf(n.Lookup("web.default.svc.corp.example.", TypeA, "")); got != "found 10.96.10.1" {
		t.Errorf("got %s", got)
	}
	if got := answerOf(n.Lookup("web.default.svc.cluster.local", TypeA, "")); got != "not ours" {
		t.Errorf("another domain: got %s", got)
	}
}

func TestNamesReply(t *testing.T) {
	n := NewNames(dnsServices(), "cluster.local")
	query := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.SetEdns0(1232, false)
		return m
	}
	tests := []struct {
		name    string
		req     *dns.Msg
		forward bool
		rcode   int
		answer  []string
		extra   int
		ns      int
	}{
		{name: "A", req: query("Web.default.svc.cluster.local.", dns.TypeA), rcode: dns.RcodeSuccess,
			answer: []string{"Web.default.svc.cluster.local.\t5\tIN\tA\t10.96.10.1"}, extra: 1},
		{name: "SRV with targets", req: query("_pg._tcp.db.shop.svc.cluster.local.", dns.TypeSRV), rcode: dns.RcodeSuccess,
			answer: []string{"_pg._tcp.db.shop.svc.cluster.local.\t5\tIN\tSRV\t0 50 5432 10-244-1-7.db.shop.svc.cluster.local.",
				"_pg._tcp.db.shop.svc.cluster.local.\t5\tIN\tSRV\t0 50 5433 db-0.db.shop.svc.cluster.local."}, extra: 3},
		{name: "NXDOMAIN with the SOA", req: query("nope.default.svc.cluster.local.", dns.TypeA), rcode: dns.RcodeNameError, ns: 1, extra: 1},
		{name: "no data with the SOA", req: query("web.default.svc.cluster.local.", dns.TypeAAAA), rcode: dns.RcodeSuccess, ns: 1, extra: 1},
		{name: "forwarded", req: query("example.com.", dns.TypeA), forward: true},
		{name: "two questions", req: func() *dns.Msg {
			m := query("a.", dns.TypeA)
			m.Question = append(m.Question, m.Question[0])
			return m
		}(), rcode: dns.RcodeFormatError},
		{name: "not a query", req: func() *dns.Msg { m := query("a.", dns.TypeA); m.Opcode = dns.OpcodeUpdate; return m }(), rcode: dns.RcodeNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, forward := n.Reply(tt.req, "default")
			if forward != tt.forward {
				t.Fatalf("forward = %v", forward)
			}
			if forward {
				if resp != nil {
					t.Fatal("a forwarded query got a reply too")
				}
				return
			}
			if resp.Rcode != tt.rcode || resp.Id != tt.req.Id || !resp.Response {
				t.Fatalf("rcode %s id %d, want %s", dns.RcodeToString[resp.Rcode], resp.Id, dns.RcodeToString[tt.rcode])
			}
			var got []string
			for _, rr := range resp.Answer {
				got = append(got, rr.String())
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.answer) || len(resp.Extra) != tt.extra || len(resp.Ns) != tt.ns {
				t.Errorf("answer %q extra %v ns %v", got, resp.Extra, resp.Ns)
			}
			if _, err := resp.Pack(); err != nil {
				t.Errorf("the reply does not pack: %v", err)
			}
			if tt.ns > 0 && resp.Ns[0].(*dns.SOA).Minttl != DNSTTL {
				t.Errorf("SOA %v", resp.Ns[0])
			}
		})
	}
}

func TestNamesFromResolve(t *testing.T) {
	// The agent's path: manifests and gossiped pods through Resolve, then Names.
	svcs := []*corev1.Service{service("shop/db", headless())}
	pods := []Pod{pod("shop/db-1", "db", "n2", "10.244.1.4"), pod("shop/db-0", "db", "n1", "10.244.0.4"), pod("shop/db-2", "db", "n3", "10.244.2.4")}
	names := NewNames(Resolve(svcs, nil, pods, []Node{alive("n1"), alive("n2"), dead("n3", t0)}), DefaultClusterDomain)
	if got := answerOf(names.Lookup("db.shop.svc.cluster.local", TypeA, "")); got != "found 10.244.0.4 10.244.1.4" {
		t.Errorf("headless pods on live hosts: got %s", got)
	}
	if got := answerOf(names.Lookup("10-244-1-4.db.shop.svc.cluster.local", TypeA, "")); got != "found 10.244.1.4" {
		t.Errorf("a pod by its dashed IP: got %s", got)
	}
}
