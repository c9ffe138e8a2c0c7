package nft

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/netplan"
)

// addrs returns n endpoint addresses 10.244.1.1, 10.244.1.2, … starting
// at the first+1th.
func addrs(first, n int) []netip.Addr {
	var out []netip.Addr
	for i := range n {
		out = append(out, netip.AddrFrom4([4]byte{10, 244, byte(1 + (first+i)/250), byte(1 + (first+i)%250)}))
	}
	return out
}

// nodePort is a TCP Service with a node port (an external chain).
func nodePort(eps ...netip.Addr) netplan.Service {
	s := service("np", netip.MustParseAddr("10.96.0.12"), corev1.ProtocolTCP, 80, 8080, eps)
	s.Ports[0].NodePort = 30080
	return s
}

// normalize sorts the lines inside every "elements = { … }" of a listing:
// the kernel lists a hash set's elements in an order of its own, which
// differs between two tables built in different orders.
func normalize(listing string) string {
	var out, block []string
	in := false
	for _, line := range strings.Split(listing, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "elements = {"):
			in = true
			block = append(block, strings.Split(strings.TrimSuffix(strings.TrimPrefix(t, "elements = {"), "}"), ",")...)
			if strings.HasSuffix(t, "}") {
				in = false
			}
		case in:
			block = append(block, strings.Split(strings.TrimSuffix(t, "}"), ",")...)
			in = !strings.HasSuffix(t, "}")
		default:
			out = append(out, line)
			continue
		}
		if !in {
			var items []string
			for _, it := range block {
				if it = strings.TrimSpace(it); it != "" {
					items = append(items, it)
				}
			}
			slices.Sort(items)
			out = append(out, "elements = { "+strings.Join(items, ", ")+" }")
			block = nil
		}
	}
	return strings.Join(out, "\n")
}

// TestNetlinkChangeEqualsFullLoad applies endpoint changes of every shape
// over netlink (no nft) in one namespace, loads the same rulesets in full
// with nft in another, and compares the two tables as nft lists them.
func TestNetlinkChangeEqualsFullLoad(t *testing.T) {
	for _, planned := range []bool{false, true} {
		name := "Apply"
		if planned {
			name = "Planner"
		}
		t.Run(name, func(t *testing.T) { testChangeEqualsFullLoad(t, planned) })
	}
}

