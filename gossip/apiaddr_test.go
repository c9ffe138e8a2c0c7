package gossip

import (
	"bytes"
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"
)

func TestAPIAddrFor(t *testing.T) {
	for _, tc := range []struct {
		listen, want string
		err          bool
	}{
		{listen: "0.0.0.0:7070", want: ":7070"},
		{listen: "[::]:7071", want: ":7071"},
		{listen: ":7072", want: ":7072"},
		{listen: "127.0.0.1:7070", want: ":7070"},
		{listen: "[::1]:7070", want: ":7070"},
		{listen: "10.1.2.3:8080", want: "10.1.2.3:8080"},
		{listen: "[fd00::5]:8080", want: "[fd00::5]:8080"},
		{listen: "agent.example:8080", want: "agent.example:8080"},
		{listen: "127.0.0.1:0", want: ""},
		{listen: "10.1.2.3", err: true},
		{listen: "10.1.2.3:", err: true},
	} {
		got, err := APIAddrFor(tc.listen)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("APIAddrFor(%q) = %q, %v; want %q, error %v", tc.listen, got, err, tc.want, tc.err)
		}
	}
}

func TestMemberAPIAddr(t *testing.T) {
	for _, tc := range []struct {
		name     string
		addr     string
		api      string
		fallback string
		want     string
		err      bool
	}{
		{name: "explicit address", addr: "10.0.0.2:7946", api: "10.9.9.9:8080", fallback: "7070", want: "10.9.9.9:8080"},
		{name: "port only takes the gossip host", addr: "10.0.0.2:7946", api: ":7071", fallback: "7070", want: "10.0.0.2:7071"},
		{name: "IPv6 gossip host", addr: "[fd00::2]:7946", api: ":7071", fallback: "7070", want: "[fd00::2]:7071"},
		{name: "older agent: gossip host on our port", addr: "10.0.0.2:7946", fallback: "7070", want: "10.0.0.2:7070"},
		{name: "bad gossip address", addr: "nowhere", api: ":7071", fallback: "7070", err: true},
		{name: "bad advertised address", addr: "10.0.0.2:7946", api: "10.0.0.2", fallback: "7070", err: true},
	} {
		m := Member{Name: "b", Addr: tc.addr, Meta: Meta{APIAddr: tc.api}}
		got, err := m.APIAddr(tc.fallback)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s: APIAddr = %q, %v; want %q, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// TestMetaAPIAddrCompatible: the API address is a trailer after the
// labels, so an older agent's metadata (without it) still decodes, and
// what an older agent reads of newer metadata is unchanged.
func TestMetaAPIAddrCompatible(t *testing.T) {
	m := Meta{Labels: map[string]string{"zone": "a"}, Version: "0.3.0", Eligible: true, Term: 3}
	withAddr := m
	withAddr.APIAddr = "10.0.0.2:7071"
	newer, err := encodeMeta(withAddr)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	older := empty[:len(empty)-1] // an older agent writes no trailer
	if !bytes.HasPrefix(newer, older) {
		t.Fatalf("newer metadata %v does not start with the older encoding %v", newer, older)
	}
	got, err := decodeMeta(older)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("older metadata decoded as %+v, want %+v", got, m)
	}
}

func TestConfigRejectsBadAPIAddr(t *testing.T) {
	c := DefaultConfig()
	c.NodeName, c.Insecure, c.APIAddr = "a", true, "10.0.0.2"
	if _, err := c.validate(); err == nil {
		t.Fatal("validate accepted API address without a port")
	}
}

// TestAPIAddrGossiped: each node's API address reaches its peers in its
// metadata, and resolves against the node's gossip address when it names
// a port only; a node that advertises none resolves to the fallback.
func TestAPIAddrGossiped(t *testing.T) {
	apis := []string{":7071", "127.0.0.9:8080", ""}
	cl := startCluster(t, 3, func(i int, c *Config) { c.APIAddr = apis[i] })
	waitFor(t, 10*time.Second, "3 members", func() (bool, string) { return converged(cl.nodes, 3) })
	want := map[string]string{}
	for i, n := range cl.nodes {
		host, _, err := net.SplitHostPort(n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprintf("n%02d", i)] = []string{net.JoinHostPort(host, "7071"), "127.0.0.9:8080", net.JoinHostPort(host, "7070")}[i]
	}
	for _, m := range cl.nodes[2].Members() {
		got, err := m.APIAddr("7070")
		if err != nil || got != want[m.Name] {
			t.Errorf("member %s (meta %q): API address %q, %v; want %q", m.Name, m.Meta.APIAddr, got, err, want[m.Name])
		}
	}
}
