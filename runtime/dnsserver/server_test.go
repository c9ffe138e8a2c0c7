package dnsserver

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/netplan"
)

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// services is a small cluster: a ClusterIP Service with a named port in
// "shop", a headless one with two pods, and a headless one with 100 pods
// (an answer too big for 512 bytes).
func services() []netplan.Service {
	big := netplan.Port{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}
	for i := range 100 {
		ip := netip.AddrFrom4([4]byte{10, 244, 2, byte(i + 1)})
		big.Endpoints = append(big.Endpoints, netplan.Endpoint{IP: ip, Port: 80, Hostname: strings.ReplaceAll(ip.String(), ".", "-")})
	}
	return []netplan.Service{
		{Namespace: "shop", Name: "web", ClusterIP: netip.MustParseAddr("10.96.0.10"), Ports: []netplan.Port{
			{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, Endpoints: []netplan.Endpoint{{IP: netip.MustParseAddr("10.244.0.5"), Port: 8080}}}}},
		{Namespace: "shop", Name: "db", Headless: true, Ports: []netplan.Port{
			{Name: "pg", Protocol: corev1.ProtocolTCP, Port: 5432, Endpoints: []netplan.Endpoint{
				{IP: netip.MustParseAddr("10.244.1.7"), Port: 5432, Hostname: "10-244-1-7"},
				{IP: netip.MustParseAddr("10.244.0.9"), Port: 5432, Hostname: "db-0"}}}}},
		{Namespace: "default", Name: "big", Headless: true, Ports: []netplan.Port{big}},
	}
}

// upstream is a fake resolver on a loopback port, UDP and TCP: it answers
// A queries for NAME.example. with 192.0.2.1, "big.example." with 100
// addresses (truncated on UDP, as a real server does), and NXDOMAIN for
// anything else. It counts the queries it gets by protocol.
type upstream struct {
	addr string
	mu   sync.Mutex
	seen map[string]int // "udp"/"tcp" → queries
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{seen: map[string]int{}}
	pc, l := listenPair(t)
	u.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		_, tcp := w.LocalAddr().(*net.TCPAddr)
		u.mu.Lock()
		u.seen[map[bool]string{false: "udp", true: "tcp"}[tcp]]++
		u.mu.Unlock()
		m := new(dns.Msg).SetReply(req)
		q := req.Question[0]
		switch {
		case q.Name == "big.example.":
			for i := range 100 {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A: net.IPv4(198, 51, 100, byte(i+1))})
			}
		case strings.HasSuffix(q.Name, ".example.") && q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(192, 0, 2, 1)})
		default:
			m.Rcode = dns.RcodeNameError
		}
		if !tcp {
			m.Truncate(udpSize(req))
		}
		_ = w.WriteMsg(m)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return u
}

// queries returns how many queries the upstream got over proto.
func (u *upstream) queries(proto string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[proto]
}

// listenPair binds a free port of 127.0.0.1 for UDP and TCP.
func listenPair(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	pc, l, err := listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	return pc, l
}

// deadAddr is a loopback address and port where nothing answers.
func deadAddr(t *testing.T) string {
	t.Helper()
	pc, l := listenPair(t)
	addr := pc.LocalAddr().String()
	pc.Close()
	l.Close()
	return addr
}

// startServer starts a server on 127.0.0.1 with the test services, the
// client namespace "shop" for every client, and cfg's other fields.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Clients == nil {
		cfg.Clients = []netip.Prefix{loopback}
	}
	if cfg.Namespace == nil {
		cfg.Namespace = func(netip.Addr) string { return "shop" }
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.SetNames(netplan.NewNames(services(), "cluster.local"))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// ask sends one query over proto ("udp" or "tcp").
func ask(t *testing.T, s *Server, proto, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: proto, Timeout: 5 * time.Second}
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, s.Addr().String())
	if err != nil {
		t.Fatalf("%s %s %s: %v", proto, name, dns.TypeToString[qtype], err)
	}
	return r
}