// testChangeEqualsFullLoad runs endpoint changes through Apply (the
// Loader diffs) or, planned, through a netplan.Planner and ApplyChange (the
// agent's way), and compares the table with a full load of each step.
func testChangeEqualsFullLoad(t *testing.T, planned bool) {
	nsInc, nsFull := testNetns(t), testNetns(t)
	ctx := context.Background()
	inc, err := New(Config{NetNS: nsInc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inc.Close)
	full, err := New(Config{NetNS: nsFull})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(full.Close)

	ten := addrs(0, 10)
	moved := append(slices.Clone(ten[:9]), addrs(10, 1)...)
	steps := []struct {
		name    string
		svcs    []netplan.Service
		netlink bool // the change goes over netlink, not nft
	}{
		{"start", []netplan.Service{web(ten...), dns(ep1), nodePort(ep1, ep2)}, false},
		{"one endpoint replaced", []netplan.Service{web(moved...), dns(ep1), nodePort(ep1, ep2)}, true},
		{"one endpoint fewer", []netplan.Service{web(moved[:8]...), dns(ep1), nodePort(ep1, ep2)}, true},
		{"two endpoints to one", []netplan.Service{web(moved[:8]...), dns(ep1), nodePort(ep2)}, true},
		{"one endpoint to two", []netplan.Service{web(moved[:8]...), dns(ep1, ep2), nodePort(ep2)}, true},
		{"no endpoints", []netplan.Service{web(moved[:8]...), dns(), nodePort(ep2)}, true},
		{"endpoints again", []netplan.Service{web(moved[:8]...), dns(ep2), nodePort(ep2)}, true},
		{"a Service gone", []netplan.Service{web(moved[:8]...), dns(ep2)}, true},
		{"a Service back", []netplan.Service{web(ten...), dns(ep2), nodePort(ep1, ep2)}, true},
	}
	planner := netplan.NewPlanner()
	var netlinks uint64
	for i, st := range steps {
		rs := ruleset(t, st.svcs...)
		switch {
		case planned:
			var ch netplan.Change
			ch, err = planner.Plan(netplan.RulesetInput{Node: "n1", ClusterCIDR: clusterCIDR, ServiceCIDR: serviceCIDR, Services: st.svcs})
			if err == nil {
				err = inc.ApplyChange(ctx, ch, planner.Ruleset)
			}
		case i == 0:
			err = inc.Load(ctx, rs)
		default:
			err = inc.Apply(ctx, rs)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.netlink {
			netlinks++
		}
		if s := inc.Stats(); s.Netlink != netlinks || s.Fallbacks != 0 || s.Full != 1 {
			t.Fatalf("%s: stats %+v, want %d changes over netlink, no fallback", st.name, s, netlinks)
		}
		if err := full.Load(ctx, rs); err != nil {
			t.Fatalf("%s: full load: %v", st.name, err)
		}
		got, want := listTable(nsInc, "kelpie"), normalize(listTable(nsFull, "kelpie"))
		// Chains the change emptied wait for their deletion, empty.
		for _, c := range inc.Pending() {
			empty := fmt.Sprintf("\n\tchain %s {\n\t}\n", c)
			if !strings.Contains(got, empty) {
				t.Errorf("%s: the stale chain %s is not there, empty", st.name, c)
			}
			got = strings.Replace(got, empty, "", 1)
		}
		got = normalize(got)
		if got != want {
			t.Errorf("%s: the table after the netlink change:\n%s\nwant (full load):\n%s", st.name, got, want)
		}
	}
}

// TestNetlinkFailureFallsBack checks that a netlink batch the kernel
// refuses part-way changes nothing (one transaction), and that Apply then
// loads the full table with nft.
func TestNetlinkFailureFallsBack(t *testing.T) {
	ns := testNetns(t)
	ctx := context.Background()
	l, err := New(Config{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	old, next := ruleset(t, web(ep1, ep2), dns(ep2)), ruleset(t, web(ep1), dns(ep1))
	if err := l.Load(ctx, old); err != nil {
		t.Fatal(err)
	}
	before := listTable(ns, "kelpie")

	// The change, then the deletion of an element that is not there: the
	// kernel refuses the last message, and none of the batch stays.
	steps, err := translate(netplan.Diff(old, next).Ops)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := translateOp(netplan.Op{Kind: netplan.OpDeleteElement, Name: "hairpin", Type: "ipv4_addr . ipv4_addr", Key: "192.0.2.1 . 192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.netlink(append(steps, missing)); err == nil {
		t.Fatal("a batch deleting a missing element succeeded")
	}
	if got := listTable(ns, "kelpie"); got != before {
		t.Fatalf("a refused batch changed the table:\n%s\nwant:\n%s", got, before)
	}

	// Someone deleted an element the change deletes too: the netlink
	// batch fails, and the full text is loaded instead.
	nftIn(t, ns, "delete", "element", "ip", "kelpie", "hairpin", "{ "+ep2.String()+" . "+ep2.String()+" }")
	if err := l.Apply(ctx, next); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Fallbacks != 1 || st.Full != 2 || st.Netlink != 0 {
		t.Errorf("after a refused netlink change: %+v, want 1 fallback, 2 full loads, none over netlink", st)
	}
	want := testNetns(t)
	runStdin(t, want, next.Text())
	if got, w := normalize(listTable(ns, "kelpie")), normalize(listTable(want, "kelpie")); got != w {
		t.Errorf("after the fallback:\n%s\nwant (full load):\n%s", got, w)
	}

	// The next change goes over netlink again.
	if err := l.Apply(ctx, ruleset(t, web(ep1, ep2), dns(ep2))); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Netlink != 1 || st.Fallbacks != 1 {
		t.Errorf("after a change on the rebuilt table: %+v, want 1 over netlink", st)
	}
}

// TestApplyChangeFallsBack: a planned change the kernel refuses (someone
// changed the table) is replaced by a full load of the planned table, and
// the next planned change goes over netlink again.
func TestApplyChangeFallsBack(t *testing.T) {
	ns := testNetns(t)
	ctx := context.Background()
	l, err := New(Config{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	p := netplan.NewPlanner()
	apply := func(svcs ...netplan.Service) {
		t.Helper()
		ch, err := p.Plan(netplan.RulesetInput{Node: "n1", ClusterCIDR: clusterCIDR, ServiceCIDR: serviceCIDR, Services: svcs})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.ApplyChange(ctx, ch, p.Ruleset); err != nil {
			t.Fatal(err)
		}
	}
	apply(web(ep1, ep2), dns(ep2))
	if st := l.Stats(); st.Full != 1 {
		t.Fatalf("first planned change: %+v, want a full load", st)
	}
	nftIn(t, ns, "delete", "element", "ip", "kelpie", "hairpin", "{ "+ep2.String()+" . "+ep2.String()+" }")
	apply(web(ep1), dns(ep1))
	if st := l.Stats(); st.Fallbacks != 1 || st.Full != 2 || st.Netlink != 0 {
		t.Errorf("after a refused planned change: %+v, want 1 fallback, 2 full loads", st)
	}
	want := testNetns(t)
	runStdin(t, want, ruleset(t, web(ep1), dns(ep1)).Text())
	if got, w := normalize(listTable(ns, "kelpie")), normalize(listTable(want, "kelpie")); got != w {
		t.Errorf("after the fallback:\n%s\nwant (full load):\n%s", got, w)
	}
	apply(web(ep1, ep2), dns(ep2))
	if st := l.Stats(); st.Netlink != 1 || st.Fallbacks != 1 {
		t.Errorf("after a planned change on the rebuilt table: %+v, want 1 over netlink", st)
	}
	if l.Current() != nil {
		t.Error("Current after ApplyChange is not nil")
	}
}
