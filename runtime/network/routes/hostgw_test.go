package routes

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// Two hosts on one link reach each other's pod addresses through host-gw
// routes; a route goes when its peer dies; other routes are never touched.
func TestHostGW(t *testing.T) {
	a := newHost(t, "a", Config{})
	b := newHost(t, "b", Config{})
	link(t, a, "eth0", b, "eth0")
	a.ip("addr", "add", "192.0.2.1/24", "dev", "eth0")
	b.ip("addr", "add", "192.0.2.2/24", "dev", "eth0")
	a.podBridge("10.244.1.1/24")
	b.podBridge("10.244.2.1/24")
	st := state(map[string]string{"a": "10.244.1.0/24", "b": "10.244.2.0/24", "c": "10.244.3.0/24"})

	// Routes kelpie did not make: one elsewhere, one in the pod range, and
	// one in the way of peer c's slice.
	a.ip("route", "add", "198.18.0.0/24", "via", "192.0.2.254", "dev", "eth0")
	a.ip("route", "add", "10.244.9.0/24", "via", "192.0.2.9", "dev", "eth0", "proto", "static")
	a.ip("route", "add", "10.244.3.0/24", "via", "192.0.2.3", "dev", "eth0")
	foreign := func() []string {
		var keep []string
		for _, l := range strings.Split(a.ip("route", "show"), "\n") {
			if l != "" && !strings.Contains(l, "proto 75") {
				keep = append(keep, strings.TrimSpace(l))
			}
		}
		return keep
	}
	before := foreign()

	if _, err := a.fetch("10.244.1.1", "10.244.2.1", 8080); err == nil {
		t.Fatal("a pod address of b answers before any route exists: the test proves nothing")
	}
	b.serve("10.244.2.1", 8080)
	a.serve("10.244.1.1", 8080)
	a.sync(st, "192.0.2.1", netplan.ModeAuto, peer("b", "192.0.2.2"))
	b.sync(st, "192.0.2.2", netplan.ModeAuto, peer("a", "192.0.2.1"))

	for _, tc := range []struct {
		from       *host
		src, dst   string
		wantAnswer string
	}{
		{a, "10.244.1.1", "10.244.2.1", "hello from b"},
		{b, "10.244.2.1", "10.244.1.1", "hello from a"},
	} {
		got, err := tc.from.fetch(tc.src, tc.dst, 8080)
		if err != nil || got != tc.wantAnswer {
			t.Fatalf("%s → %s: %q, %v; want %q", tc.src, tc.dst, got, err, tc.wantAnswer)
		}
	}
	rs, err := a.s.Routes()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || show(rs[0]) != "10.244.2.0/24 via 192.0.2.2 ifindex "+ifindex(t, a, "eth0")+" proto 75" {
		t.Fatalf("a's routes: %v", rs)
	}
	if got := a.ip("-o", "link", "show"); strings.Contains(got, DefaultDevice) {
		t.Errorf("host-gw alone made a VXLAN device:\n%s", got)
	}

	// Peer c is up, but a route not made by kelpie holds its slice: Sync
	// says so, leaves it, and still routes b.
	self, err := a.s.Host("a", mustAddr("192.0.2.1"), netplan.ModeAuto)
	if err != nil {
		t.Fatal(err)
	}
	set, err := netplan.Routes(st, self, []netplan.Peer{peer("b", "192.0.2.2"), peer("c", "192.0.2.3")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Sync(set); err == nil || !strings.Contains(err.Error(), "a route to 10.244.3.0/24 not made by kelpie is in the way") {
		t.Errorf("Sync with a foreign route in the way: %v", err)
	}
	if got, err := a.fetch("10.244.1.1", "10.244.2.1", 8080); err != nil || got != "hello from b" {
		t.Errorf("b unreachable after the conflict: %q, %v", got, err)
	}

	// b dies: its route goes, and only it.
	dead := peer("b", "192.0.2.2")
	dead.State = scheduler.NodeDead
	ch := a.sync(st, "192.0.2.1", netplan.ModeAuto, dead)
	if len(ch) != 1 || !strings.HasPrefix(ch[0], "delete route 10.244.2.0/24 via 192.0.2.2") {
		t.Errorf("changes when b died: %q", ch)
	}
	if rs, err := a.s.Routes(); err != nil || len(rs) != 0 {
		t.Errorf("a's routes after b died: %v, %v", rs, err)
	}
	if _, err := a.fetch("10.244.1.1", "10.244.2.1", 8080); err == nil {
		t.Error("b's pod address still answers without a route")
	}
	if after := foreign(); !slices.Equal(before, after) {
		t.Errorf("routes kelpie did not make changed:\nbefore %q\nafter  %q", before, after)
	}

	// b returns: so does its route.
	a.sync(st, "192.0.2.1", netplan.ModeAuto, peer("b", "192.0.2.2"))
	if got, err := a.fetch("10.244.1.1", "10.244.2.1", 8080); err != nil || got != "hello from b" {
		t.Errorf("b unreachable after it returned: %q, %v", got, err)
	}
}

// A route of kelpie's that differs (a peer's new address) is replaced, and
// one kelpie made for a slice no one holds any more is deleted.
func TestHostGWReplacesAndPrunes(t *testing.T) {
	a := newHost(t, "a", Config{})
	b := newHost(t, "b", Config{})
	link(t, a, "eth0", b, "eth0")
	a.ip("addr", "add", "192.0.2.1/24", "dev", "eth0")
	// A leftover of an earlier run: kelpie's mark, a slice nobody has.
	a.ip("route", "add", "10.244.7.0/24", "via", "192.0.2.7", "dev", "eth0", "proto", "75")
	st := state(map[string]string{"a": "10.244.1.0/24", "b": "10.244.2.0/24"})

	a.sync(st, "192.0.2.1", netplan.ModeAuto, peer("b", "192.0.2.2"))
	ch := a.sync(st, "192.0.2.1", netplan.ModeAuto, peer("b", "192.0.2.20"))
	if len(ch) != 1 || !strings.HasPrefix(ch[0], "replace route 10.244.2.0/24 via 192.0.2.20") {
		t.Errorf("changes for b's new address: %q", ch)
	}
	got := a.ip("route", "show", "proto", "75")
	if strings.TrimSpace(got) != "10.244.2.0/24 via 192.0.2.20 dev eth0" {
		t.Errorf("kelpie's routes:\n%s", got)
	}

	// A route that cannot be programmed (its link is missing) fails, and
	// the route kelpie had there stays.
	set := netplan.RouteSet{Routes: []netplan.Route{{
		Peer: "b", Mode: netplan.ModeHostGW, Dst: netip.MustParsePrefix("10.244.2.0/24"), Via: mustAddr("192.0.2.21"), Link: "eth9",
	}}}
	if ch, err := a.s.Sync(set); err == nil || !strings.Contains(err.Error(), "link eth9") || len(ch) != 0 {
		t.Errorf("Sync with a missing link: %q, %v", ch, err)
	}
	if got := a.ip("route", "show", "proto", "75"); strings.TrimSpace(got) != "10.244.2.0/24 via 192.0.2.20 dev eth0" {
		t.Errorf("kelpie's routes after a failed Sync:\n%s", got)
	}
}

// ifindex is a link's index in the host, as a string.
func ifindex(t *testing.T, h *host, name string) string {
	t.Helper()
	l, err := h.s.h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return itoa(l.Attrs().Index)
}