// records renders the answer section, one "TYPE value" a record.
func records(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, "A "+rr.A.String())
		case *dns.SRV:
			out = append(out, fmt.Sprintf("SRV %d %s", rr.Port, rr.Target))
		case *dns.SOA:
			out = append(out, "SOA "+rr.Hdr.Name)
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func TestServerAnswers(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, Config{Upstreams: []string{up.addr}})
	for _, proto := range []string{"udp", "tcp"} {
		for _, tc := range []struct {
			name  string
			qtype uint16
			rcode int
			want  string // the answer section
			ns    string // the authority section
			extra string // the additional section
		}{
			{"web.shop.svc.cluster.local", dns.TypeA, dns.RcodeSuccess, "A 10.96.0.10", "", ""},
			{"web", dns.TypeA, dns.RcodeSuccess, "A 10.96.0.10", "", ""}, // the client's namespace
			{"web.shop", dns.TypeA, dns.RcodeSuccess, "A 10.96.0.10", "", ""},
			{"db.shop.svc.cluster.local", dns.TypeA, dns.RcodeSuccess, "A 10.244.0.9,A 10.244.1.7", "", ""},
			{"db-0.db.shop.svc.cluster.local", dns.TypeA, dns.RcodeSuccess, "A 10.244.0.9", "", ""},
			{"_http._tcp.web.shop.svc.cluster.local", dns.TypeSRV, dns.RcodeSuccess, "SRV 80 web.shop.svc.cluster.local.", "", "A 10.96.0.10"},
			{"nope.shop.svc.cluster.local", dns.TypeA, dns.RcodeNameError, "", "SOA cluster.local.", ""},
			{"www.example", dns.TypeA, dns.RcodeSuccess, "A 192.0.2.1", "", ""},
			{"nothing.test", dns.TypeA, dns.RcodeNameError, "", "", ""},
		} {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				r := ask(t, s, proto, tc.name, tc.qtype)
				if r.Rcode != tc.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				if got := strings.Join(records(r.Answer), ","); got != tc.want {
					t.Errorf("answer %q, want %q", got, tc.want)
				}
				if got := strings.Join(records(r.Ns), ","); got != tc.ns {
					t.Errorf("authority %q, want %q", got, tc.ns)
				}
				if got := strings.Join(records(r.Extra), ","); got != tc.extra {
					t.Errorf("additional %q, want %q", got, tc.extra)
				}
			})
		}
	}
	want := map[string]uint64{"cluster": 12, "nxdomain": 2, "forwarded": 4, "servfail": 0, "refused": 0, "overload": 0, "invalid": 0}
	if got := s.Queries(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("query counts %v, want %v", got, want)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	if n, err := testutil.GatherAndCount(reg, "kelpie_dns_queries_total"); err != nil || n != 7 {
		t.Errorf("kelpie_dns_queries_total series: %d, %v; want 7", n, err)
	}
	if v := gathered(t, reg, "forwarded"); v != 4 {
		t.Errorf("kelpie_dns_queries_total{result=\"forwarded\"} = %v, want 4", v)
	}
}

// gathered returns kelpie_dns_queries_total{result} as reg exposes it.
func gathered(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			if mf.GetName() == "kelpie_dns_queries_total" && m.Label[0].GetValue() == result {
				return m.Counter.GetValue()
			}
		}
	}
	t.Fatalf("no kelpie_dns_queries_total{result=%q}", result)
	return 0
}

// TestServerTruncatesAndTCP checks large answers: over UDP they come back
// truncated (TC), and the client's retry over TCP gets them whole, for a
// cluster name and a forwarded one (asked upstream over TCP too).
func TestServerTruncatesAndTCP(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, Config{Upstreams: []string{up.addr}})
	for _, name := range []string{"big.default.svc.cluster.local", "big.example"} {
		r := ask(t, s, "udp", name, dns.TypeA)
		if !r.Truncated || len(r.Answer) >= 100 {
			t.Errorf("%s over UDP: TC %v with %d records, want a truncated answer", name, r.Truncated, len(r.Answer))
		}
		r.Compress = true // as it came: Len measures the uncompressed message otherwise
		if r.Len() > dns.MinMsgSize {
			t.Errorf("%s over UDP: %d bytes, more than the client's 512", name, r.Len())
		}
		r = ask(t, s, "tcp", name, dns.TypeA)
		if r.Truncated || len(r.Answer) != 100 {
			t.Errorf("%s over TCP: TC %v with %d records, want all 100", name, r.Truncated, len(r.Answer))
		}
	}
	if up.queries("tcp") != 1 {
		t.Errorf("upstream got %d TCP queries, want 1 (the client's retry)", up.queries("tcp"))
	}
	// The client's EDNS0 buffer size is honoured.
	m := new(dns.Msg).SetQuestion("big.default.svc.cluster.local.", dns.TypeA)
	m.SetEdns0(4096, false)
	r, _, err := (&dns.Client{Net: "udp", Timeout: 5 * time.Second}).Exchange(m, s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != 100 {
		t.Errorf("with a 4096-byte buffer: TC %v with %d records, want all 100", r.Truncated, len(r.Answer))
	}
}

func TestServerUpstreamDown(t *testing.T) {
	s := startServer(t, Config{Upstreams: []string{deadAddr(t)}, ForwardTimeout: 300 * time.Millisecond})
	for _, proto := range []string{"udp", "tcp"} {
		if r := ask(t, s, proto, "www.example", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s with the upstream down: %s, want SERVFAIL", proto, dns.RcodeToString[r.Rcode])
		}
	}
	if r := ask(t, s, "udp", "web.shop.svc.cluster.local", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Errorf("a cluster name with the upstream down: %s", dns.RcodeToString[r.Rcode])
	}
	if n := s.Queries()["servfail"]; n != 2 {
		t.Errorf("servfail count %d, want 2", n)
	}
}

