package nft

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/netplan"
)

// TestConntrackDeleteStaleUDP makes real UDP flows through a Service IP to
// both endpoints, removes one endpoint, and checks that exactly the flows
// NATed to it are deleted.
func TestConntrackDeleteStaleUDP(t *testing.T) {
	ns := testNetns(t)
	serveUDP(t, ns, ep1, 5353)
	serveUDP(t, ns, ep2, 5353)
	l, err := New(Config{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	old := []netplan.Service{dns(ep1, ep2), web(ep1)}
	if err := l.Load(context.Background(), ruleset(t, old...)); err != nil {
		t.Fatal(err)
	}
	vip := netip.AddrPortFrom(dnsVIP, 53)
	answers := map[string]int{}
	testenv.Eventually(t, 10*time.Second, "UDP flows to both endpoints", func() bool {
		answers[sendUDP(t, ns, vip)]++
		return answers[ep1.String()] > 0 && answers[ep2.String()] > 0
	})
	before := flowsTo(t, ns, vip)
	if before[ep1] == 0 || before[ep2] == 0 {
		t.Fatalf("conntrack flows to %s by endpoint: %v, want some to each (answers %v)", vip, before, answers)
	}

	next := []netplan.Service{dns(ep1), web(ep1)}
	if err := l.Apply(context.Background(), ruleset(t, next...)); err != nil {
		t.Fatal(err)
	}
	stale := netplan.StaleUDP(old, next)
	n, err := Conntrack{NetNS: ns}.DeleteStaleUDP(stale)
	if err != nil {
		t.Fatal(err)
	}
	after := flowsTo(t, ns, vip)
	if n != before[ep2] || after[ep2] != 0 || after[ep1] != before[ep1] {
		t.Errorf("stale flows %v: deleted %d; flows by endpoint before %v, after %v; want the %d to %s gone and the others kept",
			stale, n, before, after, before[ep2], ep2)
	}
	if n, err := (Conntrack{NetNS: ns}).DeleteStaleUDP(nil); n != 0 || err != nil {
		t.Errorf("no stale flows: %d, %v", n, err)
	}
}

// flowsTo counts the UDP conntrack entries to dst in the namespace by the
// endpoint they were DNATed to.
func flowsTo(t *testing.T, path string, dst netip.AddrPort) map[netip.Addr]int {
	t.Helper()
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h, unix.NETLINK_NETFILTER)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	flows, err := nl.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	out := map[netip.Addr]int{}
	for _, f := range flows {
		d, _ := netip.AddrFromSlice(f.Forward.DstIP)
		src, _ := netip.AddrFromSlice(f.Reverse.SrcIP)
		if f.Forward.Protocol == unix.IPPROTO_UDP && d.Unmap() == dst.Addr() && f.Forward.DstPort == dst.Port() {
			out[src.Unmap()]++
		}
	}
	return out
}

func TestStaleFilter(t *testing.T) {
	flow := func(proto uint8, dst string, dport uint16, replySrc string) *netlink.ConntrackFlow {
		f := &netlink.ConntrackFlow{}
		f.Forward.Protocol = proto
		f.Forward.DstIP = netip.MustParseAddr(dst).AsSlice()
		f.Forward.DstPort = dport
		f.Reverse.SrcIP = netip.MustParseAddr(replySrc).AsSlice()
		return f
	}
	vip, ep, other := netip.MustParseAddr("10.96.0.11"), netip.MustParseAddr("10.244.0.6"), netip.MustParseAddr("10.244.0.5")
	for _, tc := range []struct {
		name  string
		stale netplan.StaleFlow
		flow  *netlink.ConntrackFlow
		want  bool
	}{
		{"endpoint gone", netplan.StaleFlow{Dst: vip, Port: 53, Endpoint: ep}, flow(unix.IPPROTO_UDP, "10.96.0.11", 53, "10.244.0.6"), true},
		{"another endpoint", netplan.StaleFlow{Dst: vip, Port: 53, Endpoint: ep}, flow(unix.IPPROTO_UDP, "10.96.0.11", 53, other.String()), false},
		{"TCP is never touched", netplan.StaleFlow{Dst: vip, Port: 53, Endpoint: ep}, flow(unix.IPPROTO_TCP, "10.96.0.11", 53, "10.244.0.6"), false},
		{"another port", netplan.StaleFlow{Dst: vip, Port: 53, Endpoint: ep}, flow(unix.IPPROTO_UDP, "10.96.0.11", 54, "10.244.0.6"), false},
		{"another VIP", netplan.StaleFlow{Dst: vip, Port: 53, Endpoint: ep}, flow(unix.IPPROTO_UDP, "10.96.0.12", 53, "10.244.0.6"), false},
		{"port that had no endpoints: every entry", netplan.StaleFlow{Dst: vip, Port: 53}, flow(unix.IPPROTO_UDP, "10.96.0.11", 53, "10.96.0.11"), true},
		{"node port, any local address", netplan.StaleFlow{Port: 30053, Endpoint: ep}, flow(unix.IPPROTO_UDP, "192.168.1.10", 30053, "10.244.0.6"), true},
		{"node port, another endpoint", netplan.StaleFlow{Port: 30053, Endpoint: ep}, flow(unix.IPPROTO_UDP, "192.168.1.10", 30053, other.String()), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (staleFilter{tc.stale}).MatchConntrackFlow(tc.flow); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
}
