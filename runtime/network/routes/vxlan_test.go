package routes

import (
	"slices"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// vxlanWorld is two hosts on different subnets joined by a router, with no
// link in common: A 198.51.100.2/24 — R — B 203.0.113.2/24.
func vxlanWorld(t *testing.T, cfg Config) (a, b, r *host, st *netplan.State) {
	t.Helper()
	a = newHost(t, "a", cfg)
	b = newHost(t, "b", cfg)
	r = newHost(t, "r", cfg)
	needVXLAN(t, a)
	link(t, a, "eth0", r, "etha")
	link(t, b, "eth0", r, "ethb")
	r.ip("addr", "add", "198.51.100.1/24", "dev", "etha")
	r.ip("addr", "add", "203.0.113.1/24", "dev", "ethb")
	r.sysctl("ipv4/ip_forward", "1")
	a.ip("addr", "add", "198.51.100.2/24", "dev", "eth0")
	a.ip("route", "add", "203.0.113.0/24", "via", "198.51.100.1")
	b.ip("addr", "add", "203.0.113.2/24", "dev", "eth0")
	b.ip("route", "add", "198.51.100.0/24", "via", "203.0.113.1")
	a.podBridge("10.244.1.1/24")
	b.podBridge("10.244.2.1/24")
	return a, b, r, state(map[string]string{"a": "10.244.1.0/24", "b": "10.244.2.0/24"})
}

// Two hosts with no shared link reach each other's pod addresses through
// kelpie.vxlan; a second Sync changes nothing; a dead peer's entries go,
// and the device with them when no peer needs it.
func TestVXLAN(t *testing.T) {
	a, b, _, st := vxlanWorld(t, Config{})
	if _, err := a.fetch("10.244.1.1", "10.244.2.1", 8080); err == nil {
		t.Fatal("a pod address of b answers before any route exists: the test proves nothing")
	}
	a.serve("10.244.1.1", 8080)
	b.serve("10.244.2.1", 8080)
	a.sync(st, "198.51.100.2", netplan.ModeAuto, peer("b", "203.0.113.2"))
	b.sync(st, "203.0.113.2", netplan.ModeAuto, peer("a", "198.51.100.2"))

	for _, tc := range []struct {
		from     *host
		src, dst string
		want     string
	}{
		{a, "10.244.1.1", "10.244.2.1", "hello from b"},
		{b, "10.244.2.1", "10.244.1.1", "hello from a"},
	} {
		if got, err := tc.from.fetch(tc.src, tc.dst, 8080); err != nil || got != tc.want {
			t.Fatalf("%s → %s: %q, %v; want %q", tc.src, tc.dst, got, err, tc.want)
		}
	}

	// What a programmed, as ip shows it.
	dev := a.ip("-d", "-o", "link", "show", DefaultDevice)
	for _, want := range []string{"mtu 1450", "link/ether 02:6b:0a:f4:01:00", "vxlan id 1 local 198.51.100.2 dev eth0", "dstport 8472", "nolearning"} {
		if !strings.Contains(dev, want) {
			t.Errorf("device lacks %q:\n%s", want, dev)
		}
	}
	if got := a.ip("-o", "-4", "addr", "show", "dev", DefaultDevice); !strings.Contains(got, "inet 10.244.1.0/32") {
		t.Errorf("device address:\n%s", got)
	}
	if got := strings.TrimSpace(a.ip("route", "show", "proto", "75")); got != "10.244.2.0/24 via 10.244.2.0 dev kelpie.vxlan onlink" {
		t.Errorf("a's routes: %q", got)
	}
	neigh, fdb, err := a.s.Entries()
	if err != nil || !slices.Equal(neigh, []string{"10.244.2.0 02:6b:0a:f4:02:00"}) || !slices.Equal(fdb, []string{"02:6b:0a:f4:02:00 203.0.113.2"}) {
		t.Errorf("a's entries: neigh %q fdb %q, %v", neigh, fdb, err)
	}

	// Idempotence: nothing changes, in Sync's account or in the kernel.
	for _, h := range []*host{a, b} {
		before := h.snapshot()
		addr, p := "198.51.100.2", peer("b", "203.0.113.2")
		if h == b {
			addr, p = "203.0.113.2", peer("a", "198.51.100.2")
		}
		if ch := h.sync(st, addr, netplan.ModeAuto, p); len(ch) != 0 {
			t.Errorf("%s: second Sync changed %q", h.name, ch)
		}
		if after := h.snapshot(); after != before {
			t.Errorf("%s: second Sync changed the kernel's state:\nbefore\n%s\nafter\n%s", h.name, before, after)
		}
	}

	// b's MAC changes (a gossiped one): the neighbour entry is replaced and
	// the FDB holds only the new one.
	moved := peer("b", "203.0.113.2")
	moved.VTEPMAC = []byte{0x02, 0, 0, 0, 0, 0x0b}
	a.sync(st, "198.51.100.2", netplan.ModeAuto, moved)
	neigh, fdb, err = a.s.Entries()
	if err != nil || !slices.Equal(neigh, []string{"10.244.2.0 02:00:00:00:00:0b"}) || !slices.Equal(fdb, []string{"02:00:00:00:00:0b 203.0.113.2"}) {
		t.Errorf("a's entries after b's MAC changed: neigh %q fdb %q, %v", neigh, fdb, err)
	}

	// b dies: with no peer to tunnel to, auto mode drops the device.
	dead := peer("b", "203.0.113.2")
	dead.State = scheduler.NodeDead
	ch := a.sync(st, "198.51.100.2", netplan.ModeAuto, dead)
	if !slices.Equal(ch, []string{"delete device kelpie.vxlan"}) {
		t.Errorf("changes when b died: %q", ch)
	}
	if got := a.ip("-o", "link", "show"); strings.Contains(got, DefaultDevice) {
		t.Errorf("the device stayed:\n%s", got)
	}
	if rs, err := a.s.Routes(); err != nil || len(rs) != 0 {
		t.Errorf("a's routes after b died: %v, %v", rs, err)
	}
	if _, err := a.fetch("10.244.1.1", "10.244.2.1", 8080); err == nil {
		t.Error("b's pod address still answers")
	}
}

// In vxlan mode the device stays without peers; a dead peer's route,
// neighbour and FDB entries go; a device made with other settings (the
// port) is made again.
func TestVXLANModePrunesAndRecreates(t *testing.T) {
	a, b, _, st := vxlanWorld(t, Config{})
	b.serve("10.244.2.1", 8080)
	a.sync(st, "198.51.100.2", netplan.ModeVXLAN, peer("b", "203.0.113.2"))
	b.sync(st, "203.0.113.2", netplan.ModeVXLAN, peer("a", "198.51.100.2"))
	if got, err := a.fetch("10.244.1.1", "10.244.2.1", 8080); err != nil || got != "hello from b" {
		t.Fatalf("a → b: %q, %v", got, err)
	}

	dead := peer("b", "203.0.113.2")
	dead.State = scheduler.NodeLeft
	ch := a.sync(st, "198.51.100.2", netplan.ModeVXLAN, dead)
	want := []string{
		"delete route 10.244.2.0/24 via 10.244.2.0 ifindex " + ifindex(t, a, DefaultDevice) + " proto 75 onlink",
		"delete neigh 10.244.2.0 lladdr 02:6b:0a:f4:02:00 dev kelpie.vxlan",
		"delete fdb 02:6b:0a:f4:02:00 dst 203.0.113.2 dev kelpie.vxlan",
	}
	if !slices.Equal(ch, want) {
		t.Errorf("changes when b left:\n got %q\nwant %q", ch, want)
	}
	if neigh, fdb, err := a.s.Entries(); err != nil || len(neigh)+len(fdb) != 0 {
		t.Errorf("entries left: %q %q %v", neigh, fdb, err)
	}
	if got := a.ip("-o", "link", "show", DefaultDevice); got == "" {
		t.Error("vxlan mode dropped the device")
	}

	// Another port: the device is made again, with the new port.
	other, err := NewAt("/run/netns/"+a.ns, Config{Port: 4789})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	a.s = other
	ch = a.sync(st, "198.51.100.2", netplan.ModeVXLAN, peer("b", "203.0.113.2"))
	if len(ch) == 0 || ch[0] != "delete device kelpie.vxlan: port 8472, want 4789" {
		t.Errorf("changes for another port: %q", ch)
	}
	if got := a.ip("-d", "-o", "link", "show", DefaultDevice); !strings.Contains(got, "dstport 4789") {
		t.Errorf("device after the port changed:\n%s", got)
	}

	// Sync of nothing removes everything kelpie made.
	if ch, err := a.s.Sync(netplan.RouteSet{}); err != nil || len(ch) != 1 {
		t.Errorf("Sync(nothing): %q, %v", ch, err)
	}
	if rs, err := a.s.Routes(); err != nil || len(rs) != 0 {
		t.Errorf("routes left: %v, %v", rs, err)
	}
}