func TestServerNextUpstream(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, Config{Upstreams: []string{deadAddr(t), up.addr}, ForwardTimeout: 300 * time.Millisecond})
	if r := ask(t, s, "udp", "www.example", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("first upstream down, second up: %s with %d records", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
}

func TestServerRefusesOtherClients(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, Config{Upstreams: []string{up.addr}, Clients: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}})
	if r := ask(t, s, "tcp", "www.example", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("a client outside the ranges over TCP: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	if r, _, err := c.Exchange(new(dns.Msg).SetQuestion("www.example.", dns.TypeA), s.Addr().String()); err == nil {
		t.Errorf("a client outside the ranges over UDP got an answer (%s): it must be dropped", dns.RcodeToString[r.Rcode])
	}
	if up.queries("udp")+up.queries("tcp") != 0 {
		t.Error("a refused client's query was forwarded")
	}
	if n := s.Queries()["refused"]; n != 2 {
		t.Errorf("refused count %d, want 2", n)
	}
}

func TestServerOverload(t *testing.T) {
	// An upstream that never answers holds the only forward slot.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	s := startServer(t, Config{Upstreams: []string{pc.LocalAddr().String()}, MaxForwards: 1, ForwardTimeout: 3 * time.Second})
	done := make(chan *dns.Msg)
	go func() {
		r, _, _ := (&dns.Client{Net: "udp", Timeout: 5 * time.Second}).Exchange(new(dns.Msg).SetQuestion("slow.example.", dns.TypeA), s.Addr().String())
		done <- r
	}()
	testenv.Eventually(t, 5*time.Second, "one forward in flight", func() bool { return len(s.sem) == 1 })
	if r := ask(t, s, "udp", "www.example", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("a forward beyond MaxForwards: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if r := ask(t, s, "udp", "web.shop.svc.cluster.local", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Errorf("a cluster name while forwards are full: %s", dns.RcodeToString[r.Rcode])
	}
	if n := s.Queries()["overload"]; n != 1 {
		t.Errorf("overload count %d, want 1", n)
	}
	if r := <-done; r == nil || r.Rcode != dns.RcodeServerFailure {
		t.Errorf("the slow forward: %v, want SERVFAIL after the timeout", r)
	}
}

func TestServerNotReadyAndNamesSwap(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0", Clients: []netip.Prefix{loopback}, Upstreams: []string{deadAddr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if r := ask(t, s, "udp", "web.shop.svc.cluster.local", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("before SetNames: %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	s.SetNames(netplan.NewNames(services(), "cluster.local"))
	if r := ask(t, s, "udp", "web.default.svc.cluster.local", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("web.default.svc.cluster.local (no such Service): %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	if r := ask(t, s, "udp", "web.shop", dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("web.shop after SetNames: %v", r.Answer)
	}
	s.SetNames(netplan.NewNames(nil, "cluster.local"))
	if r := ask(t, s, "udp", "web.shop.svc.cluster.local", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("after the Service went: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
}

func TestUpstreamsFromResolvConf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	write := func(s string) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil { // as resolvconf and DHCP clients replace it
			t.Fatal(err)
		}
	}
	write("# comment\nsearch lan\nnameserver 10.0.0.2\nnameserver 10.244.3.1\nnameserver fe80::1%eth0\nnameserver nonsense\noptions ndots:1\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n")
	u := newUpstreams(path, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	u.self = netip.MustParseAddrPort("10.244.3.1:53")
	got, err := u.get()
	if err != nil {
		t.Fatal(err)
	}
	if want := "[10.0.0.2:53 [fe80::1%eth0]:53 10.0.0.3:53]"; fmt.Sprint(got) != want {
		t.Errorf("upstreams %v, want %s (not ourselves, no bad addresses, three at most)", got, want)
	}
	write("nameserver 192.0.2.53\n")
	if got, _ := u.get(); fmt.Sprint(got) != "[192.0.2.53:53]" {
		t.Errorf("after the file changed: %v", got)
	}
	os.Remove(path)
	if got, err := u.get(); err == nil || len(got) != 0 {
		t.Errorf("without the file: %v, %v; want an error", got, err)
	}
}

func TestConfigValidate(t *testing.T) {
	lo := []netip.Prefix{loopback}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Addr: "0.0.0.0:53", Clients: lo}, "gateway"},
		{Config{Addr: "10.244.0.1", Clients: lo}, "Addr"},
		{Config{Addr: "10.244.0.1:53"}, "Clients"},
		{Config{Addr: "10.244.0.1:53", Clients: lo, Upstreams: []string{"8.8.8.8"}}, "Upstreams"},
		{Config{Addr: "10.244.0.1:53", Clients: lo, MaxForwards: -1}, "negative"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}

// TestServerFreeBind starts a server on an address no interface has yet,
// as the agent does before the first pod gives the bridge its gateway.
func TestServerFreeBind(t *testing.T) {
	addr := "192.0.2.53:0" // TEST-NET-1: on no interface
	s, err := New(Config{Addr: addr, Clients: []netip.Prefix{loopback}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		s.Close()
		t.Fatalf("Start on %s without FreeBind succeeded: is the address on an interface here?", addr)
	}
	s, err = New(Config{Addr: addr, Clients: []netip.Prefix{loopback}, FreeBind: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start with FreeBind: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}
